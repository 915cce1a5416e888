package journal

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
)

// Line is one posting line: an amount in minor units on one side of an
// account. Exactly one of Debit and Credit is positive.
type Line struct {
	Account       Account
	Debit, Credit int64
}

// Entry is the journal entry one event caused: balanced lines in one
// currency.
type Entry struct {
	Position   uint64 // $all position of the event
	RecordedAt time.Time
	EventID    string
	EventType  string
	Stream     string
	Tenant     string
	OrderID    string // the order the money belongs to ("" if unknown)
	Ref        string // payment, plan, shipment, refund, collection...
	Currency   string
	Memo       string
	Lines      []Line
}

// Balanced reports whether debits equal credits.
func (e Entry) Balanced() bool {
	var d, c int64
	for _, l := range e.Lines {
		d += l.Debit
		c += l.Credit
	}
	return d == c
}

// OrderState is what the posting rules remember of an order: its placed
// totals, unit prices, and how much of it was recognised and reversed.
type OrderState struct {
	OrderID, Tenant, Currency                    string
	Subtotal, Discount, Tax                      int64
	Prices                                       []int64 // unit price of line n at n-1
	Fulfilled, DiscountRecognized, TaxRecognized int64   // cumulative, of delivered goods
	Returned, DiscountReversed, TaxReversed      int64   // cumulative, of returned goods
}

// PaymentState is what the rules remember of a payment.
type PaymentState struct{ PaymentID, OrderID, Tenant, Method, Currency string }

// PlanState is what the rules remember of a BNPL plan.
type PlanState struct{ PlanID, OrderID, Tenant, Currency string }

// Book applies the posting rules. It holds the state they need; the
// projection loads the state a batch touches and saves it back, tests
// keep a whole Book in memory. The zero Book is ready to use.
type Book struct {
	Orders   map[string]*OrderState   // by order ID
	Payments map[string]*PaymentState // by payment ID
	Plans    map[string]*PlanState    // by plan ID
}

func (b *Book) init() {
	if b.Orders == nil {
		b.Orders, b.Payments, b.Plans = map[string]*OrderState{}, map[string]*PaymentState{}, map[string]*PlanState{}
	}
}

