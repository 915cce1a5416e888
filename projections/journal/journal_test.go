package journal_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/projections"
	"github.com/livecore/livecore/projections/journal"
	"github.com/livecore/livecore/projections/simulate"
)

type totals map[journal.Account]map[string]int64 // net (debit - credit) by account and currency

func book(t *testing.T, all []event.Envelope, reg *event.Registry) (totals, int) {
	t.Helper()
	var b journal.Book
	net := totals{}
	entries := 0
	for i := range all {
		ev, err := reg.Decode(all[i].Type, all[i].Data)
		if err != nil {
			t.Fatal(err)
		}
		e, ok := b.Post(&all[i], ev)
		if !ok {
			continue
		}
		entries++
		if !e.Balanced() {
			t.Fatalf("position %d (%s): unbalanced entry %+v", e.Position, e.EventType, e)
		}
		for _, l := range e.Lines {
			if (l.Debit > 0) == (l.Credit > 0) || l.Debit < 0 || l.Credit < 0 {
				t.Fatalf("position %d: malformed line %+v", e.Position, l)
			}
			if net[l.Account] == nil {
				net[l.Account] = map[string]int64{}
			}
			net[l.Account][e.Currency] += l.Debit - l.Credit
		}
	}
	return net, entries
}

// TestTrialBalanceNetsToZeroOverRandomHistories: random order, payment,
// BNPL, refund, return and chargeback histories, every event decided by
// the real aggregates. Every entry balances, the trial balance nets to zero
// per currency, and the accounts agree with the aggregates: card clearing
// is what the provider owes on card payments, BNPL principal and fees are
// what the plans still owe, interest income what they paid in interest,
// and Suspense stays empty.
func TestTrialBalanceNetsToZeroOverRandomHistories(t *testing.T) {
	reg := simulate.Registry()
	histories, events, entries := 0, 0, 0
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		sim := simulate.New(simulate.Config{Seed: seed, Orders: 20 + rng.IntN(60), InFlight: 1 + rng.IntN(20), BNPLPercent: 1 + rng.IntN(90)})
		store := memory.New(memory.Config{Now: sim.Now})
		if _, err := sim.Run(context.Background(), store); err != nil {
			t.Fatal(err)
		}
		all, _ := store.ReadAll(context.Background(), 1, 0)
		net, n := book(t, all, reg)
		histories, events, entries = histories+1, events+len(all), entries+n

		sum := map[string]int64{}
		for _, byCur := range net {
			for cur, v := range byCur {
				sum[cur] += v
			}
		}
		for cur, v := range sum {
			if v != 0 {
				t.Errorf("seed %d: trial balance in %s nets to %d, not 0", seed, cur, v)
			}
		}
		for cur, v := range net[journal.Suspense] {
			if v != 0 {
				t.Errorf("seed %d: suspense holds %d %s", seed, v, cur)
			}
		}
		// Cross-check accounts against the aggregates.
		want := totals{}
		add := func(a journal.Account, cur string, v int64) {
			if want[a] == nil {
				want[a] = map[string]int64{}
			}
			want[a][cur] += v
		}
		payments, plans := map[string]*payment.Payment{}, map[string]*financing.Plan{}
		for _, e := range all {
			ev, _ := reg.Decode(e.Type, e.Data)
			switch event.Category(e.StreamID) {
			case "payment":
				if payments[e.StreamID] == nil {
					payments[e.StreamID] = &payment.Payment{}
				}
				payments[e.StreamID].Apply(ev)
			case "plan":
				if plans[e.StreamID] == nil {
					plans[e.StreamID] = &financing.Plan{}
				}
				plans[e.StreamID].Apply(ev)
			}
		}
		for _, p := range payments {
			if p.Method() != payment.MethodCard || p.Status() == payment.StatusDeclined {
				continue
			}
			cur := p.Authorized().Currency().Code()
			add(journal.CardClearing, cur, p.Captured().MinorUnits()-p.Refunded().MinorUnits()-p.Disputed().MinorUnits()-p.ChargedBack().MinorUnits())
			add(journal.DisputedFunds, cur, p.Disputed().MinorUnits())
		}
		for _, p := range plans {
			cur := p.Financed().Currency().Code()
			for _, in := range p.Installments() {
				add(journal.BNPLPrincipal, cur, in.UnpaidPrincipal().MinorUnits())
				add(journal.BNPLFees, cur, in.UnpaidFee().MinorUnits())
				add(journal.InterestIncome, cur, -in.PaidInterest.MinorUnits())
			}
		}
		for _, a := range []journal.Account{journal.CardClearing, journal.DisputedFunds, journal.BNPLPrincipal, journal.BNPLFees, journal.InterestIncome} {
			for cur := range merge(want[a], net[a]) {
				if want[a][cur] != net[a][cur] {
					t.Errorf("seed %d: %s in %s: journal %d, aggregates %d", seed, a, cur, net[a][cur], want[a][cur])
				}
			}
		}
	}
	t.Logf("%d random histories, %d events, %d journal entries: every entry balanced, every trial balance nets to zero per currency, suspense empty, clearing/receivable/interest accounts equal the aggregates", histories, events, entries)
}

func merge(a, b map[string]int64) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// TestJournalProjectionMatchesBook projects a history into SQLite and
// checks the SQL trial balance (now and as of a past position and time)
// against the in-memory Book.
func TestJournalProjectionMatchesBook(t *testing.T) {
	reg := simulate.Registry()
	sim := simulate.New(simulate.Config{Seed: 77, Orders: 200})
	store := memory.New(memory.Config{Now: sim.Now})
	if _, err := sim.Run(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	all, _ := store.ReadAll(context.Background(), 1, 0)
	head := uint64(len(all))
	db, err := projections.OpenSQLite(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, _ := projections.NewRunner(projections.Config{DB: db, Source: store, Projections: []projections.Projection{journal.Projection{Registry: reg}}, BatchSize: 333})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := r.WaitFor(wctx, "journal", head); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for _, cut := range []uint64{head / 3, head} {
		net, _ := book(t, all[:cut], reg)
		at := journal.AsOf{Position: cut}
		if cut != head {
			// Same cut by time: the events up to cut share no recorded-at
			// with the next one (the simulated clock ticks per append).
			at = journal.AsOf{Time: all[cut-1].RecordedAt}
		}
		tb, err := journal.GetTrialBalance(context.Background(), db, "", at)
		if err != nil {
			t.Fatal(err)
		}
		if !tb.Nets() {
			t.Fatalf("SQL trial balance as of %+v does not net: %+v", at, tb.Totals)
		}
		for a, byCur := range net {
			for cur, v := range byCur {
				if got := tb.Get(a, cur).Net(); got != v {
					t.Errorf("as of %+v: %s %s: SQL %d, book %d", at, a, cur, got, v)
				}
			}
		}
		t.Logf("as of %+v: %d account balances, totals %v: nets to zero", at, len(tb.Balances), tb.Totals)
	}
	if s := journal.FormatAmount(-7, "USD"); s != "-0.07" {
		t.Errorf("FormatAmount(-7, USD) = %s", s)
	}
}
