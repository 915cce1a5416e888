// Package order is the order aggregate: a customer's cart with exact totals,
// the checkout choice, payment confirmation, cancellation (whole or by line),
// fulfillment by shipment, refunds and returns.
//
// # State machine
//
//	(none) ──Place──────────────► Placed
//	Placed ──StartCheckout──────► CheckoutStarted ──StartCheckout──► CheckoutStarted (method switched)
//	CheckoutStarted ──Confirm───► Confirmed
//	Confirmed | PartiallyFulfilled ──FulfillLines──► PartiallyFulfilled  (lines still open)
//	                                               └► Fulfilled          (no line open)
//	Fulfilled ──Complete────────► Completed
//	Placed | CheckoutStarted | Confirmed ──Cancel──► Cancelled            (nothing shipped)
//	Placed | CheckoutStarted | Confirmed | PartiallyFulfilled ──CancelLines──►
//	    same status while lines stay open; Fulfilled if the rest was
//	    fulfilled; Cancelled (OrderCancelled follows) if nothing was.
//
// A line is open for its ordered quantity minus what was cancelled and
// fulfilled. Refunds and returns do not move the status; they are tracked by
// amount and quantity: RequestRefund/RecordRefund in any status once paid
// (refunded + pending <= paid, always), RequestReturn/ReceiveReturn once
// something was fulfilled (returned <= fulfilled per line). Any other command
// in a status returns a *TransitionError (ErrIllegalTransition; also
// ErrOrderAlreadyCancelled for a cancelled order); a command on an order that
// was never placed returns ErrNotPlaced.
//
// Decisions are methods that return events and never change the Order;
// Apply is the only mutator. The package does no IO and reads no clock:
// times and IDs come in.
package order

import (
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
)

// Order is the order aggregate. The zero Order is an order not yet placed,
// ready for Place or for folding its stream with Apply. An Order is not safe
// for concurrent use.
type Order struct {
	id, customerID, region string
	currency               money.Currency
	status                 Status
	lines                  []lineState
	discounts, taxes       []Adjustment

	subtotal, discountTotal, taxTotal, total money.Money

	method     PaymentMethod
	plan       PlanKind
	paymentRef string
	paid       money.Money // zero in currency until confirmed

	cancelledValue money.Money
	refundPending  money.Money // requested, not yet recorded
	refunded       money.Money
	refunds        map[string]*refund
	shipments      map[string]struct{}
	returns        map[string]*returnState

	placedAt, updatedAt time.Time
}

type lineState struct {
	line      Line
	cancelled int64
	fulfilled int64
	returning int64 // requested in open returns
	returned  int64 // received
}

func (l lineState) open() int64 { return l.line.Quantity - l.cancelled - l.fulfilled }

type refund struct {
	requested money.Money
	settled   bool
}

type returnState struct {
	lines    map[int]int64
	received bool
}

// Apply evolves the order by one event. It never fails: events are facts.
// Events of other aggregates are ignored.
func (o *Order) Apply(e event.Event) {
	switch e := e.(type) {
	case *OrderPlaced:
		o.id, o.customerID, o.region, o.currency = e.OrderID, e.CustomerID, e.Region, e.Currency
		o.status = StatusPlaced
		o.lines = make([]lineState, len(e.Lines))
		for i, l := range e.Lines {
			o.lines[i] = lineState{line: l}
		}
		o.discounts = append([]Adjustment(nil), e.Discounts...)
		o.taxes = append([]Adjustment(nil), e.Taxes...)
		o.subtotal, o.discountTotal, o.taxTotal, o.total = e.Subtotal, e.DiscountTotal, e.TaxTotal, e.Total
		zero := money.Zero(e.Currency)
		o.paid, o.cancelledValue, o.refundPending, o.refunded = zero, zero, zero, zero
		o.refunds = map[string]*refund{}
		o.shipments = map[string]struct{}{}
		o.returns = map[string]*returnState{}
		o.placedAt, o.updatedAt = e.PlacedAt, e.PlacedAt
	case *CheckoutStarted:
		o.method, o.plan = e.Method, e.Plan
		o.status = StatusCheckoutStarted
		o.updatedAt = e.At
	case *OrderConfirmed:
		o.paymentRef, o.paid = e.PaymentRef, e.Paid
		o.status = StatusConfirmed
		o.updatedAt = e.At
	case *OrderCancelled:
		o.status = StatusCancelled
		o.updatedAt = e.At
	case *OrderLinesCancelled:
		for _, lq := range e.Lines {
			if l := o.line(lq.Line); l != nil {
				l.cancelled += lq.Quantity
			}
		}
		o.cancelledValue = mustAdd(o.cancelledValue, e.Value)
		o.settleFulfillment()
		o.updatedAt = e.At
	case *OrderLinesFulfilled:
		o.shipments[e.ShipmentID] = struct{}{}
		for _, lq := range e.Lines {
			if l := o.line(lq.Line); l != nil {
				l.fulfilled += lq.Quantity
			}
		}
		o.settleFulfillment()
		o.updatedAt = e.At
	case *OrderCompleted:
		o.status = StatusCompleted
		o.updatedAt = e.At
	case *RefundRequested:
		o.refunds[e.RefundID] = &refund{requested: e.Amount}
		o.refundPending = mustAdd(o.refundPending, e.Amount)
		o.updatedAt = e.At
	case *OrderRefunded:
		if r := o.refunds[e.RefundID]; r != nil && !r.settled {
			r.settled = true
			o.refundPending = mustAdd(o.refundPending, r.requested.Neg())
		}
		o.refunded = mustAdd(o.refunded, e.Amount)
		o.updatedAt = e.At
	case *ReturnRequested:
		rs := &returnState{lines: make(map[int]int64, len(e.Lines))}
		for _, lq := range e.Lines {
			rs.lines[lq.Line] += lq.Quantity
			if l := o.line(lq.Line); l != nil {
				l.returning += lq.Quantity
			}
		}
		o.returns[e.ReturnID] = rs
		o.updatedAt = e.At
	case *ReturnReceived:
		if rs := o.returns[e.ReturnID]; rs != nil && !rs.received {
			rs.received = true
			for no, q := range rs.lines {
				if l := o.line(no); l != nil {
					l.returning -= q
				}
			}
		}
		for _, lq := range e.Lines {
			if l := o.line(lq.Line); l != nil {
				l.returned += lq.Quantity
			}
		}
		o.updatedAt = e.At
	}
}

