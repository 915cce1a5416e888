package inventory

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/livecore/livecore/domain/event"
)

var (
	t0  = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	t15 = t0.Add(15 * time.Minute)
	t30 = t0.Add(30 * time.Minute)
	ams = MustLocation("ams-1")
)

const sku = "SKU-1"

var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.AllowUnexported(Item{}, Location{}, drop{}),
	cmpopts.EquateEmpty(),
	cmpopts.EquateErrors(),
}

type testCase struct {
	name  string
	given []event.Event
	when  func(it *Item) ([]event.Event, error)
	then  []event.Event
	err   error
	after func(t *testing.T, it *Item)
}

func fold(events ...[]event.Event) *Item {
	it := NewItem(sku, ams)
	for _, es := range events {
		for _, e := range es {
			it.Apply(e)
		}
	}
	return it
}

func runCases(t *testing.T, cases []testCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			it := fold(tc.given)
			got, err := tc.when(it)
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Fatalf("error = %v, want %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.then, got, cmpOpts...); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(fold(tc.given), it, cmpOpts...); diff != "" {
				t.Errorf("the decision changed the item (-before +after):\n%s", diff)
			}
			after := fold(tc.given, got)
			checkInvariants(t, after)
			if tc.after != nil {
				tc.after(t, after)
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

// checkInvariants: never negative, never oversold, Reserved accounted for.
func checkInvariants(t testing.TB, it *Item) {
	t.Helper()
	var held int64
	for _, r := range it.Reservations() {
		if r.Quantity <= 0 {
			t.Fatalf("reservation %+v not positive", r)
		}
		held += r.Quantity
	}
	if d := it.Drop(); d.Open {
		held += d.Remaining
		if d.Remaining < 0 || d.Remaining > d.Allocation {
			t.Fatalf("drop remaining %d of %d", d.Remaining, d.Allocation)
		}
	}
	switch {
	case it.OnHand() < 0:
		t.Fatalf("on hand %d < 0", it.OnHand())
	case it.Reserved() < 0:
		t.Fatalf("reserved %d < 0", it.Reserved())
	case it.Available() < 0:
		t.Fatalf("oversold: on hand %d, reserved %d", it.OnHand(), it.Reserved())
	case it.Reserved() != held:
		t.Fatalf("reserved %d, but reservations and drop hold %d", it.Reserved(), held)
	case it.OnHand() != it.Received()+it.Adjusted()-it.Committed():
		t.Fatalf("on hand %d != received %d + adjusted %d - committed %d", it.OnHand(), it.Received(), it.Adjusted(), it.Committed())
	}
	for c, n := range it.drop.bought {
		if n > it.drop.limit {
			t.Fatalf("customer %s bought %d > limit %d", c, n, it.drop.limit)
		}
	}
}

func received(q int64) *StockReceived {
	return &StockReceived{SKU: sku, Location: ams, Quantity: q, Ref: "po-1", At: t0}
}

func reserved(order string, q int64, exp time.Time) *StockReserved {
	return &StockReserved{SKU: sku, Location: ams, OrderID: order, Quantity: q, ExpiresAt: exp, At: t0}
}

func dropOpened(id string, alloc, limit int64) *DropOpened {
	return &DropOpened{SKU: sku, Location: ams, DropID: id, Allocation: alloc, PerCustomerLimit: limit, At: t0}
}

func purchased(customer, order string, q int64) *DropPurchased {
	return &DropPurchased{SKU: sku, Location: ams, DropID: "d1", CustomerID: customer, OrderID: order, Quantity: q, At: t0}
}

var (
	sStocked   = []event.Event{received(100)}
	sReserved  = join(sStocked, []event.Event{reserved("o1", 10, t15)})
	sCommitted = join(sReserved, []event.Event{&StockCommitted{SKU: sku, Location: ams, OrderID: "o1", ShipmentID: "s1", Quantity: 10, At: t0}})
	sReleased  = join(sReserved, []event.Event{&ReservationReleased{SKU: sku, Location: ams, OrderID: "o1", Quantity: 10, Reason: "cancelled", At: t0}})
	sExpired   = join(sReserved, []event.Event{&ReservationExpired{SKU: sku, Location: ams, OrderID: "o1", Quantity: 10, At: t15}})
	sDrop      = join(sStocked, []event.Event{dropOpened("d1", 50, 2)})
	sDropClose = join(sDrop, []event.Event{purchased("c1", "o9", 2), &DropClosed{SKU: sku, Location: ams, DropID: "d1", Sold: 2, Unsold: 48, At: t0}})
)
