package node

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/regions"
)

// TestSagaKeeperIndex feeds the keeper's index a log as a replica may hold
// it (a fulfillment split before its order's events: each category is its
// own Kafka topic) and checks what it would re-drive and terminate: open
// orders by home (until completed or cancelled), whether their checkout
// saga is done (split), and refunds until settled, returns included.
func TestSagaKeeperIndex(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo := regions.Topology{Regions: []regions.Region{{Name: "r1"}, {Name: "r2"}}, Homes: []regions.Home{{Name: "h1", Region: "r1"}, {Name: "h2", Region: "r2"}}}
	reg := domain.NewRegistry()
	store := memory.New(memory.Config{})
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	usd := money.MustCurrency("USD")
	n := 0
	put := func(stream string, evs ...event.Event) {
		t.Helper()
		props := make([]event.Proposed, len(evs))
		for i, e := range evs {
			var err error
			n++
			if props[i], err = reg.Propose(event.DeriveID("test", n), e, event.Metadata{Tenant: "acme"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := store.Append(ctx, stream, event.Any, props); err != nil {
			t.Fatal(err)
		}
	}
	placed := func(id string) *order.OrderPlaced {
		ten := money.MustParse("10.00", "USD")
		return &order.OrderPlaced{OrderID: id, CustomerID: "c", Currency: usd, Lines: []order.Line{{No: 1, SKU: "s", Quantity: 1, UnitPrice: ten, Amount: ten}},
			Subtotal: ten, DiscountTotal: money.Zero(usd), TaxTotal: money.Zero(usd), Total: ten, PlacedAt: at}
	}
	a, b, c := "h1.a", "h1.b", "h2.c"
	// b's split arrives before b's own events.
	put(fulfillment.StreamID(b), &fulfillment.OrderSplit{OrderID: b, At: at})
	put(order.StreamID(a), placed(a), &order.CheckoutStarted{OrderID: a, Method: order.MethodCard, At: at})
	put(order.StreamID(b), placed(b), &order.CheckoutStarted{OrderID: b, Method: order.MethodCard, At: at}, &order.OrderConfirmed{OrderID: b, PaymentRef: "ref", Paid: money.MustParse("10.00", "USD"), At: at})
	put(order.StreamID(c), placed(c), &order.OrderCancelled{OrderID: c, Reason: "test", At: at})
	// a: a goodwill refund settled, a return received and not yet refunded.
	put(order.StreamID(a),
		&order.RefundRequested{OrderID: a, RefundID: "g1", Amount: money.MustParse("1.00", "USD"), Reason: "goodwill", At: at},
		&order.OrderRefunded{OrderID: a, RefundID: "g1", Amount: money.MustParse("1.00", "USD"), At: at},
		&order.ReturnReceived{OrderID: a, ReturnID: "r1", Value: money.MustParse("4.00", "USD"), At: at})

	k := newSagaKeeper(topo, nil, store, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go k.follow(ctx)
	if err := k.waitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	oa, ob, okc := k.open[a], k.open[b], k.open[c]
	_, cOpen := k.open[c]
	k.mu.Unlock()
	if !oa.checkingOut || oa.split || oa.home != "h1" || oa.tenant != "acme" {
		t.Errorf("a: %+v", oa)
	}
	if !ob.split {
		t.Errorf("b's split (applied before b's own events) was lost: %+v", ob)
	}
	if cOpen {
		t.Errorf("cancelled c is still open: %+v", okc)
	}
	if got := k.ordersOf("h1"); len(got) != 2 {
		t.Errorf("h1's open orders: %+v", got)
	}
	if got := k.ordersOf("h2"); len(got) != 0 {
		t.Errorf("h2's open orders: %+v", got)
	}
	refunds := k.refundsOf("h1")
	if len(refunds) != 1 || refunds[0].RefundID != "return-r1" || !refunds[0].Amount.Equal(money.MustParse("4.00", "USD")) || refunds[0].Tenant != "acme" {
		t.Errorf("h1's open refunds: %+v", refunds)
	}
	put(order.StreamID(a), &order.OrderRefunded{OrderID: a, RefundID: "return-r1", Amount: money.MustParse("4.00", "USD"), At: at},
		&order.OrderCompleted{OrderID: a, At: at})
	if err := k.waitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	if got, rs := k.ordersOf("h1"), k.refundsOf("h1"); len(got) != 1 || got[0].OrderID != b || len(rs) != 0 {
		t.Errorf("after a's refund and completion: orders %+v, refunds %+v", got, rs)
	}
}
