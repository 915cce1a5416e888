package inventory

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/livecore/livecore/domain/event"
)

func wantLevels(onHand, reserved int64) func(*testing.T, *Item) {
	return func(t *testing.T, it *Item) {
		t.Helper()
		if it.OnHand() != onHand || it.Reserved() != reserved || it.Available() != onHand-reserved {
			t.Errorf("on hand %d reserved %d available %d, want %d %d %d", it.OnHand(), it.Reserved(), it.Available(), onHand, reserved, onHand-reserved)
		}
	}
}

func TestReceive(t *testing.T) {
	receive := func(q int64, ref string) func(*Item) ([]event.Event, error) {
		return func(it *Item) ([]event.Event, error) { return it.Receive(q, ref, t0) }
	}
	runCases(t, []testCase{
		{name: "first stock", when: receive(100, "po-1"), then: []event.Event{received(100)}, after: wantLevels(100, 0)},
		{name: "more stock", given: sReserved, when: receive(5, "po-1"), then: []event.Event{received(5)}, after: wantLevels(105, 10)},
		{name: "zero", when: receive(0, "po-1"), err: ErrInvalidQuantity},
		{name: "negative", when: receive(-3, "po-1"), err: ErrInvalidQuantity},
		{name: "past int64", given: sStocked, when: receive(math.MaxInt64, "po-1"), err: ErrInvalidQuantity},
		{name: "reference required", when: receive(1, ""), err: ErrInvalidInput},
	})
}

func TestReserve(t *testing.T) {
	reserve := func(order string, q int64, exp time.Time) func(*Item) ([]event.Event, error) {
		return func(it *Item) ([]event.Event, error) { return it.Reserve(order, q, exp, t0) }
	}
	expiring := join(sStocked, []event.Event{reserved("o1", 60, t0), reserved("o2", 30, t15), reserved("o0", 5, t0.Add(-time.Second))})
	runCases(t, []testCase{
		{name: "available", given: sStocked, when: reserve("o1", 10, t15), then: []event.Event{reserved("o1", 10, t15)}, after: func(t *testing.T, it *Item) {
			r, ok := it.Reservation("o1")
			if !ok || r.Quantity != 10 || !r.ExpiresAt.Equal(t15) {
				t.Errorf("reservation %+v %v", r, ok)
			}
			wantLevels(100, 10)(t, it)
		}},
		{name: "exactly what is available", given: sReserved, when: reserve("o2", 90, t15), then: []event.Event{reserved("o2", 90, t15)}, after: wantLevels(100, 100)},
		{name: "one more than available", given: sReserved, when: reserve("o2", 91, t15), err: ErrInsufficientStock},
		{name: "no stock at all", when: reserve("o1", 1, t15), err: ErrInsufficientStock},
		{name: "due reservations expire to make room", given: expiring, when: reserve("o3", 60, t30), then: []event.Event{
			&ReservationExpired{SKU: sku, Location: ams, OrderID: "o0", Quantity: 5, At: t0},
			&ReservationExpired{SKU: sku, Location: ams, OrderID: "o1", Quantity: 60, At: t0},
			reserved("o3", 60, t30),
		}, after: wantLevels(100, 90)},
		{name: "due reservations stay when there is room", given: expiring, when: reserve("o3", 5, t30), then: []event.Event{reserved("o3", 5, t30)}},
		{name: "even with expiry not enough", given: expiring, when: reserve("o3", 71, t30), err: ErrInsufficientStock},
		{name: "same reservation again is a no-op", given: sReserved, when: reserve("o1", 10, t30)},
		{name: "other quantity for the same order", given: sReserved, when: reserve("o1", 11, t15), err: ErrReservationConflict},
		{name: "after commit", given: sCommitted, when: reserve("o1", 10, t15), err: ErrReservationClosed},
		{name: "after release", given: sReleased, when: reserve("o1", 10, t15), err: ErrReservationClosed},
		{name: "after expiry", given: sExpired, when: reserve("o1", 10, t15), err: ErrReservationClosed},
		{name: "order with a drop purchase", given: join(sDrop, []event.Event{purchased("c1", "o9", 2)}), when: reserve("o9", 2, t15), err: ErrReservationConflict},
		{name: "expiry not after now", given: sStocked, when: reserve("o1", 1, t0), err: ErrBadExpiry},
		{name: "zero quantity", given: sStocked, when: reserve("o1", 0, t15), err: ErrInvalidQuantity},
		{name: "order ID required", given: sStocked, when: reserve("", 1, t15), err: ErrInvalidInput},
		{name: "drop allocation is not available", given: sDrop, when: reserve("o1", 51, t15), err: ErrInsufficientStock},
	})

	var ise *InsufficientStockError
	_, err := fold(sReserved).Reserve("o2", 91, t15, t0)
	if !errors.As(err, &ise) || *ise != (InsufficientStockError{SKU: sku, Requested: 91, Available: 90}) {
		t.Errorf("As InsufficientStockError: %v %+v", err, ise)
	}
	_, err = fold(expiring).Reserve("o3", 71, t30, t0)
	if !errors.As(err, &ise) || ise.Available != 70 {
		t.Errorf("with due reservations counted: %v %+v", err, ise)
	}
}

