package inventory

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/livecore/livecore/domain/event"
)

const propertySeed = 20260302

func registry(t testing.TB) *event.Registry {
	t.Helper()
	r := event.NewRegistry()
	Register(r)
	return r
}

func TestEveryEventRegisteredWithVersionedName(t *testing.T) {
	r := registry(t)
	all := []event.Event{
		received(1), reserved("o1", 1, t15), sReleased[2], sExpired[2], sCommitted[2],
		&StockAdjusted{SKU: sku, Location: ams, Delta: -1, Reason: "x", At: t0},
		dropOpened("d1", 1, 1), purchased("c1", "o1", 1), sDropClose[3],
	}
	seen := map[string]bool{}
	for _, e := range all {
		base, _, err := event.ParseTypeName(e.EventType())
		if err != nil || !strings.HasPrefix(base, "inventory.") {
			t.Errorf("%T: type name %q: %v", e, e.EventType(), err)
		}
		typ, _, data, err := r.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := r.Decode(typ, data)
		if err != nil {
			t.Fatal(err)
		}
		if reflect.TypeOf(back) != reflect.TypeOf(e) {
			t.Errorf("%s decodes to %T", typ, back)
		}
		if diff := cmp.Diff(e, back, cmpOpts...); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", typ, diff)
		}
		seen[typ] = true
	}
	for _, n := range r.Names() {
		if !seen[n] {
			t.Errorf("%s registered but not covered", n)
		}
	}
	if len(seen) != len(r.Names()) {
		t.Errorf("covered %d, registered %d", len(seen), len(r.Names()))
	}
}

// randomDecision runs one random, often invalid, decision at now.
func randomDecision(r *rand.Rand, it *Item, now time.Time, step int) ([]event.Event, error) {
	order := func() string { return fmt.Sprint("o", r.IntN(step/2+3)) }
	switch r.IntN(12) {
	case 0:
		return it.Receive(1+r.Int64N(20), "po", now)
	case 1, 2:
		return it.Reserve(order(), 1+r.Int64N(15), now.Add(time.Duration(1+r.IntN(20))*time.Minute), now)
	case 3:
		return it.Release(order(), "cancelled", now)
	case 4:
		return it.Commit(order(), "s", 1+r.Int64N(8), now)
	case 5:
		return it.ExpireReservations(now)
	case 6:
		return it.Adjust(r.Int64N(21)-12, "count", now)
	case 7:
		return it.OpenDrop(fmt.Sprint("d", step), 1+r.Int64N(30), 1+r.Int64N(3), now)
	case 8, 9, 10:
		return it.BuyFromDrop(it.drop.id, fmt.Sprint("c", r.IntN(6)), order(), 1+r.Int64N(3), now)
	default:
		return it.CloseDrop(it.drop.id, now)
	}
}

// TestPropertyNeverOversold runs random interleavings of receive, reserve,
// release, commit, expire, adjust and drop decisions with a moving clock, and
// checks after every decision that stock is never negative, never oversold
// (Available >= 0), Reserved is exactly what reservations and the drop hold,
// no customer passes a drop limit, and every refusal for stock reports the
// true availability. At the end of each sequence the folded state must equal
// the state re-folded after an Encode -> Decode round trip.
func TestPropertyNeverOversold(t *testing.T) {
	const sequences, steps = 300, 200
	r := rand.New(rand.NewPCG(propertySeed, 3))
	reg := registry(t)
	var accepted, rejected, insufficient, events int
	for seq := range sequences {
		it := fold()
		now := t0
		var history []event.Event
		for step := range steps {
			now = now.Add(time.Duration(r.IntN(90)) * time.Second)
			es, err := randomDecision(r, it, now, step)
			var ise *InsufficientStockError
			switch {
			case errors.As(err, &ise):
				insufficient++
				if ise.Requested <= ise.Available {
					t.Fatalf("seq %d step %d: refused %d with %d available", seq, step, ise.Requested, ise.Available)
				}
				fallthrough
			case err != nil:
				rejected++
				continue
			}
			accepted++
			for _, e := range es {
				it.Apply(e)
			}
			history = append(history, es...)
			checkInvariants(t, it)
		}
		events += len(history)
		var decoded []event.Event
		for _, e := range history {
			typ, _, data, err := reg.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			d, err := reg.Decode(typ, data)
			if err != nil {
				t.Fatal(err)
			}
			decoded = append(decoded, d)
		}
		if diff := cmp.Diff(it, fold(decoded), cmpOpts...); diff != "" {
			t.Fatalf("seq %d: fold vs fold after JSON round trip (-orig +decoded):\n%s", seq, diff)
		}
	}
	t.Logf("%d sequences x %d random decisions (seed %d): %d accepted, %d rejected (%d for stock), %d events; 0 negative, 0 oversold, JSON re-fold equal",
		sequences, steps, propertySeed, accepted, rejected, insufficient, events)
}
