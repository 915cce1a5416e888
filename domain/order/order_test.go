package order

import (
	"errors"
	"testing"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/money"
)

func TestPlace(t *testing.T) {
	with := func(f func(p *PlaceOrder)) func(o *Order) ([]event.Event, error) {
		return func(o *Order) ([]event.Event, error) {
			p := placeCmd()
			f(&p)
			return o.Place(p, t0)
		}
	}
	runCases(t, []testCase{
		{name: "totals computed exactly", when: with(func(*PlaceOrder) {}), then: evPlaced, after: func(t *testing.T, o *Order) {
			if o.Status() != StatusPlaced || !o.Total().Equal(usd("27.60")) || o.ID() != "o1" {
				t.Errorf("status %s total %s id %s", o.Status(), o.Total(), o.ID())
			}
		}},
		{name: "no discounts or taxes", when: with(func(p *PlaceOrder) { p.Discounts, p.Taxes = nil, nil }), then: []event.Event{&OrderPlaced{
			OrderID: "o1", CustomerID: "c1", Region: "eu-west", Currency: money.USD, Lines: placedEvent().Lines,
			Subtotal: usd("25.50"), DiscountTotal: usd("0"), TaxTotal: usd("0"), Total: usd("25.50"), PlacedAt: t0,
		}}},
		{name: "zero-exponent currency", when: func(o *Order) ([]event.Event, error) {
			jpy := func(s string) money.Money { return money.MustParse(s, "JPY") }
			return o.Place(PlaceOrder{OrderID: "o1", CustomerID: "c1", Region: "jp", Currency: money.JPY,
				Lines: []LineItem{{SKU: "X", Quantity: 3, UnitPrice: jpy("333")}},
				Taxes: []Adjustment{{Label: "consumption", Amount: jpy("99")}}}, t0)
		}, then: []event.Event{&OrderPlaced{
			OrderID: "o1", CustomerID: "c1", Region: "jp", Currency: money.JPY,
			Lines:    []Line{{No: 1, SKU: "X", Quantity: 3, UnitPrice: money.MustParse("333", "JPY"), Amount: money.MustParse("999", "JPY")}},
			Taxes:    []Adjustment{{Label: "consumption", Amount: money.MustParse("99", "JPY")}},
			Subtotal: money.MustParse("999", "JPY"), DiscountTotal: money.MustParse("0", "JPY"),
			TaxTotal: money.MustParse("99", "JPY"), Total: money.MustParse("1098", "JPY"), PlacedAt: t0,
		}}},
		{name: "total may be zero", when: with(func(p *PlaceOrder) {
			p.Discounts = []Adjustment{{Label: "FREE", Amount: usd("25.50")}}
			p.Taxes = nil
		}), then: []event.Event{&OrderPlaced{
			OrderID: "o1", CustomerID: "c1", Region: "eu-west", Currency: money.USD, Lines: placedEvent().Lines,
			Discounts: []Adjustment{{Label: "FREE", Amount: usd("25.50")}},
			Subtotal:  usd("25.50"), DiscountTotal: usd("25.50"), TaxTotal: usd("0"), Total: usd("0"), PlacedAt: t0,
		}}},
		{name: "free line allowed", when: with(func(p *PlaceOrder) {
			p.Lines = []LineItem{{SKU: "GIFT", Quantity: 1, UnitPrice: usd("0")}}
			p.Discounts, p.Taxes = nil, nil
		}), then: []event.Event{&OrderPlaced{
			OrderID: "o1", CustomerID: "c1", Region: "eu-west", Currency: money.USD,
			Lines:    []Line{{No: 1, SKU: "GIFT", Quantity: 1, UnitPrice: usd("0"), Amount: usd("0")}},
			Subtotal: usd("0"), DiscountTotal: usd("0"), TaxTotal: usd("0"), Total: usd("0"), PlacedAt: t0,
		}}},
		{name: "already placed", given: sPlaced, when: with(func(*PlaceOrder) {}), err: ErrAlreadyPlaced},
		{name: "already placed and cancelled", given: sCancelled, when: with(func(*PlaceOrder) {}), err: ErrAlreadyPlaced},
		{name: "order ID required", when: with(func(p *PlaceOrder) { p.OrderID = "" }), err: ErrInvalidInput},
		{name: "customer required", when: with(func(p *PlaceOrder) { p.CustomerID = "" }), err: ErrInvalidInput},
		{name: "region required", when: with(func(p *PlaceOrder) { p.Region = "" }), err: ErrInvalidInput},
		{name: "currency required", when: with(func(p *PlaceOrder) { p.Currency = money.Currency{} }), err: ErrInvalidInput},
		{name: "empty cart", when: with(func(p *PlaceOrder) { p.Lines = nil }), err: ErrEmptyCart},
		{name: "SKU required", when: with(func(p *PlaceOrder) { p.Lines[1].SKU = "" }), err: ErrInvalidInput},
		{name: "zero quantity", when: with(func(p *PlaceOrder) { p.Lines[0].Quantity = 0 }), err: ErrInvalidQuantity},
		{name: "negative quantity", when: with(func(p *PlaceOrder) { p.Lines[1].Quantity = -1 }), err: ErrInvalidQuantity},
		{name: "negative price", when: with(func(p *PlaceOrder) { p.Lines[0].UnitPrice = usd("-0.01") }), err: ErrNegativePrice},
		{name: "price in another currency", when: with(func(p *PlaceOrder) { p.Lines[1].UnitPrice = eur("5.50") }), err: ErrMixedCurrencies},
		{name: "zero Money price", when: with(func(p *PlaceOrder) { p.Lines[1].UnitPrice = money.Money{} }), err: ErrMixedCurrencies},
		{name: "discount in another currency", when: with(func(p *PlaceOrder) { p.Discounts[0].Amount = eur("1") }), err: ErrMixedCurrencies},
		{name: "tax in another currency", when: with(func(p *PlaceOrder) { p.Taxes[0].Amount = eur("1") }), err: ErrMixedCurrencies},
		{name: "zero discount", when: with(func(p *PlaceOrder) { p.Discounts[0].Amount = usd("0") }), err: ErrInvalidAdjustment},
		{name: "negative discount", when: with(func(p *PlaceOrder) { p.Discounts[0].Amount = usd("-1") }), err: ErrInvalidAdjustment},
		{name: "negative tax", when: with(func(p *PlaceOrder) { p.Taxes[0].Amount = usd("-1") }), err: ErrInvalidAdjustment},
		{name: "discount label required", when: with(func(p *PlaceOrder) { p.Discounts[0].Label = "" }), err: ErrInvalidInput},
		{name: "tax label required", when: with(func(p *PlaceOrder) { p.Taxes[0].Label = "" }), err: ErrInvalidInput},
		{name: "total below zero", when: with(func(p *PlaceOrder) { p.Discounts[0].Amount = usd("30.11") }), err: ErrNegativeTotal},
		{name: "amount past the money bound", when: with(func(p *PlaceOrder) {
			p.Lines[0] = LineItem{SKU: "X", Quantity: 1_000_000_000, UnitPrice: usd("99999999")}
		}), err: money.ErrOutOfRange},
	})
}

