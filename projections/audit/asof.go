package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/projections"
)

// Aggregate is what AsOf folds: a domain aggregate whose Apply evolves it
// by one event and never fails.
type Aggregate interface{ Apply(event.Event) }

// NewAggregate returns the empty aggregate a stream folds into.
type NewAggregate func(stream string) (Aggregate, error)

// ErrUnknownStream: AsOf knows no aggregate for the stream's category.
var ErrUnknownStream = errors.New("no aggregate for this stream")

// Aggregates folds livecore's streams: order-, payment-, plan-,
// fulfillment- and inventory-SKU@LOCATION.
func Aggregates(stream string) (Aggregate, error) {
	switch event.Category(stream) {
	case "order":
		return &order.Order{}, nil
	case "payment":
		return &payment.Payment{}, nil
	case "plan":
		return &financing.Plan{}, nil
	case "fulfillment":
		return &fulfillment.Fulfillment{}, nil
	case "inventory":
		sku, loc, ok := strings.Cut(strings.TrimPrefix(stream, "inventory-"), "@")
		l, err := inventory.ParseLocation(loc)
		if !ok || err != nil {
			return nil, fmt.Errorf("%w: %s", ErrUnknownStream, stream)
		}
		return inventory.NewItem(sku, l), nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownStream, stream)
}

// At is a moment in a stream's history: the last event at or before
// Position, or (Position 0) the last event recorded at or before Time.
// The zero At is the stream's current state.
type At struct {
	Position uint64
	Time     time.Time
}

// State is a stream's state at a moment.
type State struct {
	Stream     string
	Tenant     string
	Version    uint64 // of the last event folded (0: none yet)
	Position   uint64 // of the last event folded
	RecordedAt time.Time
	// Aggregate is the folded aggregate (*order.Order, *payment.Payment,
	// *financing.Plan, *fulfillment.Fulfillment, *inventory.Item).
	Aggregate Aggregate
	// View is a JSON-friendly summary of Aggregate (see Describe).
	View any
}

// AsOfOptions configures AsOf.
type AsOfOptions struct {
	Tenant string       // if set, must be the stream's tenant
	New    NewAggregate // default Aggregates
}

// AsOf reconstructs stream's state at a moment by folding its events with
// the aggregates' own Apply (the code the command side runs), decoding
// with reg (old event versions are upcast as on any read). Errors:
// projections.ErrNotFound (no such stream, or another tenant's),
// ErrUnknownStream, ErrImpossibleHistory, decoding errors.
func AsOf(ctx context.Context, r event.StreamReader, reg *event.Registry, stream string, at At, opts AsOfOptions) (State, error) {
	if opts.New == nil {
		opts.New = Aggregates
	}
	evs, err := r.ReadStream(ctx, stream, 1, 0)
	if err != nil {
		return State{}, fmt.Errorf("as of %s: %w", stream, err)
	}
	if len(evs) == 0 || (opts.Tenant != "" && evs[0].Metadata.Tenant != opts.Tenant) {
		return State{}, fmt.Errorf("as of %s: %w", stream, projections.ErrNotFound)
	}
	agg, err := opts.New(stream)
	if err != nil {
		return State{}, err
	}
	st := State{Stream: stream, Tenant: evs[0].Metadata.Tenant, Aggregate: agg}
	if err := fold(reg, agg, evs, at, &st); err != nil {
		return State{}, fmt.Errorf("as of %s: %w", stream, err)
	}
	st.View = Describe(agg)
	return st, nil
}

// ErrImpossibleHistory: an aggregate refused to fold the stream (its Apply
// panicked on amounts no decision could have produced): the history was
// altered, or decoded with the wrong registry.
var ErrImpossibleHistory = errors.New("history no decision could have produced")

func fold(reg *event.Registry, agg Aggregate, evs []event.Envelope, at At, st *State) (err error) {
	var pos uint64
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: position %d: %v", ErrImpossibleHistory, pos, r)
		}
	}()
	for _, e := range evs {
		if at.Position > 0 && e.Position > at.Position {
			break
		}
		if at.Position == 0 && !at.Time.IsZero() && e.RecordedAt.After(at.Time) {
			break
		}
		pos = e.Position
		ev, err := reg.Decode(e.Type, e.Data)
		if err != nil {
			return fmt.Errorf("position %d: %w", e.Position, err)
		}
		agg.Apply(ev)
		st.Version, st.Position, st.RecordedAt = e.Version, e.Position, e.RecordedAt
	}
	return nil
}

