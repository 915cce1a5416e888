package order

import (
	"fmt"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
)

// PlaceOrder is the input of Place.
type PlaceOrder struct {
	OrderID    string
	CustomerID string
	Region     string
	Currency   money.Currency
	Lines      []LineItem
	// Discounts are positive amounts taken off the subtotal.
	Discounts []Adjustment
	// Taxes are non-negative amounts added to it, computed by the caller
	// (a tax engine); the order only checks and sums them.
	Taxes []Adjustment
}

// LineItem is one cart line: Quantity units of SKU at UnitPrice each.
type LineItem struct {
	SKU       string
	Quantity  int64
	UnitPrice money.Money
}

// Place places a new order and computes its totals exactly:
// Subtotal = sum(Quantity * UnitPrice), Total = Subtotal - discounts + taxes.
// It returns ErrAlreadyPlaced for an existing order, ErrInvalidInput for a
// missing ID, customer, region, currency, SKU or label, ErrEmptyCart,
// ErrInvalidQuantity, ErrNegativePrice, ErrInvalidAdjustment (a discount not
// positive or a tax below zero), ErrMixedCurrencies for any amount not in the
// order's currency, ErrNegativeTotal, and money.ErrOutOfRange for amounts
// past the money bound.
func (o *Order) Place(p PlaceOrder, now time.Time) ([]event.Event, error) {
	if !o.status.IsZero() {
		return nil, fmt.Errorf("place %s: %w", p.OrderID, ErrAlreadyPlaced)
	}
	switch {
	case p.OrderID == "":
		return nil, fmt.Errorf("place: %w: order ID required", ErrInvalidInput)
	case p.CustomerID == "":
		return nil, fmt.Errorf("place %s: %w: customer ID required", p.OrderID, ErrInvalidInput)
	case p.Region == "":
		return nil, fmt.Errorf("place %s: %w: region required", p.OrderID, ErrInvalidInput)
	case p.Currency.IsZero():
		return nil, fmt.Errorf("place %s: %w: currency required", p.OrderID, ErrInvalidInput)
	case len(p.Lines) == 0:
		return nil, fmt.Errorf("place %s: %w", p.OrderID, ErrEmptyCart)
	}
	inCurrency := func(m money.Money) error {
		if !m.IsValid() || m.Currency() != p.Currency {
			return fmt.Errorf("%w: %s in a %s order", ErrMixedCurrencies, m, p.Currency)
		}
		return nil
	}
	lines := make([]Line, len(p.Lines))
	subtotal := money.Zero(p.Currency)
	for i, li := range p.Lines {
		no := i + 1
		if li.SKU == "" {
			return nil, fmt.Errorf("place %s: line %d: %w: SKU required", p.OrderID, no, ErrInvalidInput)
		}
		if li.Quantity <= 0 {
			return nil, fmt.Errorf("place %s: line %d: %w: %d", p.OrderID, no, ErrInvalidQuantity, li.Quantity)
		}
		if err := inCurrency(li.UnitPrice); err != nil {
			return nil, fmt.Errorf("place %s: line %d: %w", p.OrderID, no, err)
		}
		if li.UnitPrice.IsNegative() {
			return nil, fmt.Errorf("place %s: line %d: %w: %s", p.OrderID, no, ErrNegativePrice, li.UnitPrice)
		}
		amount, err := li.UnitPrice.MulInt(li.Quantity)
		if err != nil {
			return nil, fmt.Errorf("place %s: line %d: %w", p.OrderID, no, err)
		}
		if subtotal, err = subtotal.Add(amount); err != nil {
			return nil, fmt.Errorf("place %s: subtotal: %w", p.OrderID, err)
		}
		lines[i] = Line{No: no, SKU: li.SKU, Quantity: li.Quantity, UnitPrice: li.UnitPrice, Amount: amount}
	}
	sum := func(kind string, adj []Adjustment, ok func(money.Money) bool) (money.Money, error) {
		total := money.Zero(p.Currency)
		for i, a := range adj {
			if a.Label == "" {
				return money.Money{}, fmt.Errorf("%s %d: %w: label required", kind, i+1, ErrInvalidInput)
			}
			if err := inCurrency(a.Amount); err != nil {
				return money.Money{}, fmt.Errorf("%s %d: %w", kind, i+1, err)
			}
			if !ok(a.Amount) {
				return money.Money{}, fmt.Errorf("%s %d: %w: %s", kind, i+1, ErrInvalidAdjustment, a.Amount)
			}
			var err error
			if total, err = total.Add(a.Amount); err != nil {
				return money.Money{}, fmt.Errorf("%s total: %w", kind, err)
			}
		}
		return total, nil
	}
	discountTotal, err := sum("discount", p.Discounts, money.Money.IsPositive)
	if err != nil {
		return nil, fmt.Errorf("place %s: %w", p.OrderID, err)
	}
	taxTotal, err := sum("tax", p.Taxes, func(m money.Money) bool { return !m.IsNegative() })
	if err != nil {
		return nil, fmt.Errorf("place %s: %w", p.OrderID, err)
	}
	total, err := subtotal.Sub(discountTotal)
	if err == nil {
		total, err = total.Add(taxTotal)
	}
	if err != nil {
		return nil, fmt.Errorf("place %s: total: %w", p.OrderID, err)
	}
	if total.IsNegative() {
		return nil, fmt.Errorf("place %s: %w: %s", p.OrderID, ErrNegativeTotal, total)
	}
	return []event.Event{&OrderPlaced{
		OrderID:       p.OrderID,
		CustomerID:    p.CustomerID,
		Region:        p.Region,
		Currency:      p.Currency,
		Lines:         lines,
		Discounts:     append([]Adjustment{}, p.Discounts...),
		Taxes:         append([]Adjustment{}, p.Taxes...),
		Subtotal:      subtotal,
		DiscountTotal: discountTotal,
		TaxTotal:      taxTotal,
		Total:         total,
		PlacedAt:      now,
	}}, nil
}

