package httpapi

import (
	"time"

	"github.com/livecore/livecore/domain/event"
)

// The API's own event: what the warehouse or carrier reported about a
// shipment. The API only appends it; a relay that follows the log (see
// internal/stack) hands it to the order's fulfillment saga, which records
// the dispatch (stock committed, lines fulfilled), captures the shipment's
// amount, or refunds a failed or lost parcel. So the API never calls
// Temporal, and a report is never lost between the two: it is in the log
// before the answer.

// TypeCarrierReported is the event type name (persisted: never change it).
const TypeCarrierReported = "shipment.carrier_reported.v1"

// CarrierReported: the warehouse reported a shipment's progress. Event is
// one of "dispatched", "delivered", "failed", "lost" (the fulfillment
// saga's carrier events).
type CarrierReported struct {
	OrderID        string    `json:"order_id"`
	ShipmentID     string    `json:"shipment_id"`
	Event          string    `json:"event"`
	Carrier        string    `json:"carrier,omitempty"`
	TrackingNumber string    `json:"tracking_number,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	At             time.Time `json:"at"`
}

// EventType is "shipment.carrier_reported.v1".
func (*CarrierReported) EventType() string { return TypeCarrierReported }

// CarrierStreamID is the stream of an order's carrier reports:
// "carrier-"+orderID.
func CarrierStreamID(orderID string) string { return "carrier-" + orderID }

// RegisterEvents adds the API's own event types to r; every registry that
// decodes the whole log needs them.
func RegisterEvents(r *event.Registry) {
	r.Register(func() event.Event { return &CarrierReported{} }, func() event.Event { return &PayoffRequested{} })
}

// carrierReports is the aggregate of a carrier stream: which (shipment,
// event) pairs were reported, so a repeated report appends nothing.
type carrierReports struct {
	seen map[[2]string]bool
}

func newCarrierReports() *carrierReports { return &carrierReports{seen: map[[2]string]bool{}} }

// Apply implements app.Aggregate.
func (c *carrierReports) Apply(e event.Event) {
	if r, ok := e.(*CarrierReported); ok {
		c.seen[[2]string{r.ShipmentID, r.Event}] = true
	}
}

// report decides a new report: none if this shipment's event was already
// reported.
func (c *carrierReports) report(r CarrierReported) []event.Event {
	if c.seen[[2]string{r.ShipmentID, r.Event}] {
		return nil
	}
	return []event.Event{&r}
}

// TypePayoffRequested is the event type name of a customer's request to
// pay a BNPL plan off early (persisted: never change it).
const TypePayoffRequested = "plan.payoff_requested.v1"

// PayoffRequested: the customer asked to pay the plan off now. The relay
// hands it to the plan's schedule saga, which collects the payoff quote
// (collection "payoff-"+RequestID, so a repeated request charges once).
type PayoffRequested struct {
	PlanID    string    `json:"plan_id"`
	RequestID string    `json:"request_id"`
	At        time.Time `json:"at"`
}

// EventType is "plan.payoff_requested.v1".
func (*PayoffRequested) EventType() string { return TypePayoffRequested }

// PayoffStreamID is the stream of a plan's payoff requests:
// "payoffrequest-"+planID.
func PayoffStreamID(planID string) string { return "payoffrequest-" + planID }

// payoffRequests is the aggregate of a payoff stream (its requests are
// deduplicated by command ID).
type payoffRequests struct{}

func (*payoffRequests) Apply(event.Event) {}
