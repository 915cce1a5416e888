package financing

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

var t0 = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func usd(s string) money.Money { return money.MustParse(s, "USD") }

var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b money.Money) bool { return a.Equal(b) }),
	cmp.AllowUnexported(Plan{}, collection{}, Kind{}, APR{}, Status{}, ReasonCode{}, payment.DeclineReason{}),
	cmpopts.EquateEmpty(),
}

func events(es ...event.Event) []event.Event { return es }

func application(amount string, kind Kind, bp int) Application {
	return Application{PlanID: "pl1", CustomerID: "cu1", OrderID: "o1", Amount: usd(amount),
		Terms: Terms{Kind: kind, APR: MustAPR(bp)}, CurrentExposure: usd("0"), ExposureLimit: usd("5000.00")}
}

// approved is the history of an approved plan decided at t0.
func approved(t testing.TB, amount string, kind Kind, bp int) []event.Event {
	t.Helper()
	var p Plan
	out, err := p.Decide(application(amount, kind, bp), t0)
	if err != nil || len(out) != 2 {
		t.Fatalf("decide: %v, %v", out, err)
	}
	return out
}

// hist folds base, runs each command on the result in turn and returns base
// followed by everything the commands returned. A failing command fails t.
func hist(t testing.TB, base []event.Event, cmds ...func(p *Plan) ([]event.Event, error)) []event.Event {
	t.Helper()
	out := append([]event.Event{}, base...)
	for i, cmd := range cmds {
		es, err := cmd(fold(out))
		if err != nil {
			t.Fatalf("given command %d: %v", i, err)
		}
		out = append(out, es...)
	}
	return out
}

func collect(id, amount string, at time.Time) func(p *Plan) ([]event.Event, error) {
	return func(p *Plan) ([]event.Event, error) { return p.Collect(id, usd(amount), at) }
}

func fail(id, amount string, at time.Time) func(p *Plan) ([]event.Event, error) {
	return func(p *Plan) ([]event.Event, error) {
		return p.FailCollection(id, usd(amount), payment.DeclineInsufficientFunds, at)
	}
}

func lateFee(n int, at time.Time) func(p *Plan) ([]event.Event, error) {
	return func(p *Plan) ([]event.Event, error) { return p.AssessLateFee(n, at) }
}

func payOff(id, amount string, at time.Time) func(p *Plan) ([]event.Event, error) {
	return func(p *Plan) ([]event.Event, error) { return p.PayOff(id, usd(amount), at) }
}

func refund(id, amount string, at time.Time) func(p *Plan) ([]event.Event, error) {
	return func(p *Plan) ([]event.Event, error) { return p.Refund(id, usd(amount), at) }
}

func defaultAt(at time.Time) func(p *Plan) ([]event.Event, error) {
	return func(p *Plan) ([]event.Event, error) { return p.Default(at) }
}

func chargeOff(at time.Time) func(p *Plan) ([]event.Event, error) {
	return func(p *Plan) ([]event.Event, error) { return p.ChargeOff(at) }
}

func alloc(n int, principal, interest, fee string) Allocation {
	return Allocation{Installment: n, Principal: usd(principal), Interest: usd(interest), Fee: usd(fee)}
}

func fold(events []event.Event) *Plan {
	var p Plan
	for _, e := range events {
		p.Apply(e)
	}
	return &p
}

// testCase is one given-events / when-command / then-events-or-error row.
type testCase struct {
	name  string
	given []event.Event
	when  func(p *Plan) ([]event.Event, error)
	then  []event.Event
	err   error // matched with errors.Is; nil: success
}

func runCases(t *testing.T, cases []testCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := fold(tc.given)
			got, err := tc.when(p)
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Fatalf("error = %v, want %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.then, got, cmpOpts...); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(fold(tc.given), p, cmpOpts...); diff != "" {
				t.Errorf("the decision changed the plan (-before +after):\n%s", diff)
			}
			if err := checkPlan(fold(append(append([]event.Event{}, tc.given...), got...))); err != nil {
				t.Errorf("after the events: %v", err)
			}
		})
	}
}

// checkPlan checks a plan's invariants:
//   - principal still owed + cancelled by refunds + written off = financed,
//     exactly;
//   - every part of every installment is >= 0 and paid <= owed;
//   - collected = everything paid; refunded = cancelled + returned <=
//     financed;
//   - an active or defaulted plan owes something, a closed one nothing.
func checkPlan(p *Plan) error {
	if p.Status() == StatusNew || p.Status() == StatusDeclined {
		return nil
	}
	z := money.Zero(p.Financed().Currency())
	principal, paid := z, z
	for _, in := range p.Installments() {
		for _, part := range []struct {
			name       string
			owed, paid money.Money
		}{
			{"principal", in.Principal, in.PaidPrincipal},
			{"interest", in.Interest, in.PaidInterest},
			{"fee", in.Fee, in.PaidFee},
		} {
			if part.paid.IsNegative() || part.paid.GreaterThan(part.owed) {
				return fmt.Errorf("installment %d %s: paid %s of %s", in.Number, part.name, part.paid, part.owed)
			}
		}
		principal = add(principal, in.Principal)
		paid = add(add(add(paid, in.PaidPrincipal), in.PaidInterest), in.PaidFee)
	}
	if total := add(add(principal, p.PrincipalCancelled()), p.PrincipalWrittenOff()); !total.Equal(p.Financed()) {
		return fmt.Errorf("principal %s + cancelled %s + written off %s = %s, financed %s",
			principal, p.PrincipalCancelled(), p.PrincipalWrittenOff(), total, p.Financed())
	}
	if !paid.Equal(p.Collected()) {
		return fmt.Errorf("paid parts %s, collected %s", paid, p.Collected())
	}
	if r := add(p.PrincipalCancelled(), p.ReturnedToCustomer()); !r.Equal(p.Refunded()) || p.Refunded().GreaterThan(p.Financed()) {
		return fmt.Errorf("refunded %s = cancelled %s + returned %s, financed %s", p.Refunded(), p.PrincipalCancelled(), p.ReturnedToCustomer(), p.Financed())
	}
	switch open := p.Status() == StatusActive || p.Status() == StatusDefaulted; {
	case open && !p.Owed().IsPositive():
		return fmt.Errorf("status %s but owes %s", p.Status(), p.Owed())
	case !open && !p.Owed().IsZero():
		return fmt.Errorf("status %s but owes %s", p.Status(), p.Owed())
	}
	return nil
}
