package readmodels_test

import (
	"context"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/projections/readmodels"
	"github.com/livecore/livecore/projections/simulate"
)

// TestReceivablesAging builds a pay-in-4 plan of 100.00 USD (25.00 due at
// origination, then every 14 days), collects the first installment, and
// ages the rest at several dates.
func TestReceivablesAging(t *testing.T) {
	ctx := context.Background()
	reg := simulate.Registry()
	store := memory.New(memory.Config{})
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var p financing.Plan
	version := uint64(0)
	do := func(id string, evs []event.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		props := make([]event.Proposed, len(evs))
		for i, e := range evs {
			if props[i], err = reg.Propose(event.DeriveID(id, i), e, event.Metadata{Tenant: "acme", Actor: "test"}); err != nil {
				t.Fatal(err)
			}
			p.Apply(e)
		}
		if _, err := store.Append(ctx, financing.StreamID("pl-1"), event.Exact(version), props); err != nil {
			t.Fatal(err)
		}
		version += uint64(len(evs))
	}
	usd := money.MustCurrency("USD")
	evs, err := p.Decide(financing.Application{PlanID: "pl-1", CustomerID: "c-1", OrderID: "o-1", Amount: money.MustParse("100.00", "USD"),
		Terms: financing.Terms{Kind: financing.PayIn4}, CurrentExposure: money.Zero(usd), ExposureLimit: money.MustParse("5000", "USD")}, start)
	do("decide", evs, err)
	evs, err = p.Collect("c-1", money.MustParse("25.00", "USD"), start)
	do("collect-1", evs, err)

	head, _ := store.Head(ctx)
	db := openSQLite(t)
	catchUp(t, db, store, readmodels.All(reg), head)
	day := 24 * time.Hour
	for _, tc := range []struct {
		at   time.Time
		want readmodels.Aging
	}{
		{start.Add(day), readmodels.Aging{Current: 7500, Total: 7500}},
		{start.Add(20 * day), readmodels.Aging{Current: 5000, Days1To30: 2500, Total: 7500}},
		{start.Add(60 * day), readmodels.Aging{Days1To30: 2500, Days31To60: 5000, Total: 7500}},
		{start.Add(200 * day), readmodels.Aging{Over90: 7500, Total: 7500}},
	} {
		got, err := readmodels.ReceivablesAging(ctx, db, "acme", tc.at)
		if err != nil {
			t.Fatal(err)
		}
		tc.want.Currency, tc.want.Plans = "USD", 1
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("aging at %s: %+v, want %+v", tc.at.Format(time.DateOnly), got, tc.want)
		}
	}
	if got, _ := readmodels.ReceivablesAging(ctx, db, "globex", start); len(got) != 0 {
		t.Errorf("another tenant's aging: %+v", got)
	}

	// The plan still collects: it is open (a region taking its home over
	// re-drives its schedule), until it is paid off.
	open, err := readmodels.OpenPlans(ctx, db, nil)
	if err != nil || len(open) != 1 || open[0] != (readmodels.OpenPlan{PlanID: "pl-1", OrderID: "o-1", Tenant: "acme"}) {
		t.Fatalf("open plans: %+v, %v", open, err)
	}
	if open, _ := readmodels.OpenPlans(ctx, db, func(id string) bool { return id != "pl-1" }); len(open) != 0 {
		t.Fatalf("open plans, filtered out: %+v", open)
	}
	evs, err = p.PayOff("payoff-1", p.PayoffQuote(start.Add(day)), start.Add(day))
	do("payoff", evs, err)
	head, _ = store.Head(ctx)
	catchUp(t, db, store, readmodels.All(reg), head)
	if open, err := readmodels.OpenPlans(ctx, db, nil); err != nil || len(open) != 0 {
		t.Fatalf("open plans after the payoff: %+v, %v", open, err)
	}
}
