package readmodels_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/projections"
	"github.com/livecore/livecore/projections/readmodels"
)

// fold folds every stream of a category with the real aggregates.
func fold[A interface{ Apply(event.Event) }](t *testing.T, store *memory.Store, reg *event.Registry, category string, newAgg func(stream string) A) map[string]A {
	t.Helper()
	all, err := store.ReadAll(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]A{}
	for _, e := range all {
		if event.Category(e.StreamID) != category {
			continue
		}
		a, ok := out[e.StreamID]
		if !ok {
			a = newAgg(e.StreamID)
			out[e.StreamID] = a
		}
		ev, err := reg.Decode(e.Type, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		a.Apply(ev)
	}
	return out
}

// TestReadModelsAgreeWithAggregates projects a simulated history into
// SQLite and checks every row against the aggregate folded from its
// stream, and that queries are tenant-scoped.
func TestReadModelsAgreeWithAggregates(t *testing.T) {
	store, reg, head := history(t, 3, 300)
	db := openSQLite(t)
	catchUp(t, db, store, readmodels.All(reg), head)
	ctx := context.Background()
	tenantOf := func(stream string) string {
		evs, _ := store.ReadStream(ctx, stream, 1, 1)
		return evs[0].Metadata.Tenant
	}
	checked := 0
	for stream, o := range fold(t, store, reg, "order", func(string) *order.Order { return &order.Order{} }) {
		tenant := tenantOf(stream)
		got, err := readmodels.GetOrder(ctx, db, tenant, o.ID())
		if err != nil {
			t.Fatalf("%s: %v", o.ID(), err)
		}
		want := readmodels.OrderRow{Status: o.Status().String(), Total: o.Total().MinorUnits(), Paid: o.Paid().MinorUnits(),
			Refunded: o.Refunded().MinorUnits(), RefundPending: o.RefundPending().MinorUnits(), CancelledValue: o.CancelledValue().MinorUnits(),
			PaymentMethod: o.PaymentMethod().String(), CustomerID: o.CustomerID()}
		if got.Status != want.Status || got.Total != want.Total || got.Paid != want.Paid || got.Refunded != want.Refunded ||
			got.RefundPending != want.RefundPending || got.CancelledValue != want.CancelledValue || got.PaymentMethod != want.PaymentMethod || got.CustomerID != want.CustomerID {
			t.Errorf("order %s: read model %+v, aggregate %+v", o.ID(), got.OrderRow, want)
		}
		for i, l := range o.Lines() {
			gl := got.LineItems[i]
			if gl.Fulfilled != l.Fulfilled || gl.Cancelled != l.Cancelled || gl.Returned != l.Returned || gl.Quantity != l.Quantity {
				t.Errorf("order %s line %d: %+v vs %+v", o.ID(), l.No, gl, l)
			}
		}
		other := "acme"
		if tenant == "acme" {
			other = "globex"
		}
		if _, err := readmodels.GetOrder(ctx, db, other, o.ID()); !errors.Is(err, projections.ErrNotFound) {
			t.Fatalf("order %s of %s read as %s: %v", o.ID(), tenant, other, err)
		}
		checked++
	}
	for stream, p := range fold(t, store, reg, "payment", func(string) *payment.Payment { return &payment.Payment{} }) {
		got, err := readmodels.GetPayment(ctx, db, tenantOf(stream), p.ID())
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != p.Status().String() || got.Authorized != p.Authorized().MinorUnits() || got.Captured != p.Captured().MinorUnits() ||
			got.Released != p.Released().MinorUnits() || got.Refunded != p.Refunded().MinorUnits() || got.Disputed != p.Disputed().MinorUnits() ||
			got.ChargedBack != p.ChargedBack().MinorUnits() {
			t.Errorf("payment %s: %+v vs status %s captured %s refunded %s", p.ID(), got, p.Status(), p.Captured(), p.Refunded())
		}
		checked++
	}
	for stream, p := range fold(t, store, reg, "plan", func(string) *financing.Plan { return &financing.Plan{} }) {
		got, err := readmodels.GetPlan(ctx, db, tenantOf(stream), p.ID())
		if err != nil {
			t.Fatal(err)
		}
		var outstanding int64
		for _, in := range p.Installments() {
			outstanding += in.Unpaid().MinorUnits()
		}
		if got.Status != p.Status().String() || got.PrincipalOutstanding+got.InterestOutstanding+got.FeesOutstanding != outstanding ||
			got.Collected != p.Collected().MinorUnits() || len(got.Schedule) != len(p.Installments()) {
			t.Errorf("plan %s: %+v vs status %s owed %d collected %s", p.ID(), got.PlanRow, p.Status(), outstanding, p.Collected())
		}
		checked++
	}
	for stream, it := range fold(t, store, reg, "inventory", func(stream string) *inventory.Item {
		sku, loc, _ := strings.Cut(strings.TrimPrefix(stream, "inventory-"), "@")
		return inventory.NewItem(sku, inventory.MustLocation(loc))
	}) {
		got, err := readmodels.GetStock(ctx, db, tenantOf(stream), it.SKU(), it.Location().String())
		if err != nil {
			t.Fatal(err)
		}
		if got.OnHand != it.OnHand() || got.Reserved != it.Reserved() || got.Available != it.Available() {
			t.Errorf("stock %s: %+v vs on hand %d reserved %d", stream, got, it.OnHand(), it.Reserved())
		}
		checked++
	}
	// Live drops: one row per drop, sold = units purchased.
	all, _ := store.ReadAll(ctx, 1, 0)
	sold := map[string]int64{}
	for _, e := range all {
		if e.Type == inventory.TypeDropPurchased {
			ev, _ := reg.Decode(e.Type, e.Data)
			sold[ev.(*inventory.DropPurchased).DropID] += ev.(*inventory.DropPurchased).Quantity
		}
	}
	drops := 0
	for _, tenant := range []string{"acme", "globex"} {
		rows, err := readmodels.ListDrops(ctx, db, tenant, false, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range rows {
			if d.Sold != sold[d.DropID] || d.Open != 0 || d.Remaining != 0 {
				t.Errorf("drop %s: %+v, sold %d", d.DropID, d, sold[d.DropID])
			}
			drops++
		}
	}
	if drops == 0 || drops != len(sold) {
		t.Errorf("%d drop rows for %d drops", drops, len(sold))
	}
	aging, err := readmodels.ReceivablesAging(ctx, db, "acme", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events projected; %d orders, payments, plans and stock rows agree with their aggregates; acme aging at 2026-06-01: %+v", head, checked, aging)
}