// Post applies the posting rules to one event and returns its entry, if
// it moves money (ok false otherwise). It updates the state the rules
// keep. Every entry balances: amounts the event does not explain go to
// Suspense. The rules (see docs/audit.md):
//
//	order.lines_fulfilled      Dr 1300 net+tax, Dr 4010 discount share / Cr 4000 gross, Cr 2300 tax share
//	order.return_received      Dr 4100 gross, Dr 2300 tax share / Cr 4010 discount share, Cr 1300 net+tax
//	payment.captured           Dr 1100 (card) or 2150 (bnpl) / Cr 1300
//	payment.refunded           Dr 1300 / Cr 1100 or 2150
//	payment.chargeback_opened  Dr 1400 / Cr 1100 or 2150
//	payment.chargeback_won     Dr 1100 or 2150 / Cr 1400
//	payment.chargeback_lost    Dr 6100 / Cr 1400
//	plan.originated            Dr 1200 / Cr 2150
//	plan.installment_collected Dr 1250 / Cr 1200 principal, Cr 4200 interest, Cr 1220 fees
//	plan.paid_off              as collected (waived interest was never recognised)
//	plan.late_fee_assessed     Dr 1220 / Cr 4300
//	plan.refunded              Dr 2150 refund, Dr 4300 fees waived / Cr 1200 principal cut, Cr 1220 fees waived, Cr 1250 returned to customer
//	plan.charged_off           Dr 6200 / Cr 1200 principal, Cr 1220 fees
//
// Discount and tax shares are the order's discount and tax in proportion
// to the gross value delivered (or returned) so far over the subtotal,
// cumulatively, so they add up exactly to the placed totals once all is
// delivered. Interest is recognised when collected (no accrual events
// exist); interest waived or written off was never recognised and posts
// nothing. Authorizations, voids, expiries, declines, cancellations and
// the order's own refund records move no money and post nothing.
func (b *Book) Post(env *event.Envelope, ev event.Event) (Entry, bool) {
	b.init()
	e := entry{Entry: Entry{Position: env.Position, RecordedAt: env.RecordedAt, EventID: env.ID, EventType: env.Type, Stream: env.StreamID, Tenant: env.Metadata.Tenant}}
	switch x := ev.(type) {
	case *order.OrderPlaced:
		s := &OrderState{OrderID: x.OrderID, Tenant: env.Metadata.Tenant, Currency: x.Currency.Code(),
			Subtotal: x.Subtotal.MinorUnits(), Discount: x.DiscountTotal.MinorUnits(), Tax: x.TaxTotal.MinorUnits()}
		for _, l := range x.Lines {
			for len(s.Prices) < l.No {
				s.Prices = append(s.Prices, 0)
			}
			s.Prices[l.No-1] = l.UnitPrice.MinorUnits()
		}
		b.Orders[x.OrderID] = s
	case *order.OrderLinesFulfilled:
		s := b.Orders[x.OrderID]
		if s == nil {
			return Entry{}, false
		}
		gross := s.value(x.Lines)
		s.Fulfilled = min(s.Fulfilled+gross, s.Subtotal)
		disc := share(s.Discount, s.Fulfilled, s.Subtotal) - s.DiscountRecognized
		tax := share(s.Tax, s.Fulfilled, s.Subtotal) - s.TaxRecognized
		s.DiscountRecognized += disc
		s.TaxRecognized += tax
		e.about(s.OrderID, x.ShipmentID, s.Currency, "goods delivered: revenue recognised")
		e.dr(OrderReceivable, gross-disc+tax)
		e.dr(SalesDiscounts, disc)
		e.cr(SalesRevenue, gross)
		e.cr(SalesTax, tax)
	case *order.ReturnReceived:
		s := b.Orders[x.OrderID]
		if s == nil {
			return Entry{}, false
		}
		gross := min(x.Value.MinorUnits(), s.Fulfilled-s.Returned)
		s.Returned += gross
		disc := share(s.Discount, s.Returned, s.Subtotal) - s.DiscountReversed
		tax := share(s.Tax, s.Returned, s.Subtotal) - s.TaxReversed
		s.DiscountReversed += disc
		s.TaxReversed += tax
		e.about(s.OrderID, x.ReturnID, s.Currency, "goods returned: revenue reversed")
		e.dr(SalesReturns, gross)
		e.dr(SalesTax, tax)
		e.cr(SalesDiscounts, disc)
		e.cr(OrderReceivable, gross-disc+tax)

	case *payment.Authorized:
		b.Payments[x.PaymentID] = &PaymentState{PaymentID: x.PaymentID, OrderID: x.OrderID, Tenant: env.Metadata.Tenant, Method: x.Method.String(), Currency: x.Amount.Currency().Code()}
	case *payment.Declined:
		b.Payments[x.PaymentID] = &PaymentState{PaymentID: x.PaymentID, OrderID: x.OrderID, Tenant: env.Metadata.Tenant, Method: x.Method.String(), Currency: x.Amount.Currency().Code()}
	case *payment.Captured:
		clearing, orderAcct, orderID := b.paymentAccounts(x.PaymentID)
		e.about(orderID, x.CaptureID, x.Amount.Currency().Code(), "payment captured")
		e.dr(clearing, x.Amount.MinorUnits())
		e.cr(orderAcct, x.Amount.MinorUnits())
	case *payment.Refunded:
		clearing, orderAcct, orderID := b.paymentAccounts(x.PaymentID)
		e.about(orderID, x.RefundID, x.Amount.Currency().Code(), "payment refunded")
		e.dr(orderAcct, x.Amount.MinorUnits())
		e.cr(clearing, x.Amount.MinorUnits())
	case *payment.ChargebackOpened:
		clearing, _, orderID := b.paymentAccounts(x.PaymentID)
		e.about(orderID, x.ChargebackID, x.Amount.Currency().Code(), "chargeback opened: funds held")
		e.dr(DisputedFunds, x.Amount.MinorUnits())
		e.cr(clearing, x.Amount.MinorUnits())
	case *payment.ChargebackWon:
		clearing, _, orderID := b.paymentAccounts(x.PaymentID)
		e.about(orderID, x.ChargebackID, x.Amount.Currency().Code(), "chargeback won: funds released")
		e.dr(clearing, x.Amount.MinorUnits())
		e.cr(DisputedFunds, x.Amount.MinorUnits())
	case *payment.ChargebackLost:
		_, _, orderID := b.paymentAccounts(x.PaymentID)
		e.about(orderID, x.ChargebackID, x.Amount.Currency().Code(), "chargeback lost")
		e.dr(ChargebackLosses, x.Amount.MinorUnits())
		e.cr(DisputedFunds, x.Amount.MinorUnits())

	case *financing.CreditDecided:
		b.Plans[x.PlanID] = &PlanState{PlanID: x.PlanID, OrderID: x.OrderID, Tenant: env.Metadata.Tenant, Currency: x.Amount.Currency().Code()}
	case *financing.Originated:
		e.about(b.planOrder(x.PlanID), x.PlanID, x.Financed.Currency().Code(), "BNPL plan originated")
		e.dr(BNPLPrincipal, x.Financed.MinorUnits())
		e.cr(BNPLFunding, x.Financed.MinorUnits())
	case *financing.InstallmentCollected:
		p, i, f := parts(x.Allocations)
		e.about(b.planOrder(x.PlanID), x.CollectionID, x.Amount.Currency().Code(), "BNPL installment collected")
		e.dr(BNPLCollections, x.Amount.MinorUnits())
		e.cr(BNPLPrincipal, p)
		e.cr(InterestIncome, i)
		e.cr(BNPLFees, f)
	case *financing.PaidOff:
		p, i, f := parts(x.Allocations)
		e.about(b.planOrder(x.PlanID), x.CollectionID, x.Amount.Currency().Code(), "BNPL plan paid off")
		e.dr(BNPLCollections, x.Amount.MinorUnits())
		e.cr(BNPLPrincipal, p)
		e.cr(InterestIncome, i)
		e.cr(BNPLFees, f)
	case *financing.LateFeeAssessed:
		e.about(b.planOrder(x.PlanID), fmt.Sprintf("%s/installment-%d", x.PlanID, x.Installment), x.Fee.Currency().Code(), "BNPL late fee assessed")
		e.dr(BNPLFees, x.Fee.MinorUnits())
		e.cr(LateFeeIncome, x.Fee.MinorUnits())
	case *financing.Refunded:
		p, _, f := parts(x.Reductions)
		e.about(b.planOrder(x.PlanID), x.RefundID, x.Amount.Currency().Code(), "BNPL plan refunded")
		e.dr(BNPLFunding, x.Amount.MinorUnits())
		e.cr(BNPLPrincipal, p)
		e.cr(BNPLCollections, x.ReturnedToCustomer.MinorUnits())
		e.dr(LateFeeIncome, f)
		e.cr(BNPLFees, f)
	case *financing.ChargedOff:
		p, _, f := parts(x.Allocations)
		e.about(b.planOrder(x.PlanID), x.PlanID, x.WrittenOff.Currency().Code(), "BNPL plan charged off")
		e.dr(BadDebt, p+f)
		e.cr(BNPLPrincipal, p)
		e.cr(BNPLFees, f)
	}
	if len(e.Lines) == 0 {
		return Entry{}, false
	}
	e.balance()
	return e.Entry, true
}