func TestStartCheckout(t *testing.T) {
	card := func(o *Order) ([]event.Event, error) { return o.StartCheckout(MethodCard, PlanKind{}, t0) }
	bnpl := func(o *Order) ([]event.Event, error) { return o.StartCheckout(MethodBNPL, PlanPayIn4, t0) }
	cases := []testCase{
		{name: "card", given: sPlaced, when: card, then: evCheckout, after: func(t *testing.T, o *Order) {
			if o.Status() != StatusCheckoutStarted || o.PaymentMethod() != MethodCard || !o.PlanKind().IsZero() {
				t.Errorf("status %s method %s plan %s", o.Status(), o.PaymentMethod(), o.PlanKind())
			}
		}},
		{name: "BNPL with plan", given: sPlaced, when: bnpl, then: []event.Event{&CheckoutStarted{OrderID: "o1", Method: MethodBNPL, Plan: PlanPayIn4, At: t0}}},
		{name: "switch card to BNPL", given: sCheckout, when: func(o *Order) ([]event.Event, error) {
			return o.StartCheckout(MethodBNPL, PlanMonthly12, t0)
		}, then: []event.Event{&CheckoutStarted{OrderID: "o1", Method: MethodBNPL, Plan: PlanMonthly12, At: t0}}, after: func(t *testing.T, o *Order) {
			if o.PaymentMethod() != MethodBNPL || o.PlanKind() != PlanMonthly12 {
				t.Errorf("method %s plan %s", o.PaymentMethod(), o.PlanKind())
			}
		}},
		{name: "same choice again is a no-op", given: sCheckout, when: card},
		{name: "BNPL without plan", given: sPlaced, when: func(o *Order) ([]event.Event, error) {
			return o.StartCheckout(MethodBNPL, PlanKind{}, t0)
		}, err: ErrPlanMismatch},
		{name: "card with plan", given: sPlaced, when: func(o *Order) ([]event.Event, error) {
			return o.StartCheckout(MethodCard, PlanMonthly6, t0)
		}, err: ErrPlanMismatch},
		{name: "no method", given: sPlaced, when: func(o *Order) ([]event.Event, error) {
			return o.StartCheckout(PaymentMethod{}, PlanKind{}, t0)
		}, err: ErrInvalidPaymentMethod},
	}
	runCases(t, append(cases, illegal("start checkout", card, "placed", "checkout_started")...))
}

