package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/inventory"
)

func openPebble(t testing.TB, dir string) *pebble.Store {
	t.Helper()
	st, err := pebble.Open(pebble.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// setUpDrop stocks SKU-1 at ams-1 with extra units beyond the allocation and
// opens drop d1.
func setUpDrop(t testing.TB, s *app.Service, allocation, extra, limit int64) {
	t.Helper()
	receive(t, s, "stock", allocation+extra)
	if _, err := app.Execute(context.Background(), s, itemStream, newItem, cmd("open-d1"), func(it *inventory.Item) ([]event.Event, error) {
		return it.OpenDrop("d1", allocation, limit, t0)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestLiveDropConcurrency: 5,000 buyers in goroutines compete for 1,000 units
// of one SKU, at most 2 per customer, through the application service on the
// durable Pebble store. Exactly 1,000 units sell, none oversold, no customer
// over the limit, and every buyer gets a success or a sold-out / limit
// error. The outcome is checked again on a fresh fold after closing and
// reopening the store.
func TestLiveDropConcurrency(t *testing.T) {
	const (
		buyers    = 5000
		customers = 3000 // 2,000 customers send two neighbouring buyers (1 + 2 units): limits get hit
		units     = 1000
		limit     = 2
	)
	dir := t.TempDir()
	st := openPebble(t, dir)
	s := newService(t, st, app.Config{})
	setUpDrop(t, s, units, 500, limit)
	before := s.Stats()
	pebbleBefore := st.Stats()

	start := time.Now()
	out := runBuyers(t, s, buyers, customers)
	elapsed := time.Since(start)
	after, pebbleAfter := s.Stats(), st.Stats()
	rate := float64(buyers) / elapsed.Seconds()

	if out.units != units {
		t.Errorf("sold %d units, want exactly %d", out.units, units)
	}
	if out.limit == 0 || out.soldOut == 0 {
		t.Errorf("the run hit no limit or sold out: %+v", out)
	}
	if out.ok+out.soldOut+out.limit != buyers || out.other != 0 {
		t.Errorf("outcomes %d ok + %d sold out + %d limit + %d other != %d buyers", out.ok, out.soldOut, out.limit, out.other, buyers)
	}
	for c, n := range out.perCustomer {
		if n > limit {
			t.Errorf("customer %s got %d > limit %d", c, n, limit)
		}
	}
	checkCacheMatchesFreshFold(t, s, itemStream, newItem)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Durable: reopen and fold from disk.
	st = openPebble(t, dir)
	defer st.Close()
	fresh := newService(t, st, app.Config{})
	item, version, err := app.Load(context.Background(), fresh, itemStream, newItem)
	if err != nil {
		t.Fatal(err)
	}
	envs := readStream(t, st, itemStream)
	var stored int64
	perCustomer := map[string]int64{}
	reg := registry()
	for _, env := range envs {
		e, err := reg.DecodeEnvelope(env)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := e.(*inventory.DropPurchased); ok {
			stored += p.Quantity
			perCustomer[p.CustomerID] += p.Quantity
		}
	}
	oversold := max(0, stored-units)
	switch {
	case stored != units || oversold != 0:
		t.Errorf("stored purchases of %d units, want %d", stored, units)
	case item.Drop().Remaining != 0 || item.Available() != 500 || item.Reserved() != units || item.OnHand() != units+500:
		t.Errorf("reopened item: drop %+v on hand %d reserved %d available %d", item.Drop(), item.OnHand(), item.Reserved(), item.Available())
	case len(perCustomer) != len(out.perCustomer):
		t.Errorf("%d customers stored, %d acknowledged", len(perCustomer), len(out.perCustomer))
	}
	for c, n := range perCustomer {
		if n > limit || n != out.perCustomer[c] {
			t.Errorf("customer %s: stored %d, acknowledged %d, limit %d", c, n, out.perCustomer[c], limit)
		}
	}
	rounds, appends := after.Rounds-before.Rounds, after.Appends-before.Appends
	if appends*2 > int64(out.ok) {
		t.Errorf("not batched: %d appends for %d purchases", appends, out.ok)
	}
	t.Logf("live drop on Pebble: %d buyers (%d customers, limit %d) for %d units in %v: %.0f decisions/s",
		buyers, customers, limit, units, elapsed.Round(time.Millisecond), rate)
	t.Logf("  outcomes: %d purchases (%d units sold, %d oversold), %d sold out, %d over the limit, %d other",
		out.ok, out.units, oversold, out.soldOut, out.limit, out.other)
	t.Logf("  %d rounds, %d appends (%.0f purchases per append), %d Pebble fsyncs; after reopen: %d events, version %d, %d units purchased",
		rounds, appends, float64(out.ok)/float64(max(appends, 1)), pebbleAfter.Commits-pebbleBefore.Commits, len(envs), version, stored)
}

// BenchmarkLiveDrop measures buy decisions per second through the
// application service on Pebble, with 1,024 concurrent buyers on one hot
// stream. "all-sell" gives every buyer a unit (every decision appends);
// "oversubscribed" has five buyers per unit (most decisions are sold out).
func BenchmarkLiveDrop(b *testing.B) {
	for _, bc := range []struct {
		name    string
		perUnit int
	}{{"all-sell", 1}, {"oversubscribed", 5}} {
		b.Run(bc.name, func(b *testing.B) {
			st := openPebble(b, b.TempDir())
			defer st.Close()
			s := newService(b, st, app.Config{})
			setUpDrop(b, s, int64(b.N/bc.perUnit+1), 0, 1)
			var next, failed atomic.Int64
			ctx := context.Background()
			b.SetParallelism(512) // 512 x GOMAXPROCS buyers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					id := fmt.Sprint("order-", i)
					customer := fmt.Sprint("c", i)
					_, err := app.Execute(ctx, s, itemStream, newItem, cmd("buy-"+id), func(it *inventory.Item) ([]event.Event, error) {
						return it.BuyFromDrop("d1", customer, id, 1, t0)
					})
					if err != nil && !errors.Is(err, inventory.ErrDropSoldOut) {
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d unexpected errors", failed.Load())
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
			if appends := s.Stats().Appends; appends > 0 {
				b.ReportMetric(float64(b.N)/float64(appends), "decisions/append")
			}
		})
	}
}

// TestColdFoldOfAHotStream measures folding a drop stream of 20,000 events
// from Pebble with an empty cache: the cost a snapshot would save after a
// restart or an eviction.
func TestColdFoldOfAHotStream(t *testing.T) {
	const units = 20_000
	if testing.Short() {
		t.Skip("short")
	}
	st := openPebble(t, t.TempDir())
	defer st.Close()
	s := newService(t, st, app.Config{MaxBatch: 1024})
	setUpDrop(t, s, units, 0, 1)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2048)
	for i := range units {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprint("order-", i)
			if _, err := app.Execute(context.Background(), s, itemStream, newItem, cmd(id), func(it *inventory.Item) ([]event.Event, error) {
				return it.BuyFromDrop("d1", fmt.Sprint("c", i), id, 1, t0)
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	cold := newService(t, st, app.Config{})
	start := time.Now()
	item, v, err := app.Load(context.Background(), cold, itemStream, newItem)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if item.Drop().Remaining != 0 {
		t.Fatalf("remaining %d", item.Drop().Remaining)
	}
	t.Logf("cold fold of %d events from Pebble: %v (%.0f events/s); no snapshot needed while hot streams stay cached", v, took.Round(time.Millisecond), float64(v)/took.Seconds())
}