func TestRelease(t *testing.T) {
	release := func(order, reason string) func(*Item) ([]event.Event, error) {
		return func(it *Item) ([]event.Event, error) { return it.Release(order, reason, t0) }
	}
	runCases(t, []testCase{
		{name: "open reservation", given: sReserved, when: release("o1", "cancelled"), then: sReleased[2:], after: wantLevels(100, 0)},
		{name: "rest after a partial commit", given: join(sReserved, []event.Event{&StockCommitted{SKU: sku, Location: ams, OrderID: "o1", ShipmentID: "s1", Quantity: 4, At: t0}}),
			when: release("o1", "cancelled"), then: []event.Event{&ReservationReleased{SKU: sku, Location: ams, OrderID: "o1", Quantity: 6, Reason: "cancelled", At: t0}}, after: wantLevels(96, 0)},
		{name: "drop purchase goes back to available", given: join(sDrop, []event.Event{purchased("c1", "o9", 2)}), when: release("o9", "payment failed"),
			then: []event.Event{&ReservationReleased{SKU: sku, Location: ams, OrderID: "o9", Quantity: 2, Reason: "payment failed", At: t0}}, after: func(t *testing.T, it *Item) {
				wantLevels(100, 48)(t, it)
				if it.Drop().Remaining != 48 {
					t.Errorf("drop remaining %d", it.Drop().Remaining)
				}
			}},
		{name: "released twice is a no-op", given: sReleased, when: release("o1", "again")},
		{name: "after expiry is a no-op", given: sExpired, when: release("o1", "cancelled")},
		{name: "after commit", given: sCommitted, when: release("o1", "cancelled"), err: ErrAlreadyCommitted},
		{name: "unknown order", given: sReserved, when: release("o2", "cancelled"), err: ErrReservationNotFound},
		{name: "reason required", given: sReserved, when: release("o1", ""), err: ErrInvalidInput},
	})
}

func TestCommit(t *testing.T) {
	commit := func(order, shipment string, q int64) func(*Item) ([]event.Event, error) {
		return func(it *Item) ([]event.Event, error) { return it.Commit(order, shipment, q, t0) }
	}
	committed := func(order string, q int64) []event.Event {
		return []event.Event{&StockCommitted{SKU: sku, Location: ams, OrderID: order, ShipmentID: "s1", Quantity: q, At: t0}}
	}
	runCases(t, []testCase{
		{name: "whole reservation", given: sReserved, when: commit("o1", "s1", 10), then: committed("o1", 10), after: func(t *testing.T, it *Item) {
			wantLevels(90, 0)(t, it)
			if _, open := it.Reservation("o1"); open || it.Committed() != 10 {
				t.Errorf("reservation still open or committed %d", it.Committed())
			}
		}},
		{name: "part of it", given: sReserved, when: commit("o1", "s1", 4), then: committed("o1", 4), after: func(t *testing.T, it *Item) {
			wantLevels(96, 6)(t, it)
			if r, _ := it.Reservation("o1"); r.Quantity != 6 {
				t.Errorf("left %d", r.Quantity)
			}
		}},
		{name: "past its expiry time but not expired", given: sReserved, when: func(it *Item) ([]event.Event, error) {
			return it.Commit("o1", "s1", 10, t30)
		}, then: []event.Event{&StockCommitted{SKU: sku, Location: ams, OrderID: "o1", ShipmentID: "s1", Quantity: 10, At: t30}}},
		{name: "drop purchase", given: join(sDrop, []event.Event{purchased("c1", "o9", 2)}), when: commit("o9", "s1", 2), then: committed("o9", 2), after: wantLevels(98, 48)},
		{name: "more than reserved", given: sReserved, when: commit("o1", "s1", 11), err: ErrCommitExceedsReservation},
		{name: "committed twice", given: sCommitted, when: commit("o1", "s2", 1), err: ErrAlreadyCommitted},
		{name: "after release", given: sReleased, when: commit("o1", "s1", 10), err: ErrReservationClosed},
		{name: "after expiry", given: sExpired, when: commit("o1", "s1", 10), err: ErrReservationClosed},
		{name: "unknown order", given: sReserved, when: commit("o2", "s1", 1), err: ErrReservationNotFound},
		{name: "zero quantity", given: sReserved, when: commit("o1", "s1", 0), err: ErrInvalidQuantity},
		{name: "shipment required", given: sReserved, when: commit("o1", "", 1), err: ErrInvalidInput},
	})
}