func TestConfirm(t *testing.T) {
	confirm := func(o *Order) ([]event.Event, error) { return o.Confirm("pay-1", usd("27.60"), t0) }
	cases := []testCase{
		{name: "paid in full", given: sCheckout, when: confirm, then: evConfirmed, after: func(t *testing.T, o *Order) {
			if o.Status() != StatusConfirmed || !o.Paid().Equal(usd("27.60")) || o.PaymentRef() != "pay-1" || !o.Refundable().Equal(usd("27.60")) {
				t.Errorf("status %s paid %s ref %s refundable %s", o.Status(), o.Paid(), o.PaymentRef(), o.Refundable())
			}
		}},
		{name: "payment reference required", given: sCheckout, when: func(o *Order) ([]event.Event, error) {
			return o.Confirm("", usd("27.60"), t0)
		}, err: ErrInvalidInput},
		{name: "less than total", given: sCheckout, when: func(o *Order) ([]event.Event, error) {
			return o.Confirm("pay-1", usd("27.59"), t0)
		}, err: ErrAmountMismatch},
		{name: "more than total", given: sCheckout, when: func(o *Order) ([]event.Event, error) {
			return o.Confirm("pay-1", usd("27.61"), t0)
		}, err: ErrAmountMismatch},
		{name: "other currency", given: sCheckout, when: func(o *Order) ([]event.Event, error) {
			return o.Confirm("pay-1", eur("27.60"), t0)
		}, err: ErrAmountMismatch},
	}
	runCases(t, append(cases, illegal("confirm", confirm, "checkout_started")...))
}

func TestCancel(t *testing.T) {
	cancel := func(o *Order) ([]event.Event, error) { return o.Cancel("changed mind", t0) }
	cases := []testCase{
		{name: "placed", given: sPlaced, when: cancel, then: evCancelled, after: wantStatus(StatusCancelled)},
		{name: "checkout started", given: sCheckout, when: cancel, then: evCancelled, after: wantStatus(StatusCancelled)},
		{name: "confirmed", given: sConfirmed, when: cancel, then: evCancelled, after: func(t *testing.T, o *Order) {
			if o.Status() != StatusCancelled || !o.Refundable().Equal(usd("27.60")) {
				t.Errorf("status %s refundable %s", o.Status(), o.Refundable())
			}
		}},
		{name: "reason required", given: sConfirmed, when: func(o *Order) ([]event.Event, error) { return o.Cancel("", t0) }, err: ErrInvalidInput},
		{name: "partially shipped", given: sPartial, when: cancel, err: ErrAlreadyShipped},
		{name: "fulfilled", given: sFulfilled, when: cancel, err: ErrAlreadyShipped},
		{name: "completed", given: sCompleted, when: cancel, err: ErrAlreadyShipped},
		{name: "cancelled twice", given: sCancelled, when: cancel, err: ErrOrderAlreadyCancelled},
	}
	runCases(t, append(cases, illegal("cancel", cancel, "placed", "checkout_started", "confirmed")...))
}

