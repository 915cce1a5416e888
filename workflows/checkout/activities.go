package checkout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	domfulfillment "github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/workflows/fulfillment"
	"github.com/livecore/livecore/workflows/internal/steps"
)

// Activities are the checkout saga's steps. The order's payment and plan
// share the order's ID; commands and provider calls are keyed
// "order/<id>/<step>" ("order/42/authorize", "order/42/void").
type Activities struct {
	steps.Ports
	// Tokens finds the customer's payment token for an order.
	Tokens steps.TokenSource
	// Credit backs BNPL credit decisions.
	Credit CreditBureau
	// Locations are the stock locations to reserve from, in order of
	// preference: each SKU is reserved at the first location that holds
	// enough of it, and the order ships one parcel per location used.
	Locations []inventory.Location
}

func newOrder() *order.Order { return &order.Order{} }

func meta(tenant, orderID string) event.Metadata { return steps.Meta(tenant, orderID, "saga:checkout") }

func orderKey(orderID, step string) string { return "order/" + orderID + "/" + step }

// OrderView is the order as the saga starts from it.
type OrderView struct {
	OrderID    string       `json:"order_id"`
	CustomerID string       `json:"customer_id"`
	Status     string       `json:"status"`
	Choice     *Choice      `json:"choice,omitempty"`
	Total      money.Money  `json:"total,omitzero"`
	Lines      []order.Line `json:"lines"`
	// CancelReason is the reason of the order's cancellation, if it was.
	CancelReason string `json:"cancel_reason,omitempty"`
}

// LoadOrder reads the order. An order that was never placed is rejected.
func (a *Activities) LoadOrder(ctx context.Context, orderID string) (OrderView, error) {
	var v OrderView
	err := steps.Order(ctx, a.Ports, orderID, func(o *order.Order) {
		if o.Status().IsZero() {
			return
		}
		v = OrderView{OrderID: o.ID(), CustomerID: o.CustomerID(), Status: o.Status().String(), Total: o.Total()}
		for _, l := range o.Lines() {
			v.Lines = append(v.Lines, l.Line)
		}
		if !o.PaymentMethod().IsZero() {
			v.Choice = &Choice{Method: o.PaymentMethod(), Plan: o.PlanKind()}
		}
	})
	if err != nil {
		return OrderView{}, err
	}
	if v.OrderID == "" {
		return OrderView{}, steps.Reject(fmt.Errorf("order %s: %w", orderID, order.ErrNotPlaced))
	}
	if v.Status == order.StatusCancelled.String() {
		envs, err := a.Events.ReadStream(ctx, order.StreamID(orderID), 1, 0)
		if err != nil {
			return OrderView{}, fmt.Errorf("read order %s: %w", orderID, err)
		}
		for _, env := range envs {
			if env.Type != order.TypeOrderCancelled {
				continue
			}
			ev, err := a.Registry.DecodeEnvelope(env)
			if err != nil {
				return OrderView{}, fmt.Errorf("read order %s: %w", orderID, err)
			}
			v.CancelReason = ev.(*order.OrderCancelled).Reason
		}
	}
	return v, nil
}

// HandOff is what a confirmed order's hand-over needs, rebuilt from the
// aggregates.
type HandOff struct {
	// Fulfilling: the order is already split into shipments, so its
	// fulfillment started; nothing to rebuild.
	Fulfilling bool                   `json:"fulfilling,omitempty"`
	Payment    steps.Hold             `json:"payment"`
	PlanID     string                 `json:"plan_id,omitempty"`
	Shipments  []fulfillment.Shipment `json:"shipments,omitempty"`
}

// RebuildHandOff rebuilds the hand-over of a confirmed order from its
// payment and its open reservations. Errors: steps.TypeRejected when the
// reservations cannot tell where the goods are.
func (a *Activities) RebuildHandOff(ctx context.Context, orderID string) (HandOff, error) {
	var h HandOff
	if err := steps.Query(ctx, a.Ports, domfulfillment.StreamID(orderID), func() *domfulfillment.Fulfillment { return &domfulfillment.Fulfillment{} },
		func(f *domfulfillment.Fulfillment) { h.Fulfilling = f.IsSplit() }); err != nil || h.Fulfilling {
		return h, err
	}
	lines, total, err := a.orderAndHold(ctx, orderID, &h)
	if err != nil {
		return h, err
	}
	at := map[string]inventory.Location{}
	for _, n := range needs(lines) {
		loc, err := a.reservedAt(ctx, orderID, n.sku)
		if err != nil {
			return h, err
		}
		if loc.IsZero() {
			return h, steps.Reject(fmt.Errorf("order %s: no open reservation of %s", orderID, n.sku))
		}
		at[n.sku] = loc
	}
	h.Shipments, err = planShipments(lines, total, a.Locations, at)
	return h, err
}

