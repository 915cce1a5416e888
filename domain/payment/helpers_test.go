package payment

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
)

var t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

func usd(s string) money.Money { return money.MustParse(s, "USD") }

// cmpOpts compares money by value and lets cmp see the unexported fields of
// the aggregate and the closed sets.
var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b money.Money) bool { return a.Equal(b) }),
	cmp.AllowUnexported(Payment{}, chargeback{}, Method{}, Status{}, DeclineReason{}, ChargebackReason{}),
	cmpopts.EquateEmpty(),
}

// testCase is one given-events / when-command / then-events-or-error row.
type testCase struct {
	name  string
	given []event.Event
	when  func(p *Payment) ([]event.Event, error)
	then  []event.Event
	err   error // matched with errors.Is; nil: success
}

func fold(events []event.Event) *Payment {
	var p Payment
	for _, e := range events {
		p.Apply(e)
	}
	return &p
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
				t.Errorf("the decision changed the payment (-before +after):\n%s", diff)
			}
			after := fold(append(append([]event.Event{}, tc.given...), got...))
			if err := checkInvariants(after); err != nil {
				t.Errorf("after the events: %v", err)
			}
		})
	}
}

// checkInvariants checks refunded + charged back + disputed <= captured and
// captured + released <= authorized on a payment with an authorization.
func checkInvariants(p *Payment) error {
	if p.Status() == StatusNew || p.Status() == StatusDeclined {
		return nil
	}
	claimed, _ := money.Sum(p.Refunded(), p.ChargedBack(), p.Disputed())
	if claimed.GreaterThan(p.Captured()) {
		return errors.New("refunded + charged back + disputed exceed captured: " + claimed.String() + " > " + p.Captured().String())
	}
	used, _ := p.Captured().Add(p.Released())
	if used.GreaterThan(p.Authorized()) {
		return errors.New("captured + released exceed authorized: " + used.String() + " > " + p.Authorized().String())
	}
	for _, m := range []money.Money{p.Captured(), p.Refunded(), p.Released(), p.Disputed(), p.ChargedBack()} {
		if m.IsNegative() {
			return errors.New("negative amount " + m.String())
		}
	}
	return nil
}