func TestCancelLines(t *testing.T) {
	lines := func(lq ...LineQuantity) func(o *Order) ([]event.Event, error) {
		return func(o *Order) ([]event.Event, error) { return o.CancelLines(lq, "out of stock", t0) }
	}
	cancelled := func(value string, lq ...LineQuantity) *OrderLinesCancelled {
		return &OrderLinesCancelled{OrderID: "o1", Lines: lq, Value: usd(value), Reason: "out of stock", At: t0}
	}
	one := LineQuantity{Line: 1, Quantity: 1}
	cases := []testCase{
		{name: "part of a line", given: sConfirmed, when: lines(one), then: []event.Event{cancelled("10.00", one)}, after: func(t *testing.T, o *Order) {
			l := o.Lines()[0]
			if o.Status() != StatusConfirmed || l.Open != 1 || l.Cancelled != 1 || !o.CancelledValue().Equal(usd("10.00")) {
				t.Errorf("status %s line %+v cancelled value %s", o.Status(), l, o.CancelledValue())
			}
		}},
		{name: "every line cancels the order", given: sPlaced, when: lines(LineQuantity{1, 2}, LineQuantity{2, 1}), then: []event.Event{
			cancelled("25.50", LineQuantity{1, 2}, LineQuantity{2, 1}),
			&OrderCancelled{OrderID: "o1", Reason: "out of stock", At: t0},
		}, after: wantStatus(StatusCancelled)},
		{name: "the rest after a partial shipment fulfils the order", given: sPartial, when: lines(one, LineQuantity{2, 1}), then: []event.Event{
			cancelled("15.50", one, LineQuantity{2, 1}),
		}, after: wantStatus(StatusFulfilled)},
		{name: "unshipped line while partially fulfilled", given: sPartial, when: lines(LineQuantity{2, 1}), then: []event.Event{
			cancelled("5.50", LineQuantity{2, 1}),
		}, after: wantStatus(StatusPartiallyFulfilled)},
		{name: "more than open", given: sPartial, when: lines(LineQuantity{1, 2}), err: ErrQuantityExceedsOpen},
		{name: "more than ordered", given: sConfirmed, when: lines(LineQuantity{2, 2}), err: ErrQuantityExceedsOpen},
		{name: "unknown line", given: sConfirmed, when: lines(LineQuantity{3, 1}), err: ErrUnknownLine},
		{name: "line zero", given: sConfirmed, when: lines(LineQuantity{0, 1}), err: ErrUnknownLine},
		{name: "line twice", given: sConfirmed, when: lines(one, one), err: ErrDuplicateLine},
		{name: "zero quantity", given: sConfirmed, when: lines(LineQuantity{1, 0}), err: ErrInvalidQuantity},
		{name: "no lines", given: sConfirmed, when: lines(), err: ErrInvalidInput},
		{name: "reason required", given: sConfirmed, when: func(o *Order) ([]event.Event, error) {
			return o.CancelLines([]LineQuantity{one}, "", t0)
		}, err: ErrInvalidInput},
	}
	runCases(t, append(cases, illegal("cancel lines", lines(one), "placed", "checkout_started", "confirmed", "partially_fulfilled")...))
}