// RebuildSplitHandOff rebuilds the hand-over of an order already split
// into shipments (to resume its fulfillment elsewhere): the shipments as
// the fulfillment aggregate has them, each valued as planShipments valued
// it (the order's total allocated by the shipments' line amounts), and the
// payment hold.
func (a *Activities) RebuildSplitHandOff(ctx context.Context, orderID string) (HandOff, error) {
	h := HandOff{Fulfilling: true}
	var views []domfulfillment.ShipmentView
	if err := steps.Query(ctx, a.Ports, domfulfillment.StreamID(orderID), func() *domfulfillment.Fulfillment { return &domfulfillment.Fulfillment{} },
		func(f *domfulfillment.Fulfillment) { views = f.Shipments() }); err != nil {
		return h, err
	}
	if len(views) == 0 {
		return h, steps.Reject(fmt.Errorf("order %s: not split into shipments", orderID))
	}
	lines, total, err := a.orderAndHold(ctx, orderID, &h)
	if err != nil {
		return h, err
	}
	amounts := map[int]int64{}
	for _, l := range lines {
		amounts[l.No] = l.Amount.MinorUnits()
	}
	weights := make([]int64, len(views))
	for i, v := range views {
		h.Shipments = append(h.Shipments, fulfillment.Shipment{ID: v.ID, Location: v.Location, Lines: v.Lines})
		for _, l := range v.Lines {
			weights[i] += amounts[l.Line]
		}
	}
	return h, value(h.Shipments, weights, total)
}

// orderAndHold reads an order's lines and total, and fills h's payment
// hold (and plan, for BNPL).
func (a *Activities) orderAndHold(ctx context.Context, orderID string, h *HandOff) ([]order.Line, money.Money, error) {
	var lines []order.Line
	var total money.Money
	if err := steps.Order(ctx, a.Ports, orderID, func(o *order.Order) {
		total = o.Total()
		for _, l := range o.Lines() {
			lines = append(lines, l.Line)
		}
	}); err != nil {
		return nil, total, err
	}
	if err := steps.Payment(ctx, a.Ports, orderID, func(pm *payment.Payment) {
		h.Payment = steps.Hold{PaymentID: orderID, ProviderRef: pm.ProviderRef(), Method: pm.Method(), Amount: pm.Authorized(), ExpiresAt: pm.ExpiresAt()}
	}); err != nil {
		return nil, total, err
	}
	if h.Payment.Method == payment.MethodBNPL {
		h.PlanID = orderID
	}
	return lines, total, nil
}

// value gives each shipment its share of total, in proportion to weights
// (its lines' amounts in minor units; evenly for free goods), exactly
// (money.Allocate).
func value(shipments []fulfillment.Shipment, weights []int64, total money.Money) error {
	valued := false
	for _, w := range weights {
		valued = valued || w > 0
	}
	if !valued { // free goods only: split evenly
		for i := range weights {
			weights[i] = 1
		}
	}
	shares, err := total.Allocate(weights...)
	if err != nil {
		return steps.Reject(fmt.Errorf("split %s over %d shipments: %w", total, len(shipments), err))
	}
	for i := range shipments {
		shipments[i].Amount = shares[i]
	}
	return nil
}