// require returns ErrNotPlaced for an order that does not exist and a
// *TransitionError when its status is not one of allowed.
func (o *Order) require(cmd string, allowed ...Status) error {
	if o.status.IsZero() {
		return fmt.Errorf("%s: %w", cmd, ErrNotPlaced)
	}
	for _, s := range allowed {
		if o.status == s {
			return nil
		}
	}
	return &TransitionError{From: o.status, Command: cmd}
}

// StartCheckout records the customer's payment choice: MethodCard with the
// zero PlanKind, or MethodBNPL with a plan kind (ErrPlanMismatch otherwise).
// Allowed in Placed and CheckoutStarted (switching method); choosing what is
// already chosen returns no events.
func (o *Order) StartCheckout(method PaymentMethod, plan PlanKind, now time.Time) ([]event.Event, error) {
	if err := o.require("start checkout", StatusPlaced, StatusCheckoutStarted); err != nil {
		return nil, err
	}
	switch {
	case method.IsZero():
		return nil, fmt.Errorf("start checkout %s: %w: none chosen", o.id, ErrInvalidPaymentMethod)
	case method == MethodBNPL && plan.IsZero():
		return nil, fmt.Errorf("start checkout %s: %w: BNPL needs a plan kind", o.id, ErrPlanMismatch)
	case method == MethodCard && !plan.IsZero():
		return nil, fmt.Errorf("start checkout %s: %w: card with plan %s", o.id, ErrPlanMismatch, plan)
	}
	if o.status == StatusCheckoutStarted && o.method == method && o.plan == plan {
		return nil, nil
	}
	return []event.Event{&CheckoutStarted{OrderID: o.id, Method: method, Plan: plan, At: now}}, nil
}

// Confirm records that payment of the whole total is secured. Allowed in
// CheckoutStarted; paymentRef is required (ErrInvalidInput) and paid must
// equal the total (ErrAmountMismatch).
func (o *Order) Confirm(paymentRef string, paid money.Money, now time.Time) ([]event.Event, error) {
	if err := o.require("confirm", StatusCheckoutStarted); err != nil {
		return nil, err
	}
	if paymentRef == "" {
		return nil, fmt.Errorf("confirm %s: %w: payment reference required", o.id, ErrInvalidInput)
	}
	if !paid.Equal(o.total) {
		return nil, fmt.Errorf("confirm %s: %w: paid %s, total %s", o.id, ErrAmountMismatch, paid, o.total)
	}
	return []event.Event{&OrderConfirmed{OrderID: o.id, PaymentRef: paymentRef, Paid: paid, At: now}}, nil
}

