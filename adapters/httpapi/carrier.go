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
	r.Register(func() event.Event { return &CarrierReported{} })
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
