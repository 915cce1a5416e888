// Package fulfillment is the fulfillment saga of one confirmed order: its
// shipments (one per stock location) from dispatch to delivery, a capture
// per shipment when the carrier takes it, a refund for a parcel that never
// arrives, and a timer that voids what is still uncaptured before the
// authorization lapses.
package fulfillment

import (
	"time"

	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/workflows/internal/steps"
)

// Signal and query names.
const (
	// SignalCarrier delivers a CarrierUpdate.
	SignalCarrier = "carrier"
	// SignalCancel delivers a CancelRequest: call off every shipment that
	// has not left and release its money.
	SignalCancel = "cancel"
	// QueryStatus returns a Status.
	QueryStatus = "status"
)

// WorkflowID is the fulfillment workflow of an order: "fulfillment-"+orderID.
func WorkflowID(orderID string) string { return "fulfillment-" + orderID }

// Shipment is one parcel: lines from one location and the share of the
// order total captured when it leaves.
type Shipment struct {
	ID       string             `json:"id"`
	Location inventory.Location `json:"location"`
	Lines    []fulfillment.Line `json:"lines"`
	// Amount is captured on dispatch. The amounts of an order's shipments
	// sum to its total exactly (money.Allocate by line value).
	Amount money.Money `json:"amount"`
}

// Options tune the workflow; zero fields get defaults.
type Options struct {
	// ExpiryMargin is how long before the authorization lapses the
	// remainder is voided and unshipped parcels are called off. Default
	// 12h.
	ExpiryMargin time.Duration `json:"expiry_margin,omitempty"`
	Steps        steps.Options `json:"steps"`
}

func (o *Options) setDefaults() {
	if o.ExpiryMargin <= 0 {
		o.ExpiryMargin = 12 * time.Hour
	}
	o.Steps.SetDefaults()
}

// Input starts the fulfillment of a confirmed order.
type Input struct {
	OrderID string `json:"order_id"`
	Tenant  string `json:"tenant,omitempty"`
	// Payment is the order's authorization: a card hold at the provider,
	// or (Method bnpl) the in-house lender's commitment, captured in the
	// books only.
	Payment steps.Hold `json:"payment"`
	// PlanID is the financing plan of a BNPL order ("" for cards).
	PlanID    string     `json:"plan_id,omitempty"`
	Shipments []Shipment `json:"shipments"`
	Options   Options    `json:"options"`
	// Resume starts from where the order's aggregates are instead of from
	// planned parcels: a region that took the order's home over runs the
	// fulfillment the old owner's Temporal was running. Parcels already
	// shipped are dispatched again (recording and capture are idempotent
	// by their business keys), delivered and lost ones settled as
	// recorded.
	Resume bool `json:"resume,omitempty"`
}

// CarrierEvent is what a carrier reports about a parcel.
type CarrierEvent string

// Carrier events.
const (
	Dispatched CarrierEvent = "dispatched" // the carrier took the parcel: capture its amount
	Delivered  CarrierEvent = "delivered"
	Failed     CarrierEvent = "failed" // undeliverable: refund
	Lost       CarrierEvent = "lost"   // refund
)

// CarrierUpdate is the payload of SignalCarrier.
type CarrierUpdate struct {
	ShipmentID     string       `json:"shipment_id"`
	Event          CarrierEvent `json:"event"`
	Carrier        string       `json:"carrier,omitempty"`
	TrackingNumber string       `json:"tracking_number,omitempty"`
	Reason         string       `json:"reason,omitempty"`
}

// CancelRequest is the payload of SignalCancel.
type CancelRequest struct {
	Reason string `json:"reason"`
}

// Shipment states as the workflow tracks them.
const (
	StatePlanned    = "planned"
	StateShipped    = "shipped"
	StateDelivered  = "delivered"
	StateFailed     = "failed"
	StateLost       = "lost"
	StateCancelled  = "cancelled"
	StateUncaptured = "shipped_uncaptured" // left after the hold closed: see the alert
)

// ShipmentStatus is one shipment's progress.
type ShipmentStatus struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Captured bool   `json:"captured"`
	Refunded bool   `json:"refunded"`
}

// Status is the workflow's progress (QueryStatus) and, when every
// shipment is settled, its result.
type Status struct {
	OrderID   string           `json:"order_id"`
	Shipments []ShipmentStatus `json:"shipments"`
	Captured  money.Money      `json:"captured,omitzero"`
	Refunded  money.Money      `json:"refunded,omitzero"`
	// Released is the uncaptured remainder voided (or, for BNPL, taken off
	// the plan).
	Released money.Money `json:"released,omitzero"`
	Alerts   []string    `json:"alerts,omitempty"`
	Done     bool        `json:"done"`
}
