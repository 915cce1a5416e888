package fulfillment

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/workflows/internal/steps"
)

// Activities are the fulfillment saga's steps. Commands are keyed
// "order/<id>/shipment/<shipment>/<step>"; the capture of a shipment is
// keyed "order/<id>/capture/<shipment>" at the provider and on the payment.
type Activities struct {
	steps.Ports
}

func newFulfillment() *fulfillment.Fulfillment { return &fulfillment.Fulfillment{} }
func newOrder() *order.Order                   { return &order.Order{} }

func meta(tenant, orderID string) event.Metadata {
	return steps.Meta(tenant, orderID, "saga:fulfillment")
}

// SplitInput records the shipments planned at checkout.
type SplitInput struct {
	OrderID   string     `json:"order_id"`
	Tenant    string     `json:"tenant,omitempty"`
	Shipments []Shipment `json:"shipments"`
	At        time.Time  `json:"at"`
}

// SplitOrder records the order's split into shipments (command
// "order/<id>/split"; a fulfillment already split is left as it is).
func (a *Activities) SplitOrder(ctx context.Context, in SplitInput) error {
	planned := make([]fulfillment.PlannedShipment, len(in.Shipments))
	for i, s := range in.Shipments {
		planned[i] = fulfillment.PlannedShipment{ID: s.ID, Location: s.Location, Lines: s.Lines}
	}
	_, err := steps.Exec(ctx, a.Ports, fulfillment.StreamID(in.OrderID), newFulfillment, "order/"+in.OrderID+"/split", meta(in.Tenant, in.OrderID),
		func(f *fulfillment.Fulfillment) ([]event.Event, error) {
			if f.IsSplit() {
				return nil, nil
			}
			return f.Split(in.OrderID, planned, in.At)
		})
	return err
}

// ShipmentInput is a carrier report about one shipment.
type ShipmentInput struct {
	OrderID        string       `json:"order_id"`
	Tenant         string       `json:"tenant,omitempty"`
	Shipment       Shipment     `json:"shipment"`
	Event          CarrierEvent `json:"event,omitempty"`
	Carrier        string       `json:"carrier,omitempty"`
	TrackingNumber string       `json:"tracking_number,omitempty"`
	Reason         string       `json:"reason,omitempty"`
	At             time.Time    `json:"at"`
}

// advance runs one step of a shipment's way unless it is already past it.
func (a *Activities) advance(ctx context.Context, in ShipmentInput, step string, from fulfillment.ShipmentStatus, decide func(f *fulfillment.Fulfillment) ([]event.Event, error)) error {
	_, err := steps.Exec(ctx, a.Ports, fulfillment.StreamID(in.OrderID), newFulfillment,
		"order/"+in.OrderID+"/shipment/"+in.Shipment.ID+"/"+step, meta(in.Tenant, in.OrderID),
		func(f *fulfillment.Fulfillment) ([]event.Event, error) {
			if v, ok := f.Shipment(in.Shipment.ID); ok && v.Status != from {
				return nil, nil
			}
			return decide(f)
		})
	return err
}

