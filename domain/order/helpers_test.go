package order

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
func eur(s string) money.Money { return money.MustParse(s, "EUR") }

// cmpOpts compare money and currencies by value and let cmp see the
// aggregate's unexported fields.
var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b money.Money) bool { return a.Equal(b) }),
	cmp.Comparer(func(a, b money.Currency) bool { return a == b }),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.AllowUnexported(Order{}, lineState{}, refund{}, returnState{}, Status{}, PaymentMethod{}, PlanKind{}),
	cmpopts.EquateEmpty(),
}

// testCase is one given-events / when-command / then-events-or-error row.
type testCase struct {
	name  string
	given []event.Event
	when  func(o *Order) ([]event.Event, error)
	then  []event.Event
	err   error // matched with errors.Is; nil: success
	// after, if set, is checked on the order folded from given and then.
	after func(t *testing.T, o *Order)
}

func fold(events ...[]event.Event) *Order {
	var o Order
	for _, es := range events {
		for _, e := range es {
			o.Apply(e)
		}
	}
	return &o
}

func runCases(t *testing.T, cases []testCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := fold(tc.given)
			got, err := tc.when(o)
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Fatalf("error = %v, want %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.then, got, cmpOpts...); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(fold(tc.given), o, cmpOpts...); diff != "" {
				t.Errorf("the decision changed the order (-before +after):\n%s", diff)
			}
			if tc.after != nil {
				tc.after(t, fold(tc.given, got))
			}
		})
	}
}

func join(parts ...[]event.Event) []event.Event {
	var out []event.Event
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func wantStatus(s Status) func(*testing.T, *Order) {
	return func(t *testing.T, o *Order) {
		t.Helper()
		if o.Status() != s {
			t.Errorf("status = %s, want %s", o.Status(), s)
		}
	}
}

// Fixture: o1, 2 x SKU-A at 10.00 + 1 x SKU-B at 5.50 = 25.50, discount
// 2.50, tax 4.60: total 27.60 USD.
func placeCmd() PlaceOrder {
	return PlaceOrder{
		OrderID: "o1", CustomerID: "c1", Region: "eu-west", Currency: money.USD,
		Lines: []LineItem{
			{SKU: "SKU-A", Quantity: 2, UnitPrice: usd("10.00")},
			{SKU: "SKU-B", Quantity: 1, UnitPrice: usd("5.50")},
		},
		Discounts: []Adjustment{{Label: "SPRING", Amount: usd("2.50")}},
		Taxes:     []Adjustment{{Label: "VAT", Amount: usd("4.60")}},
	}
}

func placedEvent() *OrderPlaced {
	return &OrderPlaced{
		OrderID: "o1", CustomerID: "c1", Region: "eu-west", Currency: money.USD,
		Lines: []Line{
			{No: 1, SKU: "SKU-A", Quantity: 2, UnitPrice: usd("10.00"), Amount: usd("20.00")},
			{No: 2, SKU: "SKU-B", Quantity: 1, UnitPrice: usd("5.50"), Amount: usd("5.50")},
		},
		Discounts:     []Adjustment{{Label: "SPRING", Amount: usd("2.50")}},
		Taxes:         []Adjustment{{Label: "VAT", Amount: usd("4.60")}},
		Subtotal:      usd("25.50"),
		DiscountTotal: usd("2.50"),
		TaxTotal:      usd("4.60"),
		Total:         usd("27.60"),
		PlacedAt:      t0,
	}
}

var (
	evPlaced    = []event.Event{placedEvent()}
	evCheckout  = []event.Event{&CheckoutStarted{OrderID: "o1", Method: MethodCard, At: t0}}
	evConfirmed = []event.Event{&OrderConfirmed{OrderID: "o1", PaymentRef: "pay-1", Paid: usd("27.60"), At: t0}}
	evShipPart  = []event.Event{&OrderLinesFulfilled{OrderID: "o1", ShipmentID: "s1", Lines: []LineQuantity{{Line: 1, Quantity: 1}}, At: t0}}
	evShipAll   = []event.Event{&OrderLinesFulfilled{OrderID: "o1", ShipmentID: "s1", Lines: []LineQuantity{{Line: 1, Quantity: 2}, {Line: 2, Quantity: 1}}, At: t0}}
	evCompleted = []event.Event{&OrderCompleted{OrderID: "o1", At: t0}}
	evCancelled = []event.Event{&OrderCancelled{OrderID: "o1", Reason: "changed mind", At: t0}}

	// The order in each status.
	sNone      []event.Event
	sPlaced    = evPlaced
	sCheckout  = join(evPlaced, evCheckout)
	sConfirmed = join(sCheckout, evConfirmed)
	sPartial   = join(sConfirmed, evShipPart)
	sFulfilled = join(sConfirmed, evShipAll)
	sCompleted = join(sFulfilled, evCompleted)
	sCancelled = join(sConfirmed, evCancelled)
)

type namedState struct {
	name   string
	events []event.Event
}

var allStates = []namedState{
	{"placed", sPlaced}, {"checkout_started", sCheckout}, {"confirmed", sConfirmed},
	{"partially_fulfilled", sPartial}, {"fulfilled", sFulfilled}, {"completed", sCompleted},
	{"cancelled", sCancelled},
}

// illegal returns one case per status not in allowed: the command must fail
// with ErrIllegalTransition there, and with ErrNotPlaced on a new order.
func illegal(cmd string, when func(o *Order) ([]event.Event, error), allowed ...string) []testCase {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	out := []testCase{{name: cmd + " on a new order", given: sNone, when: when, err: ErrNotPlaced}}
	for _, s := range allStates {
		if ok[s.name] {
			continue
		}
		out = append(out, testCase{name: cmd + " illegal in " + s.name, given: s.events, when: when, err: ErrIllegalTransition})
	}
	return out
}