func TestFulfillLines(t *testing.T) {
	ship := func(id string, lq ...LineQuantity) func(o *Order) ([]event.Event, error) {
		return func(o *Order) ([]event.Event, error) { return o.FulfillLines(id, lq, t0) }
	}
	fulfilled := func(id string, lq ...LineQuantity) []event.Event {
		return []event.Event{&OrderLinesFulfilled{OrderID: "o1", ShipmentID: id, Lines: lq, At: t0}}
	}
	cases := []testCase{
		{name: "first shipment of several", given: sConfirmed, when: ship("s1", LineQuantity{1, 1}), then: evShipPart, after: wantStatus(StatusPartiallyFulfilled)},
		{name: "one shipment with everything", given: sConfirmed, when: ship("s1", LineQuantity{1, 2}, LineQuantity{2, 1}), then: evShipAll, after: wantStatus(StatusFulfilled)},
		{name: "last shipment", given: sPartial, when: ship("s2", LineQuantity{1, 1}, LineQuantity{2, 1}),
			then: fulfilled("s2", LineQuantity{1, 1}, LineQuantity{2, 1}), after: wantStatus(StatusFulfilled)},
		{name: "after a line was cancelled", given: join(sConfirmed, []event.Event{&OrderLinesCancelled{OrderID: "o1", Lines: []LineQuantity{{2, 1}}, Value: usd("5.50"), Reason: "x", At: t0}}),
			when: ship("s1", LineQuantity{1, 2}), then: fulfilled("s1", LineQuantity{1, 2}), after: wantStatus(StatusFulfilled)},
		{name: "shipment recorded twice", given: sPartial, when: ship("s1", LineQuantity{2, 1}), err: ErrDuplicateShipment},
		{name: "shipment ID required", given: sConfirmed, when: ship("", LineQuantity{2, 1}), err: ErrInvalidInput},
		{name: "more than open", given: sPartial, when: ship("s2", LineQuantity{1, 2}), err: ErrQuantityExceedsOpen},
		{name: "cancelled quantity cannot ship", given: join(sConfirmed, []event.Event{&OrderLinesCancelled{OrderID: "o1", Lines: []LineQuantity{{2, 1}}, Value: usd("5.50"), Reason: "x", At: t0}}),
			when: ship("s1", LineQuantity{2, 1}), err: ErrQuantityExceedsOpen},
		{name: "unknown line", given: sConfirmed, when: ship("s1", LineQuantity{9, 1}), err: ErrUnknownLine},
		{name: "negative quantity", given: sConfirmed, when: ship("s1", LineQuantity{1, -1}), err: ErrInvalidQuantity},
		{name: "no lines", given: sConfirmed, when: ship("s1"), err: ErrInvalidInput},
	}
	runCases(t, append(cases, illegal("fulfill lines", ship("s9", LineQuantity{2, 1}), "confirmed", "partially_fulfilled")...))
}

func TestComplete(t *testing.T) {
	complete := func(o *Order) ([]event.Event, error) { return o.Complete(t0) }
	cases := []testCase{
		{name: "fulfilled", given: sFulfilled, when: complete, then: evCompleted, after: wantStatus(StatusCompleted)},
		{name: "part shipped, rest cancelled", given: join(sPartial, []event.Event{&OrderLinesCancelled{OrderID: "o1", Lines: []LineQuantity{{1, 1}, {2, 1}}, Value: usd("15.50"), Reason: "x", At: t0}}),
			when: complete, then: evCompleted, after: wantStatus(StatusCompleted)},
	}
	runCases(t, append(cases, illegal("complete", complete, "fulfilled")...))
}