// Cancel cancels the whole order. Allowed in Placed, CheckoutStarted and
// Confirmed; once anything shipped it returns an error matching both
// ErrAlreadyShipped and ErrIllegalTransition (cancel the open lines with
// CancelLines instead). A reason is required (ErrInvalidInput).
func (o *Order) Cancel(reason string, now time.Time) ([]event.Event, error) {
	err := o.require("cancel", StatusPlaced, StatusCheckoutStarted, StatusConfirmed)
	switch o.status {
	case StatusPartiallyFulfilled, StatusFulfilled, StatusCompleted:
		return nil, fmt.Errorf("cancel %s: %w: %w", o.id, ErrAlreadyShipped, err)
	}
	if err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, fmt.Errorf("cancel %s: %w: reason required", o.id, ErrInvalidInput)
	}
	return []event.Event{&OrderCancelled{OrderID: o.id, Reason: reason, At: now}}, nil
}

// checkLines validates a list of line quantities: not empty, known lines
// (ErrUnknownLine), each once (ErrDuplicateLine), positive quantities
// (ErrInvalidQuantity), and each at most limit(line) (exceed). It returns
// their value at unit price.
func (o *Order) checkLines(lines []LineQuantity, limit func(*lineState) int64, exceed error) (money.Money, error) {
	if len(lines) == 0 {
		return money.Money{}, fmt.Errorf("%w: no lines", ErrInvalidInput)
	}
	seen := make(map[int]bool, len(lines))
	value := money.Zero(o.currency)
	for _, lq := range lines {
		l := o.line(lq.Line)
		switch {
		case l == nil:
			return money.Money{}, fmt.Errorf("%w: %d", ErrUnknownLine, lq.Line)
		case seen[lq.Line]:
			return money.Money{}, fmt.Errorf("%w: %d", ErrDuplicateLine, lq.Line)
		case lq.Quantity <= 0:
			return money.Money{}, fmt.Errorf("line %d: %w: %d", lq.Line, ErrInvalidQuantity, lq.Quantity)
		case lq.Quantity > limit(l):
			return money.Money{}, fmt.Errorf("line %d: %w: %d > %d", lq.Line, exceed, lq.Quantity, limit(l))
		}
		seen[lq.Line] = true
		v, err := l.line.UnitPrice.MulInt(lq.Quantity)
		if err == nil {
			value, err = value.Add(v)
		}
		if err != nil {
			return money.Money{}, fmt.Errorf("line %d: %w", lq.Line, err)
		}
	}
	return value, nil
}

func openQty(l *lineState) int64 { return l.open() }

// CancelLines cancels quantities of lines that have not shipped. Allowed in
// Placed, CheckoutStarted, Confirmed and PartiallyFulfilled; each quantity
// must be at most the line's open quantity (ErrQuantityExceedsOpen; see
// checkLines for the other errors) and a reason is required. When it leaves
// no line open and nothing was fulfilled, OrderCancelled follows in the same
// decision; when the rest was fulfilled, the order becomes Fulfilled.
func (o *Order) CancelLines(lines []LineQuantity, reason string, now time.Time) ([]event.Event, error) {
	if err := o.require("cancel lines", StatusPlaced, StatusCheckoutStarted, StatusConfirmed, StatusPartiallyFulfilled); err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, fmt.Errorf("cancel lines %s: %w: reason required", o.id, ErrInvalidInput)
	}
	value, err := o.checkLines(lines, openQty, ErrQuantityExceedsOpen)
	if err != nil {
		return nil, fmt.Errorf("cancel lines %s: %w", o.id, err)
	}
	out := []event.Event{&OrderLinesCancelled{OrderID: o.id, Lines: append([]LineQuantity(nil), lines...), Value: value, Reason: reason, At: now}}
	var open, fulfilled int64
	for _, l := range o.lines {
		open += l.open()
		fulfilled += l.fulfilled
	}
	for _, lq := range lines {
		open -= lq.Quantity
	}
	if open == 0 && fulfilled == 0 {
		out = append(out, &OrderCancelled{OrderID: o.id, Reason: reason, At: now})
	}
	return out, nil
}