// RecordDispatch records that the carrier took a shipment: picked, packed
// and shipped (whichever is not recorded yet), its stock committed at its
// location, its lines fulfilled on the order. Stock that can no longer be
// committed does not stop it (the goods left): it comes back as a warning
// for the workflow to raise.
func (a *Activities) RecordDispatch(ctx context.Context, in ShipmentInput) (warnings []string, err error) {
	sid := in.Shipment.ID
	if err := a.advance(ctx, in, "pick", fulfillment.StatusPlanned, func(f *fulfillment.Fulfillment) ([]event.Event, error) { return f.Pick(sid, in.At) }); err != nil {
		return nil, err
	}
	if err := a.advance(ctx, in, "pack", fulfillment.StatusPicked, func(f *fulfillment.Fulfillment) ([]event.Event, error) { return f.Pack(sid, in.At) }); err != nil {
		return nil, err
	}
	carrier, tracking := in.Carrier, in.TrackingNumber
	if carrier == "" {
		carrier = "unknown"
	}
	if tracking == "" {
		tracking = sid
	}
	if err := a.advance(ctx, in, "ship", fulfillment.StatusPacked, func(f *fulfillment.Fulfillment) ([]event.Event, error) {
		return f.Ship(sid, carrier, tracking, in.At)
	}); err != nil {
		return nil, err
	}
	for _, sku := range skuQuantities(in.Shipment.Lines) {
		_, err := steps.Exec(ctx, a.Ports, inventory.StreamID(sku.sku, in.Shipment.Location), func() *inventory.Item { return inventory.NewItem(sku.sku, in.Shipment.Location) },
			"order/"+in.OrderID+"/shipment/"+sid+"/commit/"+sku.sku, meta(in.Tenant, in.OrderID),
			func(it *inventory.Item) ([]event.Event, error) { return it.Commit(in.OrderID, sid, sku.qty, in.At) })
		switch {
		case errors.Is(err, inventory.ErrAlreadyCommitted):
		case steps.IsType(err, steps.TypeRejected):
			warnings = append(warnings, fmt.Sprintf("stock of %s at %s not committed: %v", sku.sku, in.Shipment.Location, err))
		case err != nil:
			return nil, err
		}
	}
	_, err = steps.Exec(ctx, a.Ports, order.StreamID(in.OrderID), newOrder, "order/"+in.OrderID+"/shipment/"+sid+"/fulfill", meta(in.Tenant, in.OrderID),
		func(o *order.Order) ([]event.Event, error) {
			evs, err := o.FulfillLines(sid, orderLines(in.Shipment.Lines), in.At)
			if errors.Is(err, order.ErrDuplicateShipment) {
				return nil, nil
			}
			return evs, err
		})
	return warnings, err
}

// Progress is where one shipment of an order stands in the fulfillment
// aggregate (what a resumed fulfillment starts from).
type Progress struct {
	ShipmentID     string `json:"shipment_id"`
	Status         string `json:"status"`
	Carrier        string `json:"carrier,omitempty"`
	TrackingNumber string `json:"tracking_number,omitempty"`
	Reason         string `json:"reason,omitempty"`
}

// LoadProgress reads the order's shipments as the fulfillment aggregate
// has them.
func (a *Activities) LoadProgress(ctx context.Context, orderID string) ([]Progress, error) {
	var out []Progress
	err := steps.Query(ctx, a.Ports, fulfillment.StreamID(orderID), newFulfillment, func(f *fulfillment.Fulfillment) {
		for _, s := range f.Shipments() {
			out = append(out, Progress{ShipmentID: s.ID, Status: s.Status.String(), Carrier: s.Carrier, TrackingNumber: s.TrackingNumber, Reason: s.Reason})
		}
	})
	return out, err
}

// RecordDelivery records that a shipped parcel arrived.
func (a *Activities) RecordDelivery(ctx context.Context, in ShipmentInput) error {
	return a.advance(ctx, in, "deliver", fulfillment.StatusShipped, func(f *fulfillment.Fulfillment) ([]event.Event, error) {
		return f.Deliver(in.Shipment.ID, in.At)
	})
}

// RecordLoss records that a shipped parcel could not be delivered
// (in.Event Failed, with in.Reason) or was lost.
func (a *Activities) RecordLoss(ctx context.Context, in ShipmentInput) error {
	return a.advance(ctx, in, string(in.Event), fulfillment.StatusShipped, func(f *fulfillment.Fulfillment) ([]event.Event, error) {
		if in.Event == Lost {
			return f.ReportLost(in.Shipment.ID, in.At)
		}
		reason := in.Reason
		if reason == "" {
			reason = "undeliverable"
		}
		return f.FailDelivery(in.Shipment.ID, reason, in.At)
	})
}

