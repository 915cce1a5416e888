package order

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
)

func registry(t testing.TB) *event.Registry {
	t.Helper()
	r := event.NewRegistry()
	Register(r)
	return r
}

// allEvents has one event of every type the package emits.
func allEvents() []event.Event {
	return []event.Event{
		placedEvent(), evCheckout[0], evConfirmed[0], evCancelled[0],
		&OrderLinesCancelled{OrderID: "o1", Lines: []LineQuantity{{1, 1}}, Value: usd("10.00"), Reason: "x", At: t0},
		evShipPart[0], evCompleted[0],
		&RefundRequested{OrderID: "o1", RefundID: "r1", Amount: usd("1.00"), Reason: "x", At: t0},
		&OrderRefunded{OrderID: "o1", RefundID: "r1", Amount: usd("1.00"), At: t0},
		&ReturnRequested{OrderID: "o1", ReturnID: "ret1", Lines: []LineQuantity{{1, 1}}, Reason: "x", At: t0},
		&ReturnReceived{OrderID: "o1", ReturnID: "ret1", Lines: []LineQuantity{{1, 1}}, Value: usd("10.00"), At: t0},
		&CheckoutStarted{OrderID: "o1", Method: MethodBNPL, Plan: PlanPayIn4, At: t0},
	}
}

func TestEveryEventRegisteredWithVersionedName(t *testing.T) {
	r := registry(t)
	seen := map[string]bool{}
	for _, e := range allEvents() {
		name := e.EventType()
		base, v, err := event.ParseTypeName(name)
		if err != nil || !strings.HasPrefix(base, "order.") || v < 1 {
			t.Errorf("%T: bad type name %q: %v", e, name, err)
		}
		typ, sv, data, err := r.Encode(e)
		if err != nil || typ != name || sv != v {
			t.Fatalf("encode %T: %s %d %v", e, typ, sv, err)
		}
		back, err := r.Decode(typ, data)
		if err != nil {
			t.Fatalf("decode %s: %v", typ, err)
		}
		if reflect.TypeOf(back) != reflect.TypeOf(e) {
			t.Errorf("%s decodes to %T, want %T", typ, back, e)
		}
		if diff := cmp.Diff(e, back, cmpOpts...); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", typ, diff)
		}
		seen[name] = true
	}
	if got := r.Names(); len(got) != len(seen) {
		t.Errorf("registered %v, emitted %d types", got, len(seen))
	}
	for _, n := range r.Names() {
		if !seen[n] {
			t.Errorf("%s registered but not covered here", n)
		}
	}
	if !r.Known(TypeOrderPlacedV1) {
		t.Error("order.placed.v1 not upcastable")
	}
	if got := StreamID("o1"); got != "order-o1" || event.Category(got) != "order" || event.ValidateStreamID(got) != nil {
		t.Errorf("StreamID = %q", got)
	}
}

// storedV1 is an order.placed.v1 as written before tax lines existed.
const storedV1 = `{"order_id":"o7","customer_id":"c9","region":"us-east","currency":"USD",` +
	`"lines":[{"no":1,"sku":"SKU-A","quantity":3,"unit_price":{"amount":"4.00","currency":"USD"},"amount":{"amount":"12.00","currency":"USD"}}],` +
	`"discounts":[{"label":"WELCOME","amount":{"amount":"2.00","currency":"USD"}}],` +
	`"subtotal":{"amount":"12.00","currency":"USD"},"discount_total":{"amount":"2.00","currency":"USD"},` +
	`"total":{"amount":"10.00","currency":"USD"},"placed_at":"2025-11-28T18:00:00Z"}`

func TestDecodeStoredV1IntoCurrentType(t *testing.T) {
	r := registry(t)
	got, err := r.DecodeEnvelope(event.Envelope{Type: TypeOrderPlacedV1, SchemaVersion: 1, Data: []byte(storedV1)})
	if err != nil {
		t.Fatal(err)
	}
	want := &OrderPlaced{
		OrderID: "o7", CustomerID: "c9", Region: "us-east", Currency: money.USD,
		Lines:     []Line{{No: 1, SKU: "SKU-A", Quantity: 3, UnitPrice: usd("4.00"), Amount: usd("12.00")}},
		Discounts: []Adjustment{{Label: "WELCOME", Amount: usd("2.00")}},
		Taxes:     []Adjustment{},
		Subtotal:  usd("12.00"), DiscountTotal: usd("2.00"), TaxTotal: usd("0.00"), Total: usd("10.00"),
		PlacedAt: time.Date(2025, 11, 28, 18, 0, 0, 0, time.UTC),
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Fatalf("v1 upcast (-want +got):\n%s", diff)
	}
	o := fold([]event.Event{got})
	if !o.TaxTotal().IsZero() || !o.Total().Equal(usd("10.00")) || o.Status() != StatusPlaced {
		t.Errorf("folded v1: tax %s total %s status %s", o.TaxTotal(), o.Total(), o.Status())
	}

	if _, err := r.Decode(TypeOrderPlacedV1, []byte(`{"currency":"XXX"}`)); !errors.Is(err, money.ErrUnknownCurrency) {
		t.Errorf("v1 with a bad currency: %v", err)
	}
	if _, err := r.Decode(TypeOrderPlacedV1, []byte(`[]`)); err == nil {
		t.Error("v1 that is not an object decoded")
	}
}