// StockInput names an order's lines for reserving or releasing.
type StockInput struct {
	OrderID string       `json:"order_id"`
	Tenant  string       `json:"tenant,omitempty"`
	Lines   []order.Line `json:"lines"`
	// Total is split over the shipments by line value.
	Total money.Money `json:"total"`
	// Until is when an unconfirmed hold may lapse.
	Until  time.Time `json:"until"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

type skuNeed struct {
	sku   string
	qty   int64
	lines []order.Line
}

func needs(lines []order.Line) []skuNeed {
	var out []skuNeed
	idx := map[string]int{}
	for _, l := range lines {
		i, ok := idx[l.SKU]
		if !ok {
			i = len(out)
			idx[l.SKU] = i
			out = append(out, skuNeed{sku: l.SKU})
		}
		out[i].qty += l.Quantity
		out[i].lines = append(out[i].lines, l)
	}
	return out
}

// reservedAt finds the location where the order already holds sku (an
// earlier attempt of this step, or a live-drop purchase).
func (a *Activities) reservedAt(ctx context.Context, orderID, sku string) (inventory.Location, error) {
	for _, loc := range a.Locations {
		var held bool
		if err := queryItem(ctx, a.Ports, sku, loc, func(it *inventory.Item) { _, held = it.Reservation(orderID) }); err != nil {
			return inventory.Location{}, err
		}
		if held {
			return loc, nil
		}
	}
	return inventory.Location{}, nil
}

func queryItem(ctx context.Context, p steps.Ports, sku string, loc inventory.Location, read func(it *inventory.Item)) error {
	return steps.Query(ctx, p, inventory.StreamID(sku, loc), func() *inventory.Item { return inventory.NewItem(sku, loc) }, read)
}

// ReserveStock holds every SKU of the order at the first location that has
// enough of it (command "order/<id>/reserve/<sku>@<location>") and plans
// one shipment per location used, each with its share of the total.
// Errors: steps.TypeOutOfStock when a SKU fits nowhere (what was held
// before stays held: ReleaseStock undoes it).
func (a *Activities) ReserveStock(ctx context.Context, in StockInput) ([]fulfillment.Shipment, error) {
	at := map[string]inventory.Location{}
	for _, n := range needs(in.Lines) {
		loc, err := a.reservedAt(ctx, in.OrderID, n.sku)
		if err != nil {
			return nil, err
		}
		best := int64(0)
		for _, cand := range a.Locations {
			if !loc.IsZero() {
				break
			}
			var avail int64
			if err := queryItem(ctx, a.Ports, n.sku, cand, func(it *inventory.Item) { avail = it.Available() }); err != nil {
				return nil, err
			}
			best = max(best, avail)
			if avail < n.qty {
				continue
			}
			_, err := steps.Exec(ctx, a.Ports, inventory.StreamID(n.sku, cand), func() *inventory.Item { return inventory.NewItem(n.sku, cand) },
				orderKey(in.OrderID, "reserve/"+n.sku+"@"+cand.String()), meta(in.Tenant, in.OrderID),
				func(it *inventory.Item) ([]event.Event, error) { return it.Reserve(in.OrderID, n.qty, in.Until, in.At) })
			switch {
			case err == nil:
				loc = cand
			case steps.IsType(err, steps.TypeOutOfStock):
				// Taken since we looked: try the next location.
			default:
				return nil, err
			}
		}
		if loc.IsZero() {
			return nil, steps.Reject(fmt.Errorf("order %s: %w", in.OrderID, &inventory.InsufficientStockError{SKU: n.sku, Requested: n.qty, Available: best}))
		}
		at[n.sku] = loc
	}
	return planShipments(in.Lines, in.Total, a.Locations, at)
}

// planShipments groups the lines by the location holding their SKU (in
// location order) and splits total over the parcels by line value.
func planShipments(lines []order.Line, total money.Money, locations []inventory.Location, at map[string]inventory.Location) ([]fulfillment.Shipment, error) {
	var out []fulfillment.Shipment
	var weights []int64
	for _, loc := range locations {
		var s fulfillment.Shipment
		var w int64
		for _, l := range lines {
			if at[l.SKU] != loc {
				continue
			}
			s.Lines = append(s.Lines, domfulfillment.Line{Line: l.No, SKU: l.SKU, Quantity: l.Quantity})
			w += l.Amount.MinorUnits()
		}
		if len(s.Lines) == 0 {
			continue
		}
		s.ID = fmt.Sprintf("s%d", len(out)+1)
		s.Location = loc
		out = append(out, s)
		weights = append(weights, w)
	}
	return out, value(out, weights, total)
}

// ReleaseStock releases every hold the order has (command
// "order/<id>/release/<sku>@<location>"); holds already released are
// skipped.
func (a *Activities) ReleaseStock(ctx context.Context, in StockInput) error {
	reason := in.Reason
	if reason == "" {
		reason = "checkout failed"
	}
	for _, n := range needs(in.Lines) {
		for _, loc := range a.Locations {
			var held bool
			if err := queryItem(ctx, a.Ports, n.sku, loc, func(it *inventory.Item) { _, held = it.Reservation(in.OrderID) }); err != nil {
				return err
			}
			if !held {
				continue
			}
			if _, err := steps.Exec(ctx, a.Ports, inventory.StreamID(n.sku, loc), func() *inventory.Item { return inventory.NewItem(n.sku, loc) },
				orderKey(in.OrderID, "release/"+n.sku+"@"+loc.String()), meta(in.Tenant, in.OrderID),
				func(it *inventory.Item) ([]event.Event, error) { return it.Release(in.OrderID, reason, in.At) }); err != nil {
				return err
			}
		}
	}
	return nil
}

// PayInput is a payment step of an order.
type PayInput struct {
	OrderID string      `json:"order_id"`
	Tenant  string      `json:"tenant,omitempty"`
	Amount  money.Money `json:"amount"`
	At      time.Time   `json:"at"`
}

// AuthorizeCard asks the provider for a hold of the order total on the
// customer's card (key "order/<id>/authorize") and records the answer on
// payment <orderID>. Errors: steps.TypeDeclined.
func (a *Activities) AuthorizeCard(ctx context.Context, in PayInput) (steps.Hold, error) {
	tok, err := a.Tokens.PaymentToken(ctx, in.OrderID)
	if err != nil {
		return steps.Hold{}, temporal.NewNonRetryableApplicationError("no payment token: "+err.Error(), steps.TypeDeclined, err)
	}
	return steps.Authorize(ctx, a.Ports, steps.AuthorizeArgs{
		PaymentID: in.OrderID, OrderID: in.OrderID, Method: payment.MethodCard, Token: tok, Amount: in.Amount,
		Key: orderKey(in.OrderID, "authorize"), At: in.At, Meta: meta(in.Tenant, in.OrderID),
	})
}

// VoidCard releases the order's card hold (key "order/<id>/void"); a hold
// that was never placed or already closed needs nothing.
func (a *Activities) VoidCard(ctx context.Context, in PayInput) error {
	_, err := steps.Void(ctx, a.Ports, steps.MoveArgs{
		PaymentID: in.OrderID, Key: orderKey(in.OrderID, "void"), ViaPSP: true, At: in.At, Meta: meta(in.Tenant, in.OrderID),
	})
	if steps.IsType(err, steps.TypeAuthorizationClosed) {
		return nil
	}
	return err
}

// PlanInput opens a BNPL plan for an order.
type PlanInput struct {
	OrderID    string         `json:"order_id"`
	Tenant     string         `json:"tenant,omitempty"`
	CustomerID string         `json:"customer_id"`
	Amount     money.Money    `json:"amount"`
	Kind       order.PlanKind `json:"kind"`
	At         time.Time      `json:"at"`
}

// PlanOpened is an approved plan.
type PlanOpened struct {
	PlanID string `json:"plan_id"`
	// DueNow is owed at origination (pay-in-4's first installment; zero
	// for monthly plans).
	DueNow money.Money `json:"due_now,omitzero"`
}

// OpenPlan makes the credit decision and, if approved, originates the plan
// (plan ID = order ID; command "order/<id>/credit"). Errors:
// steps.TypeCreditDeclined with the decline reasons.
func (a *Activities) OpenPlan(ctx context.Context, in PlanInput) (PlanOpened, error) {
	kind, err := financing.ParseKind(in.Kind.String())
	if err != nil {
		return PlanOpened{}, steps.Reject(err)
	}
	prof, err := a.Credit.Profile(ctx, in.CustomerID, in.Amount.Currency())
	if err != nil {
		return PlanOpened{}, fmt.Errorf("credit profile of %s: %w", in.CustomerID, err)
	}
	terms := financing.Terms{Kind: kind}
	if kind.IsMonthly() {
		terms.APR = prof.MonthlyAPR
	}
	app := financing.Application{
		PlanID: in.OrderID, CustomerID: in.CustomerID, OrderID: in.OrderID, Amount: in.Amount, Terms: terms,
		CurrentExposure: prof.Exposure, ExposureLimit: prof.Limit, OpenDelinquencies: prof.OpenDelinquencies,
	}
	if _, err := steps.Exec(ctx, a.Ports, financing.StreamID(in.OrderID), func() *financing.Plan { return &financing.Plan{} },
		orderKey(in.OrderID, "credit"), meta(in.Tenant, in.OrderID),
		func(pl *financing.Plan) ([]event.Event, error) { return pl.Decide(app, in.At) }); err != nil {
		return PlanOpened{}, err
	}
	out := PlanOpened{PlanID: in.OrderID, DueNow: money.Zero(in.Amount.Currency())}
	var reasons []financing.ReasonCode
	var declined bool
	if err := steps.Plan(ctx, a.Ports, in.OrderID, func(pl *financing.Plan) {
		declined, reasons = pl.Status() == financing.StatusDeclined, pl.Reasons()
		for _, inst := range pl.Installments() {
			if !inst.DueAt.After(in.At) {
				out.DueNow, _ = out.DueNow.Add(inst.Unpaid())
			}
		}
	}); err != nil {
		return PlanOpened{}, err
	}
	if declined {
		return PlanOpened{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("credit declined: %v", reasons), steps.TypeCreditDeclined, nil)
	}
	return out, nil
}

// CollectFirstInstallment collects what a new plan owes at once from the
// customer's card (collection "i1-a1"). Errors: steps.TypeDeclined.
func (a *Activities) CollectFirstInstallment(ctx context.Context, in PayInput) error {
	tok, err := a.Tokens.PaymentToken(ctx, in.OrderID)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("no payment token: "+err.Error(), steps.TypeDeclined, err)
	}
	return steps.Collect(ctx, a.Ports, steps.CollectArgs{
		PlanID: in.OrderID, OrderID: in.OrderID, CollectionID: "i1-a1", Token: tok, Amount: in.Amount, At: in.At, Meta: meta(in.Tenant, in.OrderID),
	})
}

// RecordPlanHold records the lender's commitment to fund the order as the
// order's BNPL authorization (command "order/<id>/authorize").
func (a *Activities) RecordPlanHold(ctx context.Context, in PayInput) (steps.Hold, error) {
	return steps.RecordHold(ctx, a.Ports, steps.AuthorizeArgs{
		PaymentID: in.OrderID, OrderID: in.OrderID, Method: payment.MethodBNPL, Amount: in.Amount,
		Key: orderKey(in.OrderID, "authorize"), At: in.At, Meta: meta(in.Tenant, in.OrderID),
	}, financing.StreamID(in.OrderID))
}

// CancelPlan undoes a BNPL checkout: the whole plan is refunded (refund
// "checkout-cancelled"), which returns the collected first installment to
// the card, and the lender's commitment is voided. A plan that was never
// approved needs nothing.
func (a *Activities) CancelPlan(ctx context.Context, in PayInput) error {
	var open bool
	var left money.Money
	if err := steps.Plan(ctx, a.Ports, in.OrderID, func(pl *financing.Plan) {
		st := pl.Status()
		open = st != financing.StatusNew && st != financing.StatusDeclined && st != financing.StatusChargedOff
		if open {
			left, _ = pl.Financed().Sub(pl.Refunded())
		}
	}); err != nil {
		return err
	}
	if open && left.IsPositive() {
		if _, err := steps.ReducePlan(ctx, a.Ports, steps.ReducePlanArgs{
			PlanID: in.OrderID, RefundID: "checkout-cancelled", Amount: left, At: in.At, Meta: meta(in.Tenant, in.OrderID),
		}); err != nil {
			return err
		}
	}
	_, err := steps.Void(ctx, a.Ports, steps.MoveArgs{PaymentID: in.OrderID, Key: orderKey(in.OrderID, "void"), At: in.At, Meta: meta(in.Tenant, in.OrderID)})
	if steps.IsType(err, steps.TypeAuthorizationClosed) {
		return nil
	}
	return err
}

// ConfirmInput confirms an order as paid.
type ConfirmInput struct {
	OrderID    string      `json:"order_id"`
	Tenant     string      `json:"tenant,omitempty"`
	PaymentRef string      `json:"payment_ref"`
	Paid       money.Money `json:"paid"`
	At         time.Time   `json:"at"`
}

// ConfirmOrder records that the order's payment is secured (command
// "order/<id>/confirm").
func (a *Activities) ConfirmOrder(ctx context.Context, in ConfirmInput) error {
	_, err := steps.Exec(ctx, a.Ports, order.StreamID(in.OrderID), newOrder, orderKey(in.OrderID, "confirm"), meta(in.Tenant, in.OrderID),
		func(o *order.Order) ([]event.Event, error) { return o.Confirm(in.PaymentRef, in.Paid, in.At) })
	return err
}

// CancelInput cancels an order.
type CancelInput struct {
	OrderID string    `json:"order_id"`
	Tenant  string    `json:"tenant,omitempty"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// CancelOrder cancels the order (command "order/<id>/cancel"); an order
// already cancelled is left as it is.
func (a *Activities) CancelOrder(ctx context.Context, in CancelInput) error {
	_, err := steps.Exec(ctx, a.Ports, order.StreamID(in.OrderID), newOrder, orderKey(in.OrderID, "cancel"), meta(in.Tenant, in.OrderID),
		func(o *order.Order) ([]event.Event, error) {
			evs, err := o.Cancel(in.Reason, in.At)
			if errors.Is(err, order.ErrOrderAlreadyCancelled) {
				return nil, nil
			}
			return evs, err
		})
	return err
}