// paymentAccounts returns the clearing account of a payment's method, the
// account its order side posts to, and its order. An unknown payment (no
// authorization in the log) posts against Suspense.
func (b *Book) paymentAccounts(id string) (clearing, orderSide Account, orderID string) {
	s := b.Payments[id]
	switch {
	case s == nil:
		return CardClearing, Suspense, ""
	case s.Method == payment.MethodBNPL.String():
		return BNPLFunding, OrderReceivable, s.OrderID
	}
	return CardClearing, OrderReceivable, s.OrderID
}

func (b *Book) planOrder(id string) string {
	if s := b.Plans[id]; s != nil {
		return s.OrderID
	}
	return ""
}

// value is the gross value (quantity × unit price) of order lines.
func (s *OrderState) value(lines []order.LineQuantity) int64 {
	var v int64
	for _, l := range lines {
		if l.Line >= 1 && l.Line <= len(s.Prices) {
			v += l.Quantity * s.Prices[l.Line-1]
		}
	}
	return v
}

func parts(allocs []financing.Allocation) (principal, interest, fee int64) {
	for _, a := range allocs {
		principal += minor(a.Principal)
		interest += minor(a.Interest)
		fee += minor(a.Fee)
	}
	return
}

func minor(m money.Money) int64 {
	if !m.IsValid() {
		return 0
	}
	return m.MinorUnits()
}

// share is total × part / whole, rounded down, exact for any int64s with
// 0 <= part <= whole (128-bit intermediate).
func share(total, part, whole int64) int64 {
	switch {
	case whole <= 0 || part <= 0 || total == 0:
		return 0
	case part >= whole:
		return total
	}
	neg := total < 0
	if neg {
		total = -total
	}
	hi, lo := bits.Mul64(uint64(total), uint64(part))
	q, _ := bits.Div64(hi, lo, uint64(whole))
	if neg {
		return -int64(q)
	}
	return int64(q)
}

type entry struct{ Entry }

func (e *entry) about(orderID, ref, currency, memo string) {
	e.OrderID, e.Ref, e.Currency, e.Memo = orderID, ref, currency, memo
}

// dr and cr add a line; a zero amount adds none, a negative one goes to
// the other side.
func (e *entry) dr(a Account, amt int64) {
	switch {
	case amt > 0:
		e.Lines = append(e.Lines, Line{Account: a, Debit: amt})
	case amt < 0:
		e.Lines = append(e.Lines, Line{Account: a, Credit: -amt})
	}
}

func (e *entry) cr(a Account, amt int64) { e.dr(a, -amt) }

// balance sends any difference between debits and credits to Suspense.
func (e *entry) balance() {
	var d int64
	for _, l := range e.Lines {
		d += l.Debit - l.Credit
	}
	e.cr(Suspense, d)
}