func TestRequestRefund(t *testing.T) {
	refund := func(id, amount string) func(o *Order) ([]event.Event, error) {
		return func(o *Order) ([]event.Event, error) { return o.RequestRefund(id, usd(amount), "damaged", t0) }
	}
	requested := func(id, amount string) *RefundRequested {
		return &RefundRequested{OrderID: "o1", RefundID: id, Amount: usd(amount), Reason: "damaged", At: t0}
	}
	pending20 := join(sFulfilled, []event.Event{requested("r1", "20.00")})
	runCases(t, []testCase{
		{name: "part of the payment", given: sFulfilled, when: refund("r1", "10.00"), then: []event.Event{requested("r1", "10.00")}, after: func(t *testing.T, o *Order) {
			if !o.RefundPending().Equal(usd("10.00")) || !o.Refundable().Equal(usd("17.60")) || o.Status() != StatusFulfilled {
				t.Errorf("pending %s refundable %s status %s", o.RefundPending(), o.Refundable(), o.Status())
			}
		}},
		{name: "all of it", given: sCompleted, when: refund("r1", "27.60"), then: []event.Event{requested("r1", "27.60")}},
		{name: "after cancellation", given: sCancelled, when: refund("r1", "27.60"), then: []event.Event{requested("r1", "27.60")}},
		{name: "while confirmed", given: sConfirmed, when: refund("r1", "0.01"), then: []event.Event{requested("r1", "0.01")}},
		{name: "more than paid", given: sFulfilled, when: refund("r1", "27.61"), err: ErrRefundExceedsPaid},
		{name: "more than paid minus pending", given: pending20, when: refund("r2", "7.61"), err: ErrRefundExceedsPaid},
		{name: "exactly the rest", given: pending20, when: refund("r2", "7.60"), then: []event.Event{requested("r2", "7.60")}},
		{name: "nothing paid yet", given: sCheckout, when: refund("r1", "1.00"), err: ErrRefundExceedsPaid},
		{name: "cancelled before payment", given: join(sPlaced, evCancelled), when: refund("r1", "1.00"), err: ErrRefundExceedsPaid},
		{name: "refund ID reused", given: pending20, when: refund("r1", "1.00"), err: ErrDuplicateRefund},
		{name: "zero amount", given: sFulfilled, when: refund("r1", "0"), err: ErrInvalidAdjustment},
		{name: "negative amount", given: sFulfilled, when: refund("r1", "-1"), err: ErrInvalidAdjustment},
		{name: "other currency", given: sFulfilled, when: func(o *Order) ([]event.Event, error) { return o.RequestRefund("r1", eur("1"), "x", t0) }, err: ErrMixedCurrencies},
		{name: "refund ID required", given: sFulfilled, when: refund("", "1.00"), err: ErrInvalidInput},
		{name: "reason required", given: sFulfilled, when: func(o *Order) ([]event.Event, error) { return o.RequestRefund("r1", usd("1"), "", t0) }, err: ErrInvalidInput},
		{name: "new order", given: sNone, when: refund("r1", "1.00"), err: ErrNotPlaced},
	})

	var ex *RefundExceedsPaidError
	_, err := fold(pending20).RequestRefund("r2", usd("8"), "x", t0)
	if !errors.As(err, &ex) || !ex.Refundable.Equal(usd("7.60")) || !ex.Requested.Equal(usd("8")) {
		t.Errorf("As RefundExceedsPaidError: %v %+v", err, ex)
	}
}

func TestRecordRefund(t *testing.T) {
	record := func(id, amount string) func(o *Order) ([]event.Event, error) {
		return func(o *Order) ([]event.Event, error) { return o.RecordRefund(id, usd(amount), t0) }
	}
	refunded := func(id, amount string) []event.Event {
		return []event.Event{&OrderRefunded{OrderID: "o1", RefundID: id, Amount: usd(amount), At: t0}}
	}
	pending := join(sFulfilled, []event.Event{&RefundRequested{OrderID: "o1", RefundID: "r1", Amount: usd("10.00"), Reason: "x", At: t0}})
	runCases(t, []testCase{
		{name: "in full", given: pending, when: record("r1", "10.00"), then: refunded("r1", "10.00"), after: func(t *testing.T, o *Order) {
			if !o.Refunded().Equal(usd("10.00")) || !o.RefundPending().IsZero() || !o.Refundable().Equal(usd("17.60")) {
				t.Errorf("refunded %s pending %s refundable %s", o.Refunded(), o.RefundPending(), o.Refundable())
			}
		}},
		{name: "less than requested releases the rest", given: pending, when: record("r1", "4.00"), then: refunded("r1", "4.00"), after: func(t *testing.T, o *Order) {
			if !o.Refunded().Equal(usd("4.00")) || !o.Refundable().Equal(usd("23.60")) {
				t.Errorf("refunded %s refundable %s", o.Refunded(), o.Refundable())
			}
		}},
		{name: "failed refund (zero)", given: pending, when: record("r1", "0"), then: refunded("r1", "0"), after: func(t *testing.T, o *Order) {
			if !o.Refundable().Equal(usd("27.60")) {
				t.Errorf("refundable %s", o.Refundable())
			}
		}},
		{name: "above requested", given: pending, when: record("r1", "10.01"), err: ErrRefundAboveRequested},
		{name: "negative", given: pending, when: record("r1", "-1"), err: ErrInvalidAdjustment},
		{name: "other currency", given: pending, when: func(o *Order) ([]event.Event, error) { return o.RecordRefund("r1", eur("1"), t0) }, err: ErrMixedCurrencies},
		{name: "unknown refund", given: pending, when: record("r2", "1"), err: ErrUnknownRefund},
		{name: "recorded twice", given: join(pending, refunded("r1", "10.00")), when: record("r1", "10.00"), err: ErrRefundAlreadySettled},
		{name: "new order", given: sNone, when: record("r1", "1"), err: ErrNotPlaced},
	})
}