// CaptureInput captures one shipment's share of the hold.
type CaptureInput struct {
	OrderID    string      `json:"order_id"`
	Tenant     string      `json:"tenant,omitempty"`
	PaymentID  string      `json:"payment_id"`
	ShipmentID string      `json:"shipment_id"`
	Amount     money.Money `json:"amount"`
	// ViaPSP is false for BNPL orders (the capture is in the books only).
	ViaPSP bool      `json:"via_psp,omitempty"`
	At     time.Time `json:"at"`
}

// CaptureShipment captures a shipment's amount under capture ID = shipment
// ID (provider key "order/<id>/capture/<shipment>"). Errors:
// steps.TypeAuthorizationClosed when the hold expired or was voided.
func (a *Activities) CaptureShipment(ctx context.Context, in CaptureInput) error {
	return steps.Capture(ctx, a.Ports, steps.MoveArgs{
		PaymentID: in.PaymentID, ID: in.ShipmentID, Amount: in.Amount, Key: "order/" + in.OrderID + "/capture/" + in.ShipmentID,
		ViaPSP: in.ViaPSP, At: in.At, Meta: meta(in.Tenant, in.OrderID),
	})
}

// CancelInput calls off shipments that have not left.
type CancelInput struct {
	OrderID   string     `json:"order_id"`
	Tenant    string     `json:"tenant,omitempty"`
	Shipments []Shipment `json:"shipments"`
	Reason    string     `json:"reason"`
	At        time.Time  `json:"at"`
}

// CancelShipments cancels the shipments, releases their stock and cancels
// their lines on the order (which cancels the order if nothing shipped).
func (a *Activities) CancelShipments(ctx context.Context, in CancelInput) error {
	var ids []string
	var lines []order.LineQuantity
	for _, s := range in.Shipments {
		ids = append(ids, s.ID)
		sin := ShipmentInput{OrderID: in.OrderID, Tenant: in.Tenant, Shipment: s, At: in.At}
		for _, from := range []fulfillment.ShipmentStatus{fulfillment.StatusPlanned, fulfillment.StatusPicked, fulfillment.StatusPacked} {
			if err := a.advance(ctx, sin, "cancel-from-"+from.String(), from, func(f *fulfillment.Fulfillment) ([]event.Event, error) {
				return f.CancelShipment(s.ID, in.Reason, in.At)
			}); err != nil {
				return err
			}
		}
		for _, sku := range skuQuantities(s.Lines) {
			_, err := steps.Exec(ctx, a.Ports, inventory.StreamID(sku.sku, s.Location), func() *inventory.Item { return inventory.NewItem(sku.sku, s.Location) },
				"order/"+in.OrderID+"/shipment/"+s.ID+"/release/"+sku.sku, meta(in.Tenant, in.OrderID),
				func(it *inventory.Item) ([]event.Event, error) { return it.Release(in.OrderID, in.Reason, in.At) })
			if err != nil && !errors.Is(err, inventory.ErrReservationNotFound) && !errors.Is(err, inventory.ErrAlreadyCommitted) {
				return err
			}
		}
		lines = append(lines, orderLines(s.Lines)...)
	}
	_, err := steps.Exec(ctx, a.Ports, order.StreamID(in.OrderID), newOrder, "order/"+in.OrderID+"/cancel-lines/"+strings.Join(ids, ","), meta(in.Tenant, in.OrderID),
		func(o *order.Order) ([]event.Event, error) {
			open := map[int]int64{}
			for _, l := range o.Lines() {
				open[l.No] = l.Open
			}
			var cancel []order.LineQuantity
			for _, lq := range mergeLines(lines) {
				if q := min(lq.Quantity, open[lq.Line]); q > 0 {
					cancel = append(cancel, order.LineQuantity{Line: lq.Line, Quantity: q})
				}
			}
			if len(cancel) == 0 || o.Status() == order.StatusCancelled {
				return nil, nil
			}
			return o.CancelLines(cancel, in.Reason, in.At)
		})
	return err
}