// settleFulfillment moves the status after lines were fulfilled or cancelled:
// Fulfilled when nothing is open and something was fulfilled,
// PartiallyFulfilled when something was fulfilled and lines are open.
// Cancellation of everything is an explicit OrderCancelled event.
func (o *Order) settleFulfillment() {
	var open, fulfilled int64
	for _, l := range o.lines {
		open += l.open()
		fulfilled += l.fulfilled
	}
	switch {
	case fulfilled == 0:
	case open == 0:
		o.status = StatusFulfilled
	default:
		o.status = StatusPartiallyFulfilled
	}
}

func (o *Order) line(no int) *lineState {
	if no < 1 || no > len(o.lines) {
		return nil
	}
	return &o.lines[no-1]
}

// mustAdd adds amounts that decisions have already checked (same currency,
// in range). Apply cannot fail, so an impossible mismatch keeps a.
func mustAdd(a, b money.Money) money.Money {
	s, err := a.Add(b)
	if err != nil {
		return a
	}
	return s
}

// ID is the order's ID ("" before it is placed).
func (o *Order) ID() string { return o.id }

// CustomerID is the customer who placed the order.
func (o *Order) CustomerID() string { return o.customerID }

// Region is the region the order was placed in.
func (o *Order) Region() string { return o.region }

// Currency is the order's currency (zero before placement).
func (o *Order) Currency() money.Currency { return o.currency }

// Status is the order's status (zero before placement).
func (o *Order) Status() Status { return o.status }

// LineView is a line with its progress.
type LineView struct {
	Line
	Cancelled, Fulfilled, Open, Returning, Returned int64
}

// Lines returns a copy of the order's lines with their progress.
func (o *Order) Lines() []LineView {
	out := make([]LineView, len(o.lines))
	for i, l := range o.lines {
		out[i] = LineView{Line: l.line, Cancelled: l.cancelled, Fulfilled: l.fulfilled, Open: l.open(), Returning: l.returning, Returned: l.returned}
	}
	return out
}

// Discounts and Taxes return copies of the explicit adjustments.
func (o *Order) Discounts() []Adjustment { return append([]Adjustment(nil), o.discounts...) }
func (o *Order) Taxes() []Adjustment     { return append([]Adjustment(nil), o.taxes...) }

// Subtotal, DiscountTotal, TaxTotal and Total are the placed totals:
// Total = Subtotal - DiscountTotal + TaxTotal.
func (o *Order) Subtotal() money.Money      { return o.subtotal }
func (o *Order) DiscountTotal() money.Money { return o.discountTotal }
func (o *Order) TaxTotal() money.Money      { return o.taxTotal }
func (o *Order) Total() money.Money         { return o.total }

// PaymentMethod and PlanKind are the last checkout choice (zero before one).
func (o *Order) PaymentMethod() PaymentMethod { return o.method }
func (o *Order) PlanKind() PlanKind           { return o.plan }

// PaymentRef is the payment reference recorded at confirmation.
func (o *Order) PaymentRef() string { return o.paymentRef }

// Paid is the amount confirmed as paid (zero before confirmation).
func (o *Order) Paid() money.Money { return o.paid }

// CancelledValue is the line value (quantity * unit price) cancelled by
// CancelLines.
func (o *Order) CancelledValue() money.Money { return o.cancelledValue }

// Refunded is what was refunded; RefundPending what is requested and not yet
// recorded. Refunded + RefundPending <= Paid always holds.
func (o *Order) Refunded() money.Money      { return o.refunded }
func (o *Order) RefundPending() money.Money { return o.refundPending }

// Refundable is Paid - Refunded - RefundPending.
func (o *Order) Refundable() money.Money {
	if !o.paid.IsValid() {
		return money.Money{}
	}
	return mustAdd(mustAdd(o.paid, o.refunded.Neg()), o.refundPending.Neg())
}

// PlacedAt and UpdatedAt are the times of the first and the last event.
func (o *Order) PlacedAt() time.Time  { return o.placedAt }
func (o *Order) UpdatedAt() time.Time { return o.updatedAt }