func TestRequestReturn(t *testing.T) {
	ret := func(id string, lq ...LineQuantity) func(o *Order) ([]event.Event, error) {
		return func(o *Order) ([]event.Event, error) { return o.RequestReturn(id, lq, "too small", t0) }
	}
	requested := func(id string, lq ...LineQuantity) []event.Event {
		return []event.Event{&ReturnRequested{OrderID: "o1", ReturnID: id, Lines: lq, Reason: "too small", At: t0}}
	}
	open := join(sFulfilled, requested("ret1", LineQuantity{1, 1}))
	cases := []testCase{
		{name: "fulfilled", given: sFulfilled, when: ret("ret1", LineQuantity{1, 1}), then: requested("ret1", LineQuantity{1, 1}), after: func(t *testing.T, o *Order) {
			if l := o.Lines()[0]; l.Returning != 1 || o.Status() != StatusFulfilled {
				t.Errorf("line %+v status %s", l, o.Status())
			}
		}},
		{name: "completed", given: sCompleted, when: ret("ret1", LineQuantity{1, 2}, LineQuantity{2, 1}), then: requested("ret1", LineQuantity{1, 2}, LineQuantity{2, 1})},
		{name: "shipped part", given: sPartial, when: ret("ret1", LineQuantity{1, 1}), then: requested("ret1", LineQuantity{1, 1})},
		{name: "unshipped part", given: sPartial, when: ret("ret1", LineQuantity{2, 1}), err: ErrReturnExceedsShipped},
		{name: "more than shipped minus open returns", given: open, when: ret("ret2", LineQuantity{1, 2}), err: ErrReturnExceedsShipped},
		{name: "the rest", given: open, when: ret("ret2", LineQuantity{1, 1}), then: requested("ret2", LineQuantity{1, 1})},
		{name: "return ID reused", given: open, when: ret("ret1", LineQuantity{2, 1}), err: ErrDuplicateReturn},
		{name: "return ID required", given: sFulfilled, when: ret("", LineQuantity{2, 1}), err: ErrInvalidInput},
		{name: "reason required", given: sFulfilled, when: func(o *Order) ([]event.Event, error) {
			return o.RequestReturn("ret1", []LineQuantity{{1, 1}}, "", t0)
		}, err: ErrInvalidInput},
		{name: "unknown line", given: sFulfilled, when: ret("ret1", LineQuantity{5, 1}), err: ErrUnknownLine},
		{name: "zero quantity", given: sFulfilled, when: ret("ret1", LineQuantity{1, 0}), err: ErrInvalidQuantity},
	}
	runCases(t, append(cases, illegal("request return", ret("ret9", LineQuantity{1, 1}), "partially_fulfilled", "fulfilled", "completed")...))
}