// ReleaseInput gives up what is left of an order's hold.
type ReleaseInput struct {
	OrderID   string `json:"order_id"`
	Tenant    string `json:"tenant,omitempty"`
	PaymentID string `json:"payment_id"`
	// PlanID is set for BNPL orders: the released amount is also taken off
	// the customer's plan (refund "unshipped").
	PlanID string    `json:"plan_id,omitempty"`
	ViaPSP bool      `json:"via_psp,omitempty"`
	At     time.Time `json:"at"`
}

// ReleaseRemainder voids the uncaptured remainder of the hold (provider
// key "order/<id>/void") and, for a BNPL order, takes it off the plan. It
// returns the released amount (zero if nothing was left).
func (a *Activities) ReleaseRemainder(ctx context.Context, in ReleaseInput) (money.Money, error) {
	released, err := steps.Void(ctx, a.Ports, steps.MoveArgs{
		PaymentID: in.PaymentID, Key: "order/" + in.OrderID + "/void", ViaPSP: in.ViaPSP, At: in.At, Meta: meta(in.Tenant, in.OrderID),
	})
	if err != nil || in.PlanID == "" || !released.IsValid() || !released.IsPositive() {
		return released, err
	}
	_, err = steps.ReducePlan(ctx, a.Ports, steps.ReducePlanArgs{
		PlanID: in.PlanID, RefundID: "unshipped", Amount: released, At: in.At, Meta: meta(in.Tenant, in.OrderID),
	})
	return released, err
}

// OrderInput names an order at an instant.
type OrderInput struct {
	OrderID string    `json:"order_id"`
	Tenant  string    `json:"tenant,omitempty"`
	At      time.Time `json:"at"`
}

// CompleteOrder closes a fulfilled order (command "order/<id>/complete");
// an order in any other status is left alone.
func (a *Activities) CompleteOrder(ctx context.Context, in OrderInput) error {
	_, err := steps.Exec(ctx, a.Ports, order.StreamID(in.OrderID), newOrder, "order/"+in.OrderID+"/complete", meta(in.Tenant, in.OrderID),
		func(o *order.Order) ([]event.Event, error) {
			if o.Status() != order.StatusFulfilled {
				return nil, nil
			}
			return o.Complete(in.At)
		})
	return err
}

// AlertInput is an alert to raise.
type AlertInput struct {
	OrderID string    `json:"order_id"`
	Tenant  string    `json:"tenant,omitempty"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// RaiseAlert logs an alert and records it (once per order and kind).
func (a *Activities) RaiseAlert(ctx context.Context, in AlertInput) error {
	return steps.Alert(ctx, a.Ports, in.OrderID, in.Kind, in.Message, in.At, meta(in.Tenant, in.OrderID))
}

type skuQty struct {
	sku string
	qty int64
}

// skuQuantities sums a shipment's lines per SKU (reservations are per
// order and SKU at a location), in SKU order.
func skuQuantities(lines []fulfillment.Line) []skuQty {
	m := map[string]int64{}
	for _, l := range lines {
		m[l.SKU] += l.Quantity
	}
	out := make([]skuQty, 0, len(m))
	for s, q := range m {
		out = append(out, skuQty{s, q})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].sku < out[j].sku })
	return out
}

func orderLines(lines []fulfillment.Line) []order.LineQuantity {
	out := make([]order.LineQuantity, len(lines))
	for i, l := range lines {
		out[i] = order.LineQuantity{Line: l.Line, Quantity: l.Quantity}
	}
	return mergeLines(out)
}

// mergeLines sums quantities per line, in line order.
func mergeLines(lines []order.LineQuantity) []order.LineQuantity {
	m := map[int]int64{}
	for _, l := range lines {
		m[l.Line] += l.Quantity
	}
	out := make([]order.LineQuantity, 0, len(m))
	for l, q := range m {
		out = append(out, order.LineQuantity{Line: l, Quantity: q})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}