// FulfillLines records a shipment that left with these line quantities.
// Allowed in Confirmed and PartiallyFulfilled; shipmentID is required and
// recorded once (ErrDuplicateShipment); each quantity must be at most the
// line's open quantity (ErrQuantityExceedsOpen; see checkLines).
func (o *Order) FulfillLines(shipmentID string, lines []LineQuantity, now time.Time) ([]event.Event, error) {
	if err := o.require("fulfill lines", StatusConfirmed, StatusPartiallyFulfilled); err != nil {
		return nil, err
	}
	if shipmentID == "" {
		return nil, fmt.Errorf("fulfill lines %s: %w: shipment ID required", o.id, ErrInvalidInput)
	}
	if _, dup := o.shipments[shipmentID]; dup {
		return nil, fmt.Errorf("fulfill lines %s: %w: %s", o.id, ErrDuplicateShipment, shipmentID)
	}
	if _, err := o.checkLines(lines, openQty, ErrQuantityExceedsOpen); err != nil {
		return nil, fmt.Errorf("fulfill lines %s: %w", o.id, err)
	}
	return []event.Event{&OrderLinesFulfilled{OrderID: o.id, ShipmentID: shipmentID, Lines: append([]LineQuantity(nil), lines...), At: now}}, nil
}

// Complete closes a Fulfilled order (every line fulfilled or cancelled).
// Any other status is a *TransitionError.
func (o *Order) Complete(now time.Time) ([]event.Event, error) {
	if err := o.require("complete", StatusFulfilled); err != nil {
		return nil, err
	}
	return []event.Event{&OrderCompleted{OrderID: o.id, At: now}}, nil
}

// RequestRefund asks for a refund of amount, pending until RecordRefund. It
// needs a placed order, a new refundID (ErrDuplicateRefund), a reason
// (ErrInvalidInput), a positive amount in the order's currency
// (ErrInvalidAdjustment, ErrMixedCurrencies) of at most Refundable (a
// *RefundExceedsPaidError, which matches ErrRefundExceedsPaid: nothing is
// refundable before confirmation).
func (o *Order) RequestRefund(refundID string, amount money.Money, reason string, now time.Time) ([]event.Event, error) {
	if o.status.IsZero() {
		return nil, fmt.Errorf("request refund: %w", ErrNotPlaced)
	}
	switch {
	case refundID == "":
		return nil, fmt.Errorf("request refund %s: %w: refund ID required", o.id, ErrInvalidInput)
	case reason == "":
		return nil, fmt.Errorf("request refund %s: %w: reason required", o.id, ErrInvalidInput)
	case !amount.IsValid() || amount.Currency() != o.currency:
		return nil, fmt.Errorf("request refund %s: %w: %s in a %s order", o.id, ErrMixedCurrencies, amount, o.currency)
	case !amount.IsPositive():
		return nil, fmt.Errorf("request refund %s: %w: %s", o.id, ErrInvalidAdjustment, amount)
	}
	if _, dup := o.refunds[refundID]; dup {
		return nil, fmt.Errorf("request refund %s: %w: %s", o.id, ErrDuplicateRefund, refundID)
	}
	if refundable := o.Refundable(); amount.GreaterThan(refundable) {
		return nil, fmt.Errorf("request refund %s: %w", o.id, &RefundExceedsPaidError{Requested: amount, Refundable: refundable})
	}
	return []event.Event{&RefundRequested{OrderID: o.id, RefundID: refundID, Amount: amount, Reason: reason, At: now}}, nil
}