func TestReceiveReturn(t *testing.T) {
	recv := func(id string, lq ...LineQuantity) func(o *Order) ([]event.Event, error) {
		return func(o *Order) ([]event.Event, error) { return o.ReceiveReturn(id, lq, t0) }
	}
	open := join(sFulfilled, []event.Event{&ReturnRequested{OrderID: "o1", ReturnID: "ret1", Lines: []LineQuantity{{1, 2}}, Reason: "x", At: t0}})
	received := func(value string, lq ...LineQuantity) []event.Event {
		return []event.Event{&ReturnReceived{OrderID: "o1", ReturnID: "ret1", Lines: lq, Value: usd(value), At: t0}}
	}
	runCases(t, []testCase{
		{name: "all of it", given: open, when: recv("ret1", LineQuantity{1, 2}), then: received("20.00", LineQuantity{1, 2}), after: func(t *testing.T, o *Order) {
			if l := o.Lines()[0]; l.Returning != 0 || l.Returned != 2 {
				t.Errorf("line %+v", l)
			}
		}},
		{name: "part of it closes the return", given: open, when: recv("ret1", LineQuantity{1, 1}), then: received("10.00", LineQuantity{1, 1}), after: func(t *testing.T, o *Order) {
			if l := o.Lines()[0]; l.Returning != 0 || l.Returned != 1 {
				t.Errorf("line %+v", l)
			}
			if _, err := o.RequestReturn("ret2", []LineQuantity{{1, 1}}, "again", t0); err != nil {
				t.Errorf("the unreceived unit should be returnable again: %v", err)
			}
		}},
		{name: "more than requested", given: open, when: recv("ret1", LineQuantity{1, 3}), err: ErrReceiptExceedsReturn},
		{name: "line not in the return", given: open, when: recv("ret1", LineQuantity{2, 1}), err: ErrReceiptExceedsReturn},
		{name: "unknown line", given: open, when: recv("ret1", LineQuantity{7, 1}), err: ErrUnknownLine},
		{name: "no lines", given: open, when: recv("ret1"), err: ErrInvalidInput},
		{name: "unknown return", given: open, when: recv("ret2", LineQuantity{1, 1}), err: ErrUnknownReturn},
		{name: "received twice", given: join(open, received("20.00", LineQuantity{1, 2})), when: recv("ret1", LineQuantity{1, 1}), err: ErrReturnAlreadyClosed},
		{name: "new order", given: sNone, when: recv("ret1", LineQuantity{1, 1}), err: ErrNotPlaced},
	})
}

func TestTransitionErrorMatching(t *testing.T) {
	_, err := fold(sCancelled).Confirm("p", usd("27.60"), t0)
	var te *TransitionError
	if !errors.As(err, &te) || te.From != StatusCancelled || !errors.Is(err, ErrOrderAlreadyCancelled) || !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("cancelled: %v", err)
	}
	_, err = fold(sConfirmed).Confirm("p", usd("27.60"), t0)
	if errors.Is(err, ErrOrderAlreadyCancelled) || !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("confirmed: %v", err)
	}
	_, err = fold(sPartial).Cancel("x", t0)
	if !errors.As(err, &te) || te.From != StatusPartiallyFulfilled {
		t.Fatalf("cancel shipped: %v", err)
	}
}

func TestParseClosedSets(t *testing.T) {
	for _, s := range allStates {
		st, err := ParseStatus(s.name)
		if err != nil || st.String() != s.name || fold(s.events).Status() != st {
			t.Errorf("status %s: %v %v", s.name, st, err)
		}
	}
	for _, bad := range []string{"", "Placed", "shipped"} {
		if _, err := ParseStatus(bad); !errors.Is(err, ErrInvalidStatus) {
			t.Errorf("ParseStatus(%q) = %v", bad, err)
		}
	}
	if m, err := ParsePaymentMethod("bnpl"); err != nil || m != MethodBNPL {
		t.Errorf("bnpl: %v %v", m, err)
	}
	if _, err := ParsePaymentMethod("cash"); !errors.Is(err, ErrInvalidPaymentMethod) {
		t.Errorf("cash: %v", err)
	}
	if p, err := ParsePlanKind("monthly_6"); err != nil || p != PlanMonthly6 {
		t.Errorf("monthly_6: %v %v", p, err)
	}
	if _, err := ParsePlanKind("PAY_IN_4"); !errors.Is(err, ErrInvalidPlanKind) {
		t.Errorf("PAY_IN_4: %v", err)
	}
	if StatusPlaced.IsZero() || !(Status{}).IsZero() || (Status{}).String() != "none" {
		t.Error("zero status")
	}
}

// TestPlanKindsMatchFinancing keeps the checkout choice and the financing
// plan kinds in step, by name, both ways.
func TestPlanKindsMatchFinancing(t *testing.T) {
	for _, p := range planKinds {
		if k, err := financing.ParseKind(p.String()); err != nil || k.String() != p.String() {
			t.Errorf("order plan %s is no financing kind: %v", p, err)
		}
	}
	for _, name := range []string{"pay_in_4", "monthly_3", "monthly_6", "monthly_12"} {
		_, ferr := financing.ParseKind(name)
		_, oerr := ParsePlanKind(name)
		if (ferr == nil) != (oerr == nil) {
			t.Errorf("%s: financing %v, order %v", name, ferr, oerr)
		}
	}
}