func TestAdjust(t *testing.T) {
	adjust := func(d int64, reason string) func(*Item) ([]event.Event, error) {
		return func(it *Item) ([]event.Event, error) { return it.Adjust(d, reason, t0) }
	}
	adjusted := func(d int64) []event.Event {
		return []event.Event{&StockAdjusted{SKU: sku, Location: ams, Delta: d, Reason: "cycle count", At: t0}}
	}
	runCases(t, []testCase{
		{name: "found more", given: sReserved, when: adjust(3, "cycle count"), then: adjusted(3), after: wantLevels(103, 10)},
		{name: "found fewer", given: sReserved, when: adjust(-90, "cycle count"), then: adjusted(-90), after: wantLevels(10, 10)},
		{name: "would take reserved units", given: sReserved, when: adjust(-91, "cycle count"), err: ErrInsufficientStock},
		{name: "would take drop units", given: sDrop, when: adjust(-51, "cycle count"), err: ErrInsufficientStock},
		{name: "below zero", when: adjust(-1, "cycle count"), err: ErrInsufficientStock},
		{name: "first count on an empty item", when: adjust(7, "cycle count"), then: adjusted(7), after: wantLevels(7, 0)},
		{name: "zero delta", given: sStocked, when: adjust(0, "cycle count"), err: ErrInvalidQuantity},
		{name: "min int64", given: sStocked, when: adjust(math.MinInt64, "cycle count"), err: ErrInvalidQuantity},
		{name: "past int64", given: sStocked, when: adjust(math.MaxInt64, "cycle count"), err: ErrInvalidQuantity},
		{name: "reason required", given: sStocked, when: adjust(1, ""), err: ErrInvalidInput},
	})
}

func TestExpireReservations(t *testing.T) {
	expire := func(now time.Time) func(*Item) ([]event.Event, error) {
		return func(it *Item) ([]event.Event, error) { return it.ExpireReservations(now) }
	}
	several := join(sStocked, []event.Event{reserved("o2", 5, t15), reserved("o1", 10, t15), reserved("o3", 1, t30), purchased("c1", "o9", 1)})
	several = append(several[:1], append([]event.Event{dropOpened("d1", 5, 2)}, several[1:]...)...)
	runCases(t, []testCase{
		{name: "due ones in order-ID order", given: several, when: expire(t15), then: []event.Event{
			&ReservationExpired{SKU: sku, Location: ams, OrderID: "o1", Quantity: 10, At: t15},
			&ReservationExpired{SKU: sku, Location: ams, OrderID: "o2", Quantity: 5, At: t15},
		}, after: func(t *testing.T, it *Item) {
			wantLevels(100, 1+1+4)(t, it)
			if _, ok := it.Reservation("o9"); !ok {
				t.Error("drop purchase expired")
			}
		}},
		{name: "nothing due", given: several, when: expire(t0)},
		{name: "no reservations", given: sStocked, when: expire(t30)},
		{name: "released ones are gone", given: sReleased, when: expire(t30)},
	})
}