// OrderView summarises an order. Amounts are decimal strings.
type OrderView struct {
	OrderID, CustomerID, Region, Currency, Status string
	PaymentMethod, PlanKind, PaymentRef           string
	Subtotal, DiscountTotal, TaxTotal, Total      string
	Paid, Refunded, RefundPending, Cancelled      string
	Lines                                         []order.LineView
	PlacedAt, UpdatedAt                           time.Time
}

// PaymentView summarises a payment.
type PaymentView struct {
	PaymentID, OrderID, Method, Status, ProviderRef string
	Authorized, Captured, Released, Refunded        string
	Disputed, ChargedBack                           string
	ExpiresAt                                       time.Time
}

// PlanView summarises a BNPL plan.
type PlanView struct {
	PlanID, CustomerID, OrderID, Status, Kind string
	Financed, Collected, Refunded, Owed       string
	FeesAssessed, WrittenOff                  string
	Installments                              []financing.Installment
}

// ItemView summarises a SKU's stock at a location.
type ItemView struct {
	SKU, Location               string
	OnHand, Reserved, Available int64
	Reservations                []inventory.Reservation
	Drop                        inventory.DropView
}

// FulfillmentView summarises an order's fulfillment.
type FulfillmentView struct {
	OrderID   string
	Shipments []fulfillment.ShipmentView
	Returns   []fulfillment.ReturnView
}

// Describe returns a JSON-friendly view of a livecore aggregate (agg
// itself for others).
func Describe(agg Aggregate) any {
	s := func(m interface{ StringFixed() string }) string { return m.StringFixed() }
	switch a := agg.(type) {
	case *order.Order:
		if a.Status().IsZero() {
			return OrderView{}
		}
		return OrderView{
			OrderID: a.ID(), CustomerID: a.CustomerID(), Region: a.Region(), Currency: a.Currency().Code(), Status: a.Status().String(),
			PaymentMethod: a.PaymentMethod().String(), PlanKind: a.PlanKind().String(), PaymentRef: a.PaymentRef(),
			Subtotal: s(a.Subtotal()), DiscountTotal: s(a.DiscountTotal()), TaxTotal: s(a.TaxTotal()), Total: s(a.Total()),
			Paid: s(a.Paid()), Refunded: s(a.Refunded()), RefundPending: s(a.RefundPending()), Cancelled: s(a.CancelledValue()),
			Lines: a.Lines(), PlacedAt: a.PlacedAt(), UpdatedAt: a.UpdatedAt(),
		}
	case *payment.Payment:
		if !a.Authorized().IsValid() {
			return PaymentView{}
		}
		return PaymentView{
			PaymentID: a.ID(), OrderID: a.OrderID(), Method: a.Method().String(), Status: a.Status().String(), ProviderRef: a.ProviderRef(),
			Authorized: s(a.Authorized()), Captured: s(a.Captured()), Released: s(a.Released()), Refunded: s(a.Refunded()),
			Disputed: s(a.Disputed()), ChargedBack: s(a.ChargedBack()), ExpiresAt: a.ExpiresAt(),
		}
	case *financing.Plan:
		if !a.Financed().IsValid() {
			return PlanView{}
		}
		return PlanView{
			PlanID: a.ID(), CustomerID: a.CustomerID(), OrderID: a.OrderID(), Status: a.Status().String(), Kind: a.Terms().Kind.String(),
			Financed: s(a.Financed()), Collected: s(a.Collected()), Refunded: s(a.Refunded()), Owed: s(a.Owed()),
			FeesAssessed: s(a.FeesAssessed()), WrittenOff: s(a.WrittenOff()), Installments: a.Installments(),
		}
	case *inventory.Item:
		return ItemView{SKU: a.SKU(), Location: a.Location().String(), OnHand: a.OnHand(), Reserved: a.Reserved(), Available: a.Available(),
			Reservations: a.Reservations(), Drop: a.Drop()}
	case *fulfillment.Fulfillment:
		return FulfillmentView{OrderID: a.OrderID(), Shipments: a.Shipments(), Returns: a.Returns()}
	}
	return agg
}