// RecordRefund records what the payment side refunded for a requested
// refund: at most the requested amount (ErrRefundAboveRequested), zero for a
// refund that failed, which releases the pending amount. Unknown refund IDs
// return ErrUnknownRefund, settled ones ErrRefundAlreadySettled.
func (o *Order) RecordRefund(refundID string, amount money.Money, now time.Time) ([]event.Event, error) {
	if o.status.IsZero() {
		return nil, fmt.Errorf("record refund: %w", ErrNotPlaced)
	}
	r := o.refunds[refundID]
	switch {
	case r == nil:
		return nil, fmt.Errorf("record refund %s: %w: %q", o.id, ErrUnknownRefund, refundID)
	case r.settled:
		return nil, fmt.Errorf("record refund %s: %w: %s", o.id, ErrRefundAlreadySettled, refundID)
	case !amount.IsValid() || amount.Currency() != o.currency:
		return nil, fmt.Errorf("record refund %s: %w: %s in a %s order", o.id, ErrMixedCurrencies, amount, o.currency)
	case amount.IsNegative():
		return nil, fmt.Errorf("record refund %s: %w: %s", o.id, ErrInvalidAdjustment, amount)
	case amount.GreaterThan(r.requested):
		return nil, fmt.Errorf("record refund %s: %w: %s > %s", o.id, ErrRefundAboveRequested, amount, r.requested)
	}
	return []event.Event{&OrderRefunded{OrderID: o.id, RefundID: refundID, Amount: amount, At: now}}, nil
}

func returnableQty(l *lineState) int64 { return l.fulfilled - l.returning - l.returned }

// RequestReturn records the customer's request to return fulfilled goods.
// Allowed in PartiallyFulfilled, Fulfilled and Completed; returnID must be
// new (ErrDuplicateReturn), a reason is required, and each quantity at most
// what was fulfilled and not already returned or being returned
// (ErrReturnExceedsShipped; see checkLines).
func (o *Order) RequestReturn(returnID string, lines []LineQuantity, reason string, now time.Time) ([]event.Event, error) {
	if err := o.require("request return", StatusPartiallyFulfilled, StatusFulfilled, StatusCompleted); err != nil {
		return nil, err
	}
	switch {
	case returnID == "":
		return nil, fmt.Errorf("request return %s: %w: return ID required", o.id, ErrInvalidInput)
	case reason == "":
		return nil, fmt.Errorf("request return %s: %w: reason required", o.id, ErrInvalidInput)
	}
	if _, dup := o.returns[returnID]; dup {
		return nil, fmt.Errorf("request return %s: %w: %s", o.id, ErrDuplicateReturn, returnID)
	}
	if _, err := o.checkLines(lines, returnableQty, ErrReturnExceedsShipped); err != nil {
		return nil, fmt.Errorf("request return %s: %w", o.id, err)
	}
	return []event.Event{&ReturnRequested{OrderID: o.id, ReturnID: returnID, Lines: append([]LineQuantity(nil), lines...), Reason: reason, At: now}}, nil
}

// ReceiveReturn records what arrived for a requested return (at most the
// requested quantity per line: ErrReceiptExceedsReturn) and closes it.
// Unknown returns are ErrUnknownReturn, received ones ErrReturnAlreadyClosed.
func (o *Order) ReceiveReturn(returnID string, lines []LineQuantity, now time.Time) ([]event.Event, error) {
	if o.status.IsZero() {
		return nil, fmt.Errorf("receive return: %w", ErrNotPlaced)
	}
	rs := o.returns[returnID]
	switch {
	case rs == nil:
		return nil, fmt.Errorf("receive return %s: %w: %q", o.id, ErrUnknownReturn, returnID)
	case rs.received:
		return nil, fmt.Errorf("receive return %s: %w: %s", o.id, ErrReturnAlreadyClosed, returnID)
	}
	requested := func(l *lineState) int64 { return rs.lines[l.line.No] }
	value, err := o.checkLines(lines, requested, ErrReceiptExceedsReturn)
	if err != nil {
		return nil, fmt.Errorf("receive return %s: %w", o.id, err)
	}
	return []event.Event{&ReturnReceived{OrderID: o.id, ReturnID: returnID, Lines: append([]LineQuantity(nil), lines...), Value: value, At: now}}, nil
}