func TestOpenDrop(t *testing.T) {
	open := func(id string, alloc, limit int64) func(*Item) ([]event.Event, error) {
		return func(it *Item) ([]event.Event, error) { return it.OpenDrop(id, alloc, limit, t0) }
	}
	runCases(t, []testCase{
		{name: "sets the allocation aside", given: sStocked, when: open("d1", 50, 2), then: sDrop[1:], after: func(t *testing.T, it *Item) {
			wantLevels(100, 50)(t, it)
			if d := it.Drop(); d != (DropView{ID: "d1", Open: true, Allocation: 50, Remaining: 50, PerCustomerLimit: 2}) {
				t.Errorf("drop %+v", d)
			}
		}},
		{name: "all available stock", given: sReserved, when: open("d1", 90, 1), then: []event.Event{dropOpened("d1", 90, 1)}, after: wantLevels(100, 100)},
		{name: "more than available", given: sReserved, when: open("d1", 91, 1), err: ErrInsufficientStock},
		{name: "next drop after close", given: sDropClose, when: open("d2", 98, 1), then: []event.Event{dropOpened("d2", 98, 1)}, after: func(t *testing.T, it *Item) {
			if it.Bought("c1") != 0 {
				t.Errorf("limits carried over: %d", it.Bought("c1"))
			}
		}},
		{name: "one open at a time", given: sDrop, when: open("d2", 1, 1), err: ErrDropAlreadyOpen},
		{name: "drop ID reused", given: sDropClose, when: open("d1", 1, 1), err: ErrDuplicateDrop},
		{name: "zero allocation", given: sStocked, when: open("d1", 0, 1), err: ErrInvalidQuantity},
		{name: "zero limit", given: sStocked, when: open("d1", 1, 0), err: ErrInvalidQuantity},
		{name: "drop ID required", given: sStocked, when: open("", 1, 1), err: ErrInvalidInput},
	})
}

func TestBuyFromDrop(t *testing.T) {
	buy := func(drop, customer, order string, q int64) func(*Item) ([]event.Event, error) {
		return func(it *Item) ([]event.Event, error) { return it.BuyFromDrop(drop, customer, order, q, t0) }
	}
	bought1 := join(sDrop, []event.Event{purchased("c1", "o1", 1)})
	last3 := join(sStocked, []event.Event{dropOpened("d1", 3, 5), purchased("c9", "o0", 2)})
	soldOut := join(last3, []event.Event{purchased("c8", "o8", 1)})
	runCases(t, []testCase{
		{name: "first buyer", given: sDrop, when: buy("d1", "c1", "o1", 1), then: []event.Event{purchased("c1", "o1", 1)}, after: func(t *testing.T, it *Item) {
			wantLevels(100, 50)(t, it)
			r, _ := it.Reservation("o1")
			if it.Drop().Remaining != 49 || it.Bought("c1") != 1 || r != (Reservation{OrderID: "o1", Quantity: 1, DropID: "d1", CustomerID: "c1"}) {
				t.Errorf("remaining %d bought %d reservation %+v", it.Drop().Remaining, it.Bought("c1"), r)
			}
		}},
		{name: "up to the limit in two orders", given: bought1, when: buy("d1", "c1", "o2", 1), then: []event.Event{purchased("c1", "o2", 1)}},
		{name: "past the limit", given: bought1, when: buy("d1", "c1", "o2", 2), err: ErrDropLimitReached},
		{name: "past the limit in one order", given: sDrop, when: buy("d1", "c1", "o1", 3), err: ErrDropLimitReached},
		{name: "last unit", given: last3, when: buy("d1", "c8", "o8", 1), then: []event.Event{&DropPurchased{SKU: sku, Location: ams, DropID: "d1", CustomerID: "c8", OrderID: "o8", Quantity: 1, At: t0}}},
		{name: "sold out", given: soldOut, when: buy("d1", "c7", "o7", 1), err: ErrDropSoldOut},
		{name: "sold out beats the limit", given: soldOut, when: buy("d1", "c9", "o7", 9), err: ErrDropSoldOut},
		{name: "fewer left than asked", given: last3, when: buy("d1", "c8", "o8", 2), err: ErrInsufficientStock},
		{name: "same purchase again is a no-op", given: bought1, when: buy("d1", "c1", "o1", 1)},
		{name: "order ID reused by another customer", given: bought1, when: buy("d1", "c2", "o1", 1), err: ErrReservationConflict},
		{name: "order ID reused with another quantity", given: bought1, when: buy("d1", "c1", "o1", 2), err: ErrReservationConflict},
		{name: "order with a plain reservation", given: join(sReserved, []event.Event{dropOpened("d1", 5, 1)}), when: buy("d1", "c1", "o1", 10), err: ErrReservationConflict},
		{name: "order ID already closed", given: join(sCommitted, []event.Event{dropOpened("d1", 5, 1)}), when: buy("d1", "c1", "o1", 1), err: ErrReservationClosed},
		{name: "no drop", given: sStocked, when: buy("d1", "c1", "o1", 1), err: ErrNoOpenDrop},
		{name: "another drop", given: sDrop, when: buy("d2", "c1", "o1", 1), err: ErrNoOpenDrop},
		{name: "closed drop", given: sDropClose, when: buy("d1", "c1", "o1", 1), err: ErrNoOpenDrop},
		{name: "zero quantity", given: sDrop, when: buy("d1", "c1", "o1", 0), err: ErrInvalidQuantity},
		{name: "customer required", given: sDrop, when: buy("d1", "", "o1", 1), err: ErrInvalidInput},
		{name: "order required", given: sDrop, when: buy("d1", "c1", "", 1), err: ErrInvalidInput},
	})

	var le *DropLimitError
	_, err := fold(bought1).BuyFromDrop("d1", "c1", "o2", 2, t0)
	if !errors.As(err, &le) || *le != (DropLimitError{CustomerID: "c1", Limit: 2, Bought: 1, Requested: 2}) {
		t.Errorf("As DropLimitError: %v %+v", err, le)
	}
}

