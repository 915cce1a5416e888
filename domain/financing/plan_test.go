package financing

import (
	"errors"
	"testing"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

// Pay-in-4 of 100.00 USD decided at t0: 25.00 due at d1 (checkout), d2, d3, d4.
var d1, d2, d3, d4 = t0, t0.Add(14 * day), t0.Add(28 * day), t0.Add(42 * day)

// The schedule of 1000.00 USD over 12 months at 12% APR (r = 1%): level
// payment 88.85, computed independently (Python decimal, half-even).
var (
	p12 = []string{"78.85", "79.64", "80.43", "81.24", "82.05", "82.87", "83.70", "84.54", "85.38", "86.24", "87.10", "87.96"}
	i12 = []string{"10.00", "9.21", "8.42", "7.61", "6.80", "5.98", "5.15", "4.31", "3.47", "2.61", "1.75", "0.88"}
)

func month(n int) time.Time { return addMonths(t0, n) }

func decidedEvent(amount string, kind Kind, bp int, reasons ...ReasonCode) *CreditDecided {
	return &CreditDecided{PlanID: "pl1", CustomerID: "cu1", OrderID: "o1", Amount: usd(amount), Kind: kind, APR: MustAPR(bp),
		CurrentExposure: usd("0"), ExposureLimit: usd("5000.00"), Approved: len(reasons) == 0, Reasons: reasons, DecidedAt: t0}
}

func TestDecide(t *testing.T) {
	decide := func(a Application) func(p *Plan) ([]event.Event, error) {
		return func(p *Plan) ([]event.Event, error) { return p.Decide(a, t0) }
	}
	with := func(a Application, f func(a *Application)) Application { f(&a); return a }
	var monthly12 []ScheduledInstallment
	for i := range 12 {
		monthly12 = append(monthly12, ScheduledInstallment{Number: i + 1, DueAt: month(i + 1), Principal: usd(p12[i]), Interest: usd(i12[i])})
	}
	zero := usd("0")
	endOfMonth := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	p4 := approved(t, "100.00", PayIn4, 0)
	runCases(t, []testCase{
		{name: "pay-in-4: first installment at checkout, then every 2 weeks",
			when: decide(application("100.00", PayIn4, 0)),
			then: events(decidedEvent("100.00", PayIn4, 0), &Originated{PlanID: "pl1", Financed: usd("100.00"), Kind: PayIn4,
				Installments: []ScheduledInstallment{
					{1, d1, usd("25.00"), zero}, {2, d2, usd("25.00"), zero}, {3, d3, usd("25.00"), zero}, {4, d4, usd("25.00"), zero},
				}, OriginatedAt: t0})},
		{name: "pay-in-4: the first installments carry the odd cents",
			when: decide(application("100.03", PayIn4, 0)),
			then: events(decidedEvent("100.03", PayIn4, 0), &Originated{PlanID: "pl1", Financed: usd("100.03"), Kind: PayIn4,
				Installments: []ScheduledInstallment{
					{1, d1, usd("25.01"), zero}, {2, d2, usd("25.01"), zero}, {3, d3, usd("25.01"), zero}, {4, d4, usd("25.00"), zero},
				}, OriginatedAt: t0})},
		{name: "monthly 12 at 12% APR: amortized, last installment absorbs rounding",
			when: decide(application("1000.00", Monthly12, 1200)),
			then: events(decidedEvent("1000.00", Monthly12, 1200), &Originated{PlanID: "pl1", Financed: usd("1000.00"), Kind: Monthly12,
				APR: MustAPR(1200), Installments: monthly12, OriginatedAt: t0})},
		{name: "monthly 3 at 0% from Jan 31: equal split, month-end due dates",
			when: func(p *Plan) ([]event.Event, error) { return p.Decide(application("100.00", Monthly3, 0), endOfMonth) },
			then: events(&CreditDecided{PlanID: "pl1", CustomerID: "cu1", OrderID: "o1", Amount: usd("100.00"), Kind: Monthly3,
				CurrentExposure: zero, ExposureLimit: usd("5000.00"), Approved: true, DecidedAt: endOfMonth},
				&Originated{PlanID: "pl1", Financed: usd("100.00"), Kind: Monthly3, Installments: []ScheduledInstallment{
					{1, time.Date(2026, 2, 28, 10, 0, 0, 0, time.UTC), usd("33.34"), zero},
					{2, time.Date(2026, 3, 31, 10, 0, 0, 0, time.UTC), usd("33.33"), zero},
					{3, time.Date(2026, 4, 30, 10, 0, 0, 0, time.UTC), usd("33.33"), zero},
				}, OriginatedAt: endOfMonth})},
		{name: "decline: pay-in-4 below its minimum", when: decide(application("34.99", PayIn4, 0)),
			then: events(decidedEvent("34.99", PayIn4, 0, ReasonAmountBelowMinimum))},
		{name: "decline: pay-in-4 above its maximum", when: decide(application("1000.01", PayIn4, 0)),
			then: events(decidedEvent("1000.01", PayIn4, 0, ReasonAmountAboveMaximum))},
		{name: "decline: monthly below its minimum", when: decide(application("99.99", Monthly6, 999)),
			then: events(decidedEvent("99.99", Monthly6, 999, ReasonAmountBelowMinimum))},
		{name: "decline: exposure limit",
			when: decide(with(application("100.00", PayIn4, 0), func(a *Application) { a.CurrentExposure = usd("4900.01") })),
			then: events(func() *CreditDecided {
				e := decidedEvent("100.00", PayIn4, 0, ReasonExposureLimitExceeded)
				e.CurrentExposure = usd("4900.01")
				return e
			}())},
		{name: "exposure exactly at the limit is approved",
			when: decide(with(application("100.00", PayIn4, 0), func(a *Application) { a.CurrentExposure = usd("4900.00") })),
			then: func() []event.Event {
				es := approved(t, "100.00", PayIn4, 0)
				es[0].(*CreditDecided).CurrentExposure = usd("4900.00")
				return es
			}()},
		{name: "decline: open delinquency",
			when: decide(with(application("100.00", PayIn4, 0), func(a *Application) { a.OpenDelinquencies = 1 })),
			then: events(func() *CreditDecided {
				e := decidedEvent("100.00", PayIn4, 0, ReasonOpenDelinquency)
				e.OpenDelinquencies = 1
				return e
			}())},
		{name: "decline: every reason is recorded",
			when: decide(with(application("6000.00", PayIn4, 0), func(a *Application) { a.OpenDelinquencies = 2 })),
			then: events(func() *CreditDecided {
				e := decidedEvent("6000.00", PayIn4, 0, ReasonAmountAboveMaximum, ReasonExposureLimitExceeded, ReasonOpenDelinquency)
				e.OpenDelinquencies = 2
				return e
			}())},
		{name: "decline: currency not offered",
			when: decide(Application{PlanID: "pl1", CustomerID: "cu1", OrderID: "o1", Amount: money.MustParse("100.00", "CHF"),
				Terms: Terms{Kind: PayIn4}, CurrentExposure: money.MustParse("0", "CHF"), ExposureLimit: money.MustParse("1000", "CHF")}),
			then: events(&CreditDecided{PlanID: "pl1", CustomerID: "cu1", OrderID: "o1", Amount: money.MustParse("100.00", "CHF"),
				Kind: PayIn4, CurrentExposure: money.MustParse("0", "CHF"), ExposureLimit: money.MustParse("1000", "CHF"),
				Reasons: []ReasonCode{ReasonCurrencyNotSupported}, DecidedAt: t0})},
		{name: "retry of an approval is a no-op", given: p4, when: decide(application("100.00", PayIn4, 0))},
		{name: "retry of a decline is a no-op", given: events(decidedEvent("34.99", PayIn4, 0, ReasonAmountBelowMinimum)),
			when: decide(application("34.99", PayIn4, 0))},
		{name: "another application for a decided plan", given: p4,
			when: decide(application("200.00", PayIn4, 0)), err: ErrPlanExists},
		{name: "pay-in-4 with an APR", when: decide(application("100.00", PayIn4, 100)), err: ErrInvalidCommand},
		{name: "no plan kind", when: decide(with(application("100.00", PayIn4, 0), func(a *Application) { a.Terms.Kind = Kind{} })),
			err: ErrInvalidCommand},
		{name: "no customer", when: decide(with(application("100.00", PayIn4, 0), func(a *Application) { a.CustomerID = "" })),
			err: ErrInvalidCommand},
		{name: "zero amount", when: decide(application("0", PayIn4, 0)), err: ErrInvalidCommand},
		{name: "negative exposure",
			when: decide(with(application("100.00", PayIn4, 0), func(a *Application) { a.CurrentExposure = usd("-1") })),
			err:  ErrInvalidCommand},
		{name: "negative delinquencies",
			when: decide(with(application("100.00", PayIn4, 0), func(a *Application) { a.OpenDelinquencies = -1 })),
			err:  ErrInvalidCommand},
		{name: "exposure in another currency",
			when: decide(with(application("100.00", PayIn4, 0), func(a *Application) { a.ExposureLimit = money.MustParse("5000", "EUR") })),
			err:  money.ErrCurrencyMismatch},
	})
}

func TestCollect(t *testing.T) {
	p4 := approved(t, "100.00", PayIn4, 0)
	m12 := approved(t, "1000.00", Monthly12, 1200)
	paidOff := hist(t, p4, collect("c1", "100.00", d1))
	collectedEv := func(id, amount string, at time.Time, allocs ...Allocation) *InstallmentCollected {
		return &InstallmentCollected{PlanID: "pl1", CollectionID: id, Amount: usd(amount), Allocations: allocs, CollectedAt: at}
	}
	runCases(t, []testCase{
		{name: "first installment at checkout", given: p4, when: collect("c1", "25.00", d1),
			then: events(collectedEv("c1", "25.00", d1, alloc(1, "25.00", "0", "0")))},
		{name: "partial", given: p4, when: collect("c1", "10.00", d1),
			then: events(collectedEv("c1", "10.00", d1, alloc(1, "10.00", "0", "0")))},
		{name: "oldest first, across installments", given: hist(t, p4, collect("c1", "10.00", d1)),
			when: collect("c2", "40.00", d2),
			then: events(collectedEv("c2", "40.00", d2, alloc(1, "15.00", "0", "0"), alloc(2, "25.00", "0", "0")))},
		{name: "late fee first, then principal", given: hist(t, p4, collect("c1", "25.00", d1), lateFee(2, d2.Add(11*day))),
			when: collect("c2", "25.00", d2.Add(12*day)),
			then: events(collectedEv("c2", "25.00", d2.Add(12*day), alloc(2, "18.75", "0", "6.25")))},
		{name: "interest before principal", given: m12, when: collect("c1", "50.00", month(1)),
			then: events(collectedEv("c1", "50.00", month(1), alloc(1, "40.00", "10.00", "0")))},
		{name: "the last installment", given: hist(t, p4, collect("c1", "75.00", d3)), when: collect("c2", "25.00", d4),
			then: events(collectedEv("c2", "25.00", d4, alloc(4, "25.00", "0", "0")))},
		{name: "on a defaulted plan", given: hist(t, p4, collect("c1", "25.00", d1), defaultAt(d2.Add(91*day))),
			when: collect("c2", "30.00", d2.Add(92*day)),
			then: events(collectedEv("c2", "30.00", d2.Add(92*day), alloc(2, "25.00", "0", "0"), alloc(3, "5.00", "0", "0")))},
		{name: "more than owed", given: hist(t, p4, collect("c1", "25.00", d1)), when: collect("c2", "75.01", d2),
			err: ErrCollectionExceedsOwed},
		{name: "retry is a no-op", given: hist(t, p4, collect("c1", "25.00", d1)), when: collect("c1", "25.00", d1.Add(time.Hour))},
		{name: "retry of the collection that paid it off is a no-op", given: paidOff, when: collect("c1", "100.00", d1)},
		{name: "collection ID reused with another amount", given: hist(t, p4, collect("c1", "25.00", d1)),
			when: collect("c1", "20.00", d1), err: ErrIDReused},
		{name: "collection ID of a failed attempt", given: hist(t, p4, fail("c1", "25.00", d1)),
			when: collect("c1", "25.00", d1), err: ErrIDReused},
		{name: "paid-off plan", given: paidOff, when: collect("c2", "1.00", d2), err: ErrPlanClosed},
		{name: "refunded plan", given: hist(t, p4, collect("c1", "25.00", d1), refund("r1", "75.00", d2)),
			when: collect("c2", "1.00", d2), err: ErrPlanClosed},
		{name: "charged-off plan", given: hist(t, p4, defaultAt(d1.Add(91*day)), chargeOff(d1.Add(92*day))),
			when: collect("c1", "1.00", d1.Add(93*day)), err: ErrPlanClosed},
		{name: "declined plan", given: events(decidedEvent("34.99", PayIn4, 0, ReasonAmountBelowMinimum)),
			when: collect("c1", "1.00", d1), err: ErrCreditDeclined},
		{name: "no plan", when: collect("c1", "1.00", d1), err: ErrNoPlan},
		{name: "zero amount", given: p4, when: collect("c1", "0", d1), err: ErrInvalidCommand},
		{name: "negative amount", given: p4, when: collect("c1", "-1.00", d1), err: ErrInvalidCommand},
		{name: "empty collection ID", given: p4, when: collect("", "1.00", d1), err: ErrInvalidCommand},
		{name: "other currency", given: p4,
			when: func(p *Plan) ([]event.Event, error) { return p.Collect("c1", money.MustParse("25", "JPY"), d1) },
			err:  money.ErrCurrencyMismatch},
	})
}

func TestFailCollection(t *testing.T) {
	p4 := approved(t, "100.00", PayIn4, 0)
	runCases(t, []testCase{
		{name: "recorded", given: p4, when: fail("c1", "25.00", d1),
			then: events(&CollectionFailed{PlanID: "pl1", CollectionID: "c1", Amount: usd("25.00"), Reason: payment.DeclineInsufficientFunds, FailedAt: d1})},
		{name: "retry is a no-op", given: hist(t, p4, fail("c1", "25.00", d1)), when: fail("c1", "25.00", d1)},
		{name: "same ID, other reason", given: hist(t, p4, fail("c1", "25.00", d1)),
			when: func(p *Plan) ([]event.Event, error) {
				return p.FailCollection("c1", usd("25.00"), payment.DeclineDoNotHonor, d1)
			},
			err: ErrIDReused},
		{name: "ID of a successful collection", given: hist(t, p4, collect("c1", "25.00", d1)),
			when: fail("c1", "25.00", d1), err: ErrIDReused},
		{name: "paid-off plan", given: hist(t, p4, collect("c1", "100.00", d1)), when: fail("c2", "25.00", d2), err: ErrPlanClosed},
		{name: "no plan", when: fail("c1", "25.00", d1), err: ErrNoPlan},
		{name: "no reason", given: p4,
			when: func(p *Plan) ([]event.Event, error) {
				return p.FailCollection("c1", usd("25.00"), payment.DeclineReason{}, d1)
			},
			err: ErrInvalidCommand},
		{name: "zero amount", given: p4, when: fail("c1", "0", d1), err: ErrInvalidCommand},
	})
}

func TestAssessLateFee(t *testing.T) {
	p4 := hist(t, approved(t, "100.00", PayIn4, 0), collect("c1", "25.00", d1))
	big := hist(t, approved(t, "1000.00", PayIn4, 0), collect("c1", "250.00", d1))
	m6 := approved(t, "100.00", Monthly6, 3600)
	fee := func(n int, amount string, at time.Time) *LateFeeAssessed {
		return &LateFeeAssessed{PlanID: "pl1", Installment: n, Fee: usd(amount), AssessedAt: at}
	}
	late := d2.Add(11 * day)
	runCases(t, []testCase{
		{name: "within the grace period", given: p4, when: lateFee(2, d2.Add(10*day+23*time.Hour)), err: ErrLateFeeNotDue},
		{name: "capped at 25% of the installment", given: p4, when: lateFee(2, late), then: events(fee(2, "6.25", late))},
		{name: "fixed fee below the cap", given: big, when: lateFee(2, late), then: events(fee(2, "7.00", late))},
		{name: "capped by what is left of 25% of the financed amount",
			given: with(m6, fee(1, "5.50", month(2)), fee(2, "5.50", month(3)), fee(3, "5.50", month(4)), fee(4, "5.50", month(5))),
			when:  lateFee(5, month(6)), then: events(fee(5, "3.00", month(6)))},
		{name: "plan cap reached",
			given: with(m6, fee(1, "5.00", month(2)), fee(2, "5.00", month(3)), fee(3, "5.00", month(4)), fee(4, "5.00", month(5)), fee(5, "5.00", month(6))),
			when:  lateFee(6, month(7)), err: ErrLateFeeCapReached},
		{name: "assessing twice is a no-op", given: hist(t, p4, lateFee(2, late)), when: lateFee(2, late.Add(day))},
		{name: "paid installment", given: p4, when: lateFee(1, late), err: ErrInstallmentPaid},
		{name: "no such installment", given: p4, when: lateFee(5, late), err: ErrNoSuchInstallment},
		{name: "installment zero", given: p4, when: lateFee(0, late), err: ErrNoSuchInstallment},
		{name: "defaulted plan", given: hist(t, p4, defaultAt(d2.Add(91*day))), when: lateFee(3, d3.Add(91*day)), err: ErrPlanDefaulted},
		{name: "paid-off plan", given: hist(t, p4, collect("c2", "75.00", d2)), when: lateFee(2, late), err: ErrPlanClosed},
		{name: "no plan", when: lateFee(1, late), err: ErrNoPlan},
	})
}

func TestPayOff(t *testing.T) {
	m12 := approved(t, "1000.00", Monthly12, 1200)
	all := func(interestDue int, skip int) (owed, waived []Allocation) {
		for i := skip; i < 12; i++ {
			o := alloc(i+1, p12[i], "0", "0")
			if i < interestDue {
				o.Interest = usd(i12[i])
			} else {
				waived = append(waived, alloc(i+1, "0", i12[i], "0"))
			}
			owed = append(owed, o)
		}
		return owed, waived
	}
	atStart, waivedAll := all(0, 0)
	withFirstDue, waivedRest := all(1, 0)
	afterFirst, _ := all(0, 1)
	p4 := hist(t, approved(t, "100.00", PayIn4, 0), collect("c1", "25.00", d1), lateFee(2, d2.Add(11*day)))
	runCases(t, []testCase{
		{name: "right after origination: principal only", given: m12, when: payOff("po", "1000.00", t0.Add(day)),
			then: events(&PaidOff{PlanID: "pl1", CollectionID: "po", Amount: usd("1000.00"), Allocations: atStart, Waived: waivedAll, PaidOffAt: t0.Add(day)})},
		{name: "interest of a due installment is owed", given: m12, when: payOff("po", "1010.00", month(1)),
			then: events(&PaidOff{PlanID: "pl1", CollectionID: "po", Amount: usd("1010.00"), Allocations: withFirstDue, Waived: waivedRest, PaidOffAt: month(1)})},
		{name: "after the first installment", given: hist(t, m12, collect("c1", "88.85", month(1))), when: payOff("po", "921.15", month(1).Add(day)),
			then: events(&PaidOff{PlanID: "pl1", CollectionID: "po", Amount: usd("921.15"), Allocations: afterFirst, Waived: waivedRest, PaidOffAt: month(1).Add(day)})},
		{name: "late fees are owed", given: p4, when: payOff("po", "81.25", d2.Add(12*day)),
			then: events(&PaidOff{PlanID: "pl1", CollectionID: "po", Amount: usd("81.25"), PaidOffAt: d2.Add(12 * day),
				Allocations: []Allocation{alloc(2, "25.00", "0", "6.25"), alloc(3, "25.00", "0", "0"), alloc(4, "25.00", "0", "0")}})},
		{name: "not the quote", given: m12, when: payOff("po", "1000.00", month(1)), err: ErrPayoffMismatch},
		{name: "retry is a no-op", given: hist(t, m12, payOff("po", "1000.00", t0.Add(day))), when: payOff("po", "1000.00", t0.Add(2*day))},
		{name: "ID of a collection", given: hist(t, m12, collect("c1", "88.85", month(1))), when: payOff("c1", "921.15", month(1)), err: ErrIDReused},
		{name: "paid-off plan", given: hist(t, m12, payOff("po", "1000.00", t0.Add(day))), when: payOff("po2", "1.00", t0.Add(day)), err: ErrPlanClosed},
		{name: "no plan", when: payOff("po", "1.00", t0), err: ErrNoPlan},
		{name: "zero amount", given: m12, when: payOff("po", "0", t0), err: ErrInvalidCommand},
	})
}

func TestPayoffMismatchErrorCarriesTheQuote(t *testing.T) {
	p := fold(approved(t, "1000.00", Monthly12, 1200))
	_, err := p.PayOff("po", usd("1000.00"), month(1))
	var pm *PayoffMismatchError
	if !errors.As(err, &pm) || !pm.Quoted.Equal(usd("1010.00")) || !pm.Offered.Equal(usd("1000.00")) {
		t.Fatalf("err = %v", err)
	}
}

func TestRefund(t *testing.T) {
	p4 := hist(t, approved(t, "100.00", PayIn4, 0), collect("c1", "25.00", d1))
	m12 := approved(t, "1000.00", Monthly12, 1200)
	refunded := func(id, amount, returned string, reductions ...Allocation) *Refunded {
		return &Refunded{PlanID: "pl1", RefundID: id, Amount: usd(amount), Reductions: reductions, ReturnedToCustomer: usd(returned), RefundedAt: d2}
	}
	runCases(t, []testCase{
		{name: "from the last installment backwards", given: p4, when: refund("r1", "30.00", d2),
			then: events(refunded("r1", "30.00", "0", alloc(4, "25.00", "0", "0"), alloc(3, "5.00", "0", "0")))},
		{name: "everything still owed", given: p4, when: refund("r1", "75.00", d2),
			then: events(refunded("r1", "75.00", "0", alloc(4, "25.00", "0", "0"), alloc(3, "25.00", "0", "0"), alloc(2, "25.00", "0", "0")))},
		{name: "more than owed: the rest goes back to the customer", given: p4, when: refund("r1", "100.00", d2),
			then: events(refunded("r1", "100.00", "25.00", alloc(4, "25.00", "0", "0"), alloc(3, "25.00", "0", "0"), alloc(2, "25.00", "0", "0")))},
		{name: "a second refund continues backwards", given: hist(t, p4, refund("r1", "30.00", d2)), when: refund("r2", "30.00", d2),
			then: events(refunded("r2", "30.00", "0", alloc(3, "20.00", "0", "0"), alloc(2, "10.00", "0", "0")))},
		{name: "after payoff everything goes back", given: hist(t, p4, collect("c2", "75.00", d2)), when: refund("r1", "40.00", d2),
			then: events(refunded("r1", "40.00", "40.00"))},
		{name: "a cut installment keeps interest in proportion, rounded up", given: m12, when: refund("r1", "50.00", d2),
			then: events(refunded("r1", "50.00", "0", alloc(12, "50.00", "0.51", "0")))},
		{name: "a fully cut installment owes no interest", given: m12, when: refund("r1", "100.00", d2),
			then: events(refunded("r1", "100.00", "0", alloc(12, "87.96", "0.88", "0"), alloc(11, "12.04", "0.25", "0")))},
		{name: "a fully cut installment owes no late fee", given: hist(t, p4, lateFee(2, d2.Add(11*day))), when: refund("r1", "75.00", d2),
			then: events(refunded("r1", "75.00", "0", alloc(4, "25.00", "0", "0"), alloc(3, "25.00", "0", "0"), alloc(2, "25.00", "0", "6.25")))},
		{name: "a partly cut installment keeps its late fee", given: hist(t, p4, lateFee(2, d2.Add(11*day))), when: refund("r1", "60.00", d2),
			then: events(refunded("r1", "60.00", "0", alloc(4, "25.00", "0", "0"), alloc(3, "25.00", "0", "0"), alloc(2, "10.00", "0", "0")))},
		{name: "above the financed amount", given: hist(t, p4, refund("r1", "90.00", d2)), when: refund("r2", "10.01", d2),
			err: ErrRefundExceedsFinanced},
		{name: "defaulted plan", given: hist(t, p4, defaultAt(d2.Add(91*day))), when: refund("r1", "10.00", d2),
			then: events(refunded("r1", "10.00", "0", alloc(4, "10.00", "0", "0")))},
		{name: "retry is a no-op", given: hist(t, p4, refund("r1", "10.00", d2)), when: refund("r1", "10.00", d3)},
		{name: "refund ID reused", given: hist(t, p4, refund("r1", "10.00", d2)), when: refund("r1", "11.00", d2), err: ErrIDReused},
		{name: "charged-off plan", given: hist(t, p4, defaultAt(d2.Add(91*day)), chargeOff(d2.Add(92*day))),
			when: refund("r1", "10.00", d2.Add(93*day)), err: ErrPlanClosed},
		{name: "declined plan", given: events(decidedEvent("34.99", PayIn4, 0, ReasonAmountBelowMinimum)),
			when: refund("r1", "10.00", d2), err: ErrCreditDeclined},
		{name: "no plan", when: refund("r1", "10.00", d2), err: ErrNoPlan},
		{name: "zero amount", given: p4, when: refund("r1", "0", d2), err: ErrInvalidCommand},
		{name: "empty refund ID", given: p4, when: refund("", "1.00", d2), err: ErrInvalidCommand},
		{name: "other currency", given: p4,
			when: func(p *Plan) ([]event.Event, error) { return p.Refund("r1", money.MustParse("1.000", "BHD"), d2) },
			err:  money.ErrCurrencyMismatch},
	})
}

func TestDefault(t *testing.T) {
	p4 := hist(t, approved(t, "100.00", PayIn4, 0), collect("c1", "25.00", d1))
	runCases(t, []testCase{
		{name: "90 days past due is too early", given: p4, when: defaultAt(d2.Add(90*day + 23*time.Hour)), err: ErrDefaultTooEarly},
		{name: "more than 90 days past due", given: p4, when: defaultAt(d2.Add(91 * day)),
			then: events(&Defaulted{PlanID: "pl1", DaysPastDue: 91, Outstanding: usd("75.00"), DefaultedAt: d2.Add(91 * day)})},
		{name: "outstanding includes fees", given: hist(t, p4, lateFee(2, d2.Add(11*day))), when: defaultAt(d2.Add(91 * day)),
			then: events(&Defaulted{PlanID: "pl1", DaysPastDue: 91, Outstanding: usd("81.25"), DefaultedAt: d2.Add(91 * day)})},
		{name: "current plan", given: p4, when: defaultAt(d2.Add(-time.Hour)), err: ErrDefaultTooEarly},
		{name: "defaulting twice is a no-op", given: hist(t, p4, defaultAt(d2.Add(91*day))), when: defaultAt(d2.Add(95 * day))},
		{name: "paid-off plan", given: hist(t, p4, collect("c2", "75.00", d2)), when: defaultAt(d2.Add(91 * day)), err: ErrPlanClosed},
		{name: "declined plan", given: events(decidedEvent("34.99", PayIn4, 0, ReasonAmountBelowMinimum)),
			when: defaultAt(d2.Add(91 * day)), err: ErrCreditDeclined},
		{name: "no plan", when: defaultAt(d2), err: ErrNoPlan},
	})
}

func TestChargeOff(t *testing.T) {
	p4 := hist(t, approved(t, "100.00", PayIn4, 0), collect("c1", "25.00", d1), defaultAt(d2.Add(91*day)))
	m12 := hist(t, approved(t, "1000.00", Monthly12, 1200), defaultAt(month(1).Add(91*day)))
	at := month(1).Add(91 * day) // May 17: installments 1-4 are due
	var owed, waived []Allocation
	for i := range 12 {
		o := alloc(i+1, p12[i], "0", "0")
		if i < 4 {
			o.Interest = usd(i12[i])
		} else {
			waived = append(waived, alloc(i+1, "0", i12[i], "0"))
		}
		owed = append(owed, o)
	}
	runCases(t, []testCase{
		{name: "writes off what is owed", given: p4, when: chargeOff(d2.Add(100 * day)),
			then: events(&ChargedOff{PlanID: "pl1", WrittenOff: usd("75.00"), ChargedOffAt: d2.Add(100 * day),
				Allocations: []Allocation{alloc(2, "25.00", "0", "0"), alloc(3, "25.00", "0", "0"), alloc(4, "25.00", "0", "0")}})},
		{name: "interest not yet due is waived, not written off", given: m12, when: chargeOff(at),
			then: events(&ChargedOff{PlanID: "pl1", WrittenOff: usd("1035.24"), Allocations: owed, Waived: waived, ChargedOffAt: at})},
		{name: "charging off twice is a no-op", given: hist(t, p4, chargeOff(d2.Add(100*day))), when: chargeOff(d2.Add(101 * day))},
		{name: "active plan", given: approved(t, "100.00", PayIn4, 0), when: chargeOff(d2.Add(100 * day)), err: ErrNotDefaulted},
		{name: "paid-off plan", given: hist(t, p4, collect("c2", "75.00", d2.Add(100*day))), when: chargeOff(d2.Add(100 * day)), err: ErrPlanClosed},
		{name: "no plan", when: chargeOff(d2), err: ErrNoPlan},
	})
}

func TestDelinquency(t *testing.T) {
	p4 := hist(t, approved(t, "100.00", PayIn4, 0), collect("c1", "25.00", d1))
	partial := hist(t, p4, collect("c2", "24.99", d2))
	for _, c := range []struct {
		name  string
		given []event.Event
		now   time.Time
		days  int
		want  Bucket
	}{
		{"not yet due", p4, d2.Add(-time.Hour), 0, BucketCurrent},
		{"due today", p4, d2.Add(23 * time.Hour), 0, BucketCurrent},
		{"1 day", p4, d2.Add(day), 1, Bucket1To30},
		{"30 days", p4, d2.Add(30*day + 23*time.Hour), 30, Bucket1To30},
		{"31 days", p4, d2.Add(31 * day), 31, Bucket31To60},
		{"60 days", p4, d2.Add(60 * day), 60, Bucket31To60},
		{"61 days", p4, d2.Add(61 * day), 61, Bucket61To90},
		{"90 days", p4, d2.Add(90 * day), 90, Bucket61To90},
		{"91 days", p4, d2.Add(91 * day), 91, Bucket90Plus},
		{"a partly paid installment is unpaid", partial, d2.Add(5 * day), 5, Bucket1To30},
		{"first installment unpaid at checkout + 1 day", approved(t, "100.00", PayIn4, 0), d1.Add(day), 1, Bucket1To30},
		{"paid-off plan", hist(t, p4, collect("c2", "75.00", d2)), d4.Add(100 * day), 0, BucketCurrent},
		{"no plan", nil, d2, 0, BucketCurrent},
	} {
		p := fold(c.given)
		if d, b := p.DaysPastDue(c.now), p.Delinquency(c.now); d != c.days || b != c.want {
			t.Errorf("%s: %d days, bucket %s; want %d, %s", c.name, d, b, c.days, c.want)
		}
	}
}

func TestStatusFollowsTheHistory(t *testing.T) {
	p4 := approved(t, "100.00", PayIn4, 0)
	for _, c := range []struct {
		name  string
		given []event.Event
		want  Status
	}{
		{"approved", p4, StatusActive},
		{"declined", events(decidedEvent("34.99", PayIn4, 0, ReasonAmountBelowMinimum)), StatusDeclined},
		{"collected in full", hist(t, p4, collect("c1", "25.00", d1), collect("c2", "75.00", d4)), StatusPaidOff},
		{"paid off early", hist(t, p4, collect("c1", "25.00", d1), payOff("po", "75.00", d2)), StatusPaidOff},
		{"refunded in full", hist(t, p4, collect("c1", "25.00", d1), refund("r1", "100.00", d2)), StatusRefunded},
		{"partly refunded", hist(t, p4, collect("c1", "25.00", d1), refund("r1", "50.00", d2)), StatusActive},
		{"defaulted", hist(t, p4, defaultAt(d1.Add(91*day))), StatusDefaulted},
		{"defaulted, then collected in full", hist(t, p4, defaultAt(d1.Add(91*day)), collect("c1", "100.00", d1.Add(92*day))), StatusPaidOff},
		{"charged off", hist(t, p4, defaultAt(d1.Add(91*day)), chargeOff(d1.Add(92*day))), StatusChargedOff},
	} {
		p := fold(c.given)
		if p.Status() != c.want {
			t.Errorf("%s: status %s, want %s", c.name, p.Status(), c.want)
		}
		if err := checkPlan(p); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	p := fold(hist(t, p4, collect("c1", "25.00", d1), refund("r1", "100.00", d2)))
	if !p.Refunded().Equal(usd("100.00")) || !p.ReturnedToCustomer().Equal(usd("25.00")) || !p.PrincipalCancelled().Equal(usd("75.00")) {
		t.Errorf("refunded %s, returned %s, cancelled %s", p.Refunded(), p.ReturnedToCustomer(), p.PrincipalCancelled())
	}
}

// with returns base followed by more, never sharing base's array.
func with(base []event.Event, more ...event.Event) []event.Event {
	return append(append([]event.Event{}, base...), more...)
}