func TestCloseDrop(t *testing.T) {
	closeDrop := func(id string) func(*Item) ([]event.Event, error) {
		return func(it *Item) ([]event.Event, error) { return it.CloseDrop(id, t0) }
	}
	runCases(t, []testCase{
		{name: "unsold units return", given: join(sDrop, []event.Event{purchased("c1", "o9", 2)}), when: closeDrop("d1"), then: sDropClose[3:], after: func(t *testing.T, it *Item) {
			wantLevels(100, 2)(t, it)
			if d := it.Drop(); d.Open || d.Remaining != 0 {
				t.Errorf("drop %+v", d)
			}
		}},
		{name: "nothing sold", given: sDrop, when: closeDrop("d1"), then: []event.Event{&DropClosed{SKU: sku, Location: ams, DropID: "d1", Sold: 0, Unsold: 50, At: t0}}, after: wantLevels(100, 0)},
		{name: "closed twice", given: sDropClose, when: closeDrop("d1"), err: ErrNoOpenDrop},
		{name: "another drop", given: sDrop, when: closeDrop("d2"), err: ErrNoOpenDrop},
		{name: "no drop", given: sStocked, when: closeDrop("d1"), err: ErrNoOpenDrop},
	})
}

func TestInvalidKeyRefusesEveryDecision(t *testing.T) {
	for _, it := range []*Item{NewItem("", ams), NewItem("bad sku", ams), NewItem("A@B", ams), NewItem(sku, Location{})} {
		for name, decide := range map[string]func() ([]event.Event, error){
			"receive": func() ([]event.Event, error) { return it.Receive(1, "po", t0) },
			"reserve": func() ([]event.Event, error) { return it.Reserve("o1", 1, t15, t0) },
			"release": func() ([]event.Event, error) { return it.Release("o1", "x", t0) },
			"commit":  func() ([]event.Event, error) { return it.Commit("o1", "s1", 1, t0) },
			"adjust":  func() ([]event.Event, error) { return it.Adjust(1, "x", t0) },
			"expire":  func() ([]event.Event, error) { return it.ExpireReservations(t0) },
			"drop":    func() ([]event.Event, error) { return it.OpenDrop("d1", 1, 1, t0) },
		} {
			events, err := decide()
			if !errors.Is(err, ErrInvalidSKU) && !errors.Is(err, ErrInvalidLocation) || events != nil {
				t.Errorf("%s on %q@%q: %v %v", name, it.SKU(), it.Location(), events, err)
			}
		}
	}
}

func TestLocationAndStreamID(t *testing.T) {
	for _, bad := range []string{"", "a b", "a@b", "ams/1", string(make([]byte, 65))} {
		if _, err := ParseLocation(bad); !errors.Is(err, ErrInvalidLocation) {
			t.Errorf("ParseLocation(%q) = %v", bad, err)
		}
	}
	loc, err := ParseLocation("us-east:dc3")
	if err != nil {
		t.Fatal(err)
	}
	var back Location
	b, _ := loc.MarshalText()
	if err := back.UnmarshalText(b); err != nil || back != loc {
		t.Errorf("text round trip: %v %v", back, err)
	}
	if _, err := (Location{}).MarshalText(); !errors.Is(err, ErrInvalidLocation) {
		t.Errorf("zero location marshals: %v", err)
	}
	if got := StreamID("SKU/1", loc); got != "inventory-SKU/1@us-east:dc3" || event.ValidateStreamID(got) != nil || event.Category(got) != "inventory" {
		t.Errorf("StreamID = %q", got)
	}
}
