package app_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
)

var (
	t0  = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	ams = inventory.MustLocation("ams-1")
)

// cmpState compares aggregates field by field, unexported fields included.
var cmpState = []cmp.Option{
	cmp.Comparer(func(a, b money.Money) bool { return a.Equal(b) }),
	cmp.Comparer(func(a, b money.Currency) bool { return a == b }),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.Exporter(func(reflect.Type) bool { return true }),
	cmpopts.EquateEmpty(),
	cmpopts.EquateErrors(),
}

func registry() *event.Registry {
	r := event.NewRegistry()
	order.Register(r)
	inventory.Register(r)
	fulfillment.Register(r)
	return r
}

func newService(t testing.TB, store app.Store, cfg app.Config) *app.Service {
	t.Helper()
	cfg.Store = store
	if cfg.Registry == nil {
		cfg.Registry = registry()
	}
	s, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newMemory(t testing.TB) *memory.Store {
	t.Helper()
	st := memory.New(memory.Config{Now: func() time.Time { return t0 }})
	t.Cleanup(func() { st.Close() })
	return st
}

func newItem() *inventory.Item { return inventory.NewItem("SKU-1", ams) }

var itemStream = inventory.StreamID("SKU-1", ams)

func cmd(id string) app.Command {
	return app.Command{ID: id, Metadata: event.Metadata{Tenant: "t1", CorrelationID: "corr-" + id, Actor: "test"}}
}

func receive(t testing.TB, s *app.Service, id string, qty int64) {
	t.Helper()
	_, err := app.Execute(context.Background(), s, itemStream, newItem, cmd(id), func(it *inventory.Item) ([]event.Event, error) {
		return it.Receive(qty, "po-"+id, t0)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func readStream(t testing.TB, st app.Store, stream string) []event.Envelope {
	t.Helper()
	envs, err := st.ReadStream(context.Background(), stream, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

func placeOrder(id string) func(o *order.Order) ([]event.Event, error) {
	return func(o *order.Order) ([]event.Event, error) {
		return o.Place(order.PlaceOrder{
			OrderID: id, CustomerID: "c1", Region: "eu", Currency: money.USD,
			Lines: []order.LineItem{
				{SKU: "A", Quantity: 2, UnitPrice: money.MustParse("3.00", "USD")},
				{SKU: "B", Quantity: 1, UnitPrice: money.MustParse("4.00", "USD")},
			},
		}, t0)
	}
}

func newOrder() *order.Order { return &order.Order{} }

func TestExecuteAppendsWithDerivedIDsAndMetadata(t *testing.T) {
	st := newMemory(t)
	s := newService(t, st, app.Config{})
	ctx := context.Background()
	res, err := app.Execute(ctx, s, order.StreamID("o1"), newOrder, cmd("place-o1"), placeOrder("o1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstVersion != 1 || res.LastVersion != 1 || len(res.Events) != 1 || res.Replayed {
		t.Fatalf("result %+v", res)
	}
	envs := readStream(t, st, order.StreamID("o1"))
	if len(envs) != 1 || envs[0].ID != event.DeriveID("place-o1", 0) || envs[0].Type != order.TypeOrderPlaced || envs[0].Metadata != cmd("place-o1").Metadata {
		t.Fatalf("stored %+v", envs)
	}
	res, err = app.Execute(ctx, s, order.StreamID("o1"), newOrder, cmd("cancel-o1"), func(o *order.Order) ([]event.Event, error) {
		return o.CancelLines([]order.LineQuantity{{Line: 1, Quantity: 2}, {Line: 2, Quantity: 1}}, "oos", t0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstVersion != 2 || res.LastVersion != 3 || len(res.Events) != 2 {
		t.Fatalf("two-event result %+v", res)
	}
	envs = readStream(t, st, order.StreamID("o1"))
	for i, e := range envs[1:] {
		if e.ID != event.DeriveID("cancel-o1", i) {
			t.Errorf("event %d ID %s", i, e.ID)
		}
	}
	var status order.Status
	if err := app.Query(ctx, s, order.StreamID("o1"), newOrder, func(o *order.Order, v uint64) { status = o.Status() }); err != nil || status != order.StatusCancelled {
		t.Fatalf("query: %v %s", err, status)
	}
}

func TestRetriedCommandAppendsNothingAndReturnsTheSameResult(t *testing.T) {
	st := newMemory(t)
	s := newService(t, st, app.Config{})
	ctx := context.Background()
	stream := order.StreamID("o1")
	first, err := app.Execute(ctx, s, stream, newOrder, cmd("place-o1"), placeOrder("o1"))
	if err != nil {
		t.Fatal(err)
	}
	two, err := app.Execute(ctx, s, stream, newOrder, cmd("cancel-o1"), func(o *order.Order) ([]event.Event, error) {
		return o.CancelLines([]order.LineQuantity{{Line: 1, Quantity: 2}, {Line: 2, Quantity: 1}}, "oos", t0)
	})
	if err != nil {
		t.Fatal(err)
	}
	decided := 0
	again := func(o *order.Order) ([]event.Event, error) {
		decided++
		return placeOrder("o1")(o) // would now fail: ErrAlreadyPlaced
	}
	cold := newService(t, st, app.Config{}) // folds from scratch: the replay is found while folding
	for _, svc := range []*app.Service{s, cold} {
		for _, c := range []struct {
			id   string
			want app.Result
		}{{"place-o1", first}, {"cancel-o1", two}} {
			got, err := app.Execute(ctx, svc, stream, newOrder, cmd(c.id), again)
			if err != nil {
				t.Fatalf("retry %s: %v", c.id, err)
			}
			if !got.Replayed {
				t.Errorf("retry %s not marked replayed", c.id)
			}
			got.Replayed = false
			if diff := cmp.Diff(c.want, got, cmpState...); diff != "" {
				t.Errorf("retry %s result (-first +retry):\n%s", c.id, diff)
			}
		}
	}
	if decided != 0 {
		t.Errorf("a retried command was decided again %d times", decided)
	}
	if n := len(readStream(t, st, stream)); n != 3 {
		t.Errorf("stream has %d events after retries, want 3", n)
	}
	t.Logf("2 commands retried on a warm and a cold service: 0 decided again, 0 appended")
}

func TestCommandWithoutEventsIsDecidedAgain(t *testing.T) {
	st := newMemory(t)
	s := newService(t, st, app.Config{})
	ctx := context.Background()
	receive(t, s, "r1", 10)
	reserve := func(it *inventory.Item) ([]event.Event, error) { return it.Reserve("o1", 3, t0.Add(time.Hour), t0) }
	if _, err := app.Execute(ctx, s, itemStream, newItem, cmd("res-1"), reserve); err != nil {
		t.Fatal(err)
	}
	// A second reservation of the same quantity is a no-op under a new ID.
	res, err := app.Execute(ctx, s, itemStream, newItem, cmd("res-2"), reserve)
	if err != nil || len(res.Events) != 0 || res.Replayed || res.FirstVersion != 0 {
		t.Fatalf("no-op: %+v %v", res, err)
	}
	if n := len(readStream(t, st, itemStream)); n != 2 {
		t.Fatalf("%d events", n)
	}
}

// conflicting returns a decide that appends a foreign StockReceived behind
// the service's back before deciding, times times: another writer winning
// the race.
func conflicting(t testing.TB, st app.Store, reg *event.Registry, times int, calls *int, decide func(*inventory.Item) ([]event.Event, error)) func(*inventory.Item) ([]event.Event, error) {
	return func(it *inventory.Item) ([]event.Event, error) {
		*calls++
		if *calls <= times {
			p, err := reg.Propose(fmt.Sprint("foreign-", *calls), &inventory.StockReceived{SKU: "SKU-1", Location: ams, Quantity: 5, Ref: "other", At: t0}, event.Metadata{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Append(context.Background(), itemStream, event.Any, []event.Proposed{p}); err != nil {
				t.Fatal(err)
			}
		}
		return decide(it)
	}
}

func TestConflictIsReloadedAndDecidedAgain(t *testing.T) {
	st := newMemory(t)
	reg := registry()
	s := newService(t, st, app.Config{Registry: reg})
	ctx := context.Background()
	receive(t, s, "r1", 10)
	calls := 0
	var seen []int64
	res, err := app.Execute(ctx, s, itemStream, newItem, cmd("res-1"), conflicting(t, st, reg, 1, &calls, func(it *inventory.Item) ([]event.Event, error) {
		seen = append(seen, it.OnHand())
		return it.Reserve("o1", 3, t0.Add(time.Hour), t0)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || !reflect.DeepEqual(seen, []int64{10, 15}) {
		t.Errorf("decided %d times seeing on hand %v, want 2 times seeing [10 15]", calls, seen)
	}
	if res.FirstVersion != 3 || s.Stats().Conflicts != 1 {
		t.Errorf("result %+v stats %+v", res, s.Stats())
	}
	checkCacheMatchesFreshFold(t, s, itemStream, newItem)
	t.Logf("1 conflict: reloaded and decided again; appended at version %d", res.FirstVersion)
}

func TestConflictsRetriedAtMostMaxRetries(t *testing.T) {
	st := newMemory(t)
	reg := registry()
	s := newService(t, st, app.Config{Registry: reg, MaxRetries: 2})
	receive(t, s, "r1", 10)
	calls := 0
	_, err := app.Execute(context.Background(), s, itemStream, newItem, cmd("res-1"), conflicting(t, st, reg, 100, &calls, func(it *inventory.Item) ([]event.Event, error) {
		return it.Reserve("o1", 1, t0.Add(time.Hour), t0)
	}))
	var ce *event.ConcurrencyError
	if !errors.Is(err, event.ErrWrongExpectedVersion) || !errors.As(err, &ce) {
		t.Fatalf("err = %v", err)
	}
	if calls != 3 {
		t.Errorf("decided %d times, want 1 + 2 retries", calls)
	}
	for _, e := range readStream(t, st, itemStream) {
		if e.Type == inventory.TypeStockReserved {
			t.Errorf("reservation appended despite the conflict error")
		}
	}
	t.Logf("conflict on every try: %d decisions, then %v", calls, err)
}

func TestBusinessErrorsAreNotRetried(t *testing.T) {
	st := newMemory(t)
	s := newService(t, st, app.Config{})
	receive(t, s, "r1", 10)
	calls := 0
	_, err := app.Execute(context.Background(), s, itemStream, newItem, cmd("res-1"), func(it *inventory.Item) ([]event.Event, error) {
		calls++
		return it.Reserve("o1", 11, t0.Add(time.Hour), t0)
	})
	var ise *inventory.InsufficientStockError
	if !errors.As(err, &ise) || ise.Requested != 11 || ise.Available != 10 {
		t.Fatalf("err = %v", err)
	}
	if calls != 1 || len(readStream(t, st, itemStream)) != 1 {
		t.Errorf("decided %d times, stream %d events", calls, len(readStream(t, st, itemStream)))
	}
}

func TestInvalidCommandsAndWiringBugs(t *testing.T) {
	s := newService(t, newMemory(t), app.Config{})
	ctx := context.Background()
	if _, err := app.Execute(ctx, s, itemStream, newItem, app.Command{}, func(*inventory.Item) ([]event.Event, error) { return nil, nil }); !errors.Is(err, app.ErrInvalidCommand) {
		t.Errorf("no command ID: %v", err)
	}
	if _, err := app.Execute(ctx, s, "bad stream", newItem, cmd("x"), func(*inventory.Item) ([]event.Event, error) { return nil, nil }); !errors.Is(err, app.ErrInvalidCommand) {
		t.Errorf("bad stream: %v", err)
	}
	receive(t, s, "r1", 1)
	if _, err := app.Execute(ctx, s, itemStream, newOrder, cmd("y"), func(*order.Order) ([]event.Event, error) { return nil, nil }); !errors.Is(err, app.ErrAggregateMismatch) {
		t.Errorf("mismatch: %v", err)
	}
	if _, err := app.Execute(ctx, s, itemStream, newItem, cmd("z"), func(*inventory.Item) ([]event.Event, error) { panic("boom") }); !errors.Is(err, app.ErrDecidePanicked) {
		t.Errorf("panic: %v", err)
	}
	if _, err := app.Execute(ctx, s, itemStream, newItem, cmd("u"), func(*inventory.Item) ([]event.Event, error) {
		return []event.Event{unregistered{}}, nil
	}); !errors.Is(err, event.ErrUnknownEventType) {
		t.Errorf("unregistered event: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := app.Execute(cancelled, s, itemStream, newItem, cmd("c"), func(*inventory.Item) ([]event.Event, error) { return nil, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	receive(t, s, "r2", 1) // the service still works
	if _, err := app.New(app.Config{}); err == nil {
		t.Error("New without a store")
	}
}

type unregistered struct{}

func (unregistered) EventType() string { return "test.unregistered.v1" }

func checkCacheMatchesFreshFold[A app.Aggregate](t testing.TB, s *app.Service, stream string, newAgg func() A) {
	t.Helper()
	ctx := context.Background()
	fresh, fv, err := app.Load(ctx, s, stream, newAgg)
	if err != nil {
		t.Fatal(err)
	}
	err = app.Query(ctx, s, stream, newAgg, func(cached A, cv uint64) {
		if cv != fv {
			t.Errorf("%s: cached version %d, fresh %d", stream, cv, fv)
		}
		if diff := cmp.Diff(fresh, cached, cmpState...); diff != "" {
			t.Errorf("%s: cached state differs from a fresh fold (-fresh +cached):\n%s", stream, diff)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCacheMatchesFreshFold drives random inventory commands over several
// streams through a service with a cache smaller than the streams (so
// entries are evicted and refolded) while a second service writes the same
// streams (so cached entries must catch up), and compares every cached
// aggregate with a fresh fold.
func TestCacheMatchesFreshFold(t *testing.T) {
	const streams, commands, seed = 6, 1500, 20260302
	st := newMemory(t)
	s := newService(t, st, app.Config{CacheSize: 3})
	other := newService(t, st, app.Config{})
	r := rand.New(rand.NewPCG(seed, 5))
	ctx := context.Background()
	locs := make([]inventory.Location, streams)
	for i := range locs {
		locs[i] = inventory.MustLocation(fmt.Sprint("loc-", i))
	}
	var ok, rejected int
	for i := range commands {
		loc := locs[r.IntN(streams)]
		svc := s
		if r.IntN(4) == 0 {
			svc = other
		}
		now := t0.Add(time.Duration(i) * time.Second)
		order := fmt.Sprint("o", r.IntN(40))
		var decide func(it *inventory.Item) ([]event.Event, error)
		switch r.IntN(6) {
		case 0:
			decide = func(it *inventory.Item) ([]event.Event, error) { return it.Receive(1+r.Int64N(10), "po", now) }
		case 1, 2:
			decide = func(it *inventory.Item) ([]event.Event, error) {
				return it.Reserve(order, 1+r.Int64N(5), now.Add(time.Duration(r.IntN(60))*time.Second+time.Second), now)
			}
		case 3:
			decide = func(it *inventory.Item) ([]event.Event, error) { return it.Commit(order, "s", 1, now) }
		case 4:
			decide = func(it *inventory.Item) ([]event.Event, error) { return it.Release(order, "x", now) }
		default:
			decide = func(it *inventory.Item) ([]event.Event, error) { return it.ExpireReservations(now) }
		}
		newAgg := func() *inventory.Item { return inventory.NewItem("SKU-1", loc) }
		if _, err := app.Execute(ctx, svc, inventory.StreamID("SKU-1", loc), newAgg, cmd(fmt.Sprint("cmd-", i)), decide); err != nil {
			rejected++
		} else {
			ok++
		}
	}
	for _, loc := range locs {
		checkCacheMatchesFreshFold(t, s, inventory.StreamID("SKU-1", loc), func() *inventory.Item { return inventory.NewItem("SKU-1", loc) })
		checkCacheMatchesFreshFold(t, other, inventory.StreamID("SKU-1", loc), func() *inventory.Item { return inventory.NewItem("SKU-1", loc) })
	}
	t.Logf("%d commands on %d streams (cache of 3, a second writer; seed %d): %d ok, %d rejected; stats %+v; cached == fresh fold on every stream",
		commands, streams, seed, ok, rejected, s.Stats())
}

// TestBatchedBuyersOnTheMemoryStore: concurrent buyers on one hot stream are
// decided in batches; exactly the allocation is sold and each rejected buyer
// gets its own error.
func TestBatchedBuyersOnTheMemoryStore(t *testing.T) {
	const buyers, units, limit = 400, 100, 2
	st := newMemory(t)
	s := newService(t, st, app.Config{})
	ctx := context.Background()
	receive(t, s, "r1", units+10)
	if _, err := app.Execute(ctx, s, itemStream, newItem, cmd("open"), func(it *inventory.Item) ([]event.Event, error) {
		return it.OpenDrop("d1", units, limit, t0)
	}); err != nil {
		t.Fatal(err)
	}
	outcomes := runBuyers(t, s, buyers, 150)
	if outcomes.units != units || outcomes.other != 0 || outcomes.limit == 0 || outcomes.soldOut == 0 {
		t.Fatalf("outcomes %+v", outcomes)
	}
	for c, n := range outcomes.perCustomer {
		if n > limit {
			t.Errorf("customer %s bought %d > %d", c, n, limit)
		}
	}
	checkCacheMatchesFreshFold(t, s, itemStream, newItem)
	t.Logf("%d buyers for %d units: %d purchases (%d units), %d sold out, %d over the limit; stats %+v",
		buyers, units, outcomes.ok, outcomes.units, outcomes.soldOut, outcomes.limit, s.Stats())
}

type buyOutcomes struct {
	ok, units, soldOut, limit, other int
	perCustomer                      map[string]int64
}

// runBuyers starts buyers goroutines buying 1 or 2 units of drop d1 as one
// of customers customers, and classifies what each got.
func runBuyers(t testing.TB, s *app.Service, buyers, customers int) buyOutcomes {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	out := buyOutcomes{perCustomer: map[string]int64{}}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			customer := fmt.Sprint("c", i*customers/buyers) // neighbours share a customer
			qty := int64(1 + i%2)
			orderID := fmt.Sprint("order-", i)
			<-start
			res, err := app.Execute(ctx, s, itemStream, newItem, cmd("buy-"+orderID), func(it *inventory.Item) ([]event.Event, error) {
				return it.BuyFromDrop("d1", customer, orderID, qty, t0)
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && len(res.Events) == 1:
				out.ok++
				out.units += int(qty)
				out.perCustomer[customer] += qty
			case errors.Is(err, inventory.ErrDropSoldOut), errors.Is(err, inventory.ErrInsufficientStock):
				out.soldOut++
			case errors.Is(err, inventory.ErrDropLimitReached):
				out.limit++
			default:
				out.other++
				t.Errorf("buyer %d: %+v %v", i, res, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// TestDuplicateCommandsInOneRound: the same command submitted concurrently
// many times is appended once; every submission gets its result.
func TestDuplicateCommandsInOneRound(t *testing.T) {
	st := newMemory(t)
	s := newService(t, st, app.Config{})
	receive(t, s, "r1", 10)
	const n = 50
	var wg sync.WaitGroup
	results := make([]app.Result, n)
	errs := make([]error, n)
	var decided atomic.Int32
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = app.Execute(context.Background(), s, itemStream, newItem, cmd("same"), func(it *inventory.Item) ([]event.Event, error) {
				decided.Add(1)
				return it.Reserve("o1", 4, t0.Add(time.Hour), t0)
			})
		}()
	}
	wg.Wait()
	fresh := 0
	for i := range n {
		if errs[i] != nil || results[i].FirstVersion != 2 || len(results[i].Events) != 1 {
			t.Fatalf("submission %d: %+v %v", i, results[i], errs[i])
		}
		if !results[i].Replayed {
			fresh++
		}
	}
	if fresh != 1 || decided.Load() != 1 || len(readStream(t, st, itemStream)) != 2 {
		t.Errorf("%d fresh results, %d decisions, %d events; want 1, 1, 2", fresh, decided.Load(), len(readStream(t, st, itemStream)))
	}
}

// TestBadCommandFailsAlone: a command whose event ID is already stored in
// another stream (a reused command ID) makes the combined append fail; the
// round is redone command by command and only that command fails.
func TestBadCommandFailsAlone(t *testing.T) {
	st := newMemory(t)
	s := newService(t, st, app.Config{})
	ctx := context.Background()
	receive(t, s, "r1", 10)
	if _, err := app.Execute(ctx, s, order.StreamID("o1"), newOrder, cmd("reused"), placeOrder("o1")); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i, id := range []string{"blocker", "good-1", "reused", "good-2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i > 0 {
				time.Sleep(time.Duration(i) * 20 * time.Millisecond) // queue behind the blocker, in order
			}
			_, errs[i] = app.Execute(ctx, s, itemStream, newItem, cmd(id), func(it *inventory.Item) ([]event.Event, error) {
				if i == 0 {
					<-release
				}
				return it.Reserve(fmt.Sprint("o", i), 1, t0.Add(time.Hour), t0)
			})
		}()
	}
	time.Sleep(120 * time.Millisecond)
	close(release)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || errs[3] != nil || !errors.Is(errs[2], event.ErrIdempotencyConflict) {
		t.Fatalf("errors %v", errs)
	}
	if n := len(readStream(t, st, itemStream)); n != 4 {
		t.Errorf("%d events, want receive + 3 reservations", n)
	}
	checkCacheMatchesFreshFold(t, s, itemStream, newItem)
}

// countingStore counts ReadStream calls.
type countingStore struct {
	*memory.Store
	reads atomic.Int64
}

func (c *countingStore) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]event.Envelope, error) {
	c.reads.Add(1)
	return c.Store.ReadStream(ctx, stream, from, limit)
}

// noHead hides the store's Head.
type noHead struct{ app.Store }

func creating(id string) app.Command {
	c := cmd(id)
	c.Creates = true
	return c
}

func placeOrderAt(id string, at time.Time) func(o *order.Order) ([]event.Event, error) {
	return func(o *order.Order) ([]event.Event, error) {
		return o.Place(order.PlaceOrder{OrderID: id, CustomerID: "c1", Region: "eu", Currency: money.USD,
			Lines: []order.LineItem{{SKU: "A", Quantity: 2, UnitPrice: money.MustParse("3.00", "USD")}}}, at)
	}
}

// TestCreatingCommandDoesNotReadItsStream: a creating command on a new
// stream appends without reading the stream; without a store head it reads
// as usual.
func TestCreatingCommandDoesNotReadItsStream(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: newMemory(t)}
	s := newService(t, st, app.Config{})
	res, err := app.Execute(ctx, s, order.StreamID("o1"), newOrder, creating("place-o1"), placeOrder("o1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstVersion != 1 || res.LastVersion != 1 || res.Replayed {
		t.Fatalf("result %+v", res)
	}
	if n := st.reads.Load(); n != 0 {
		t.Errorf("creating a new stream read it %d times, want 0", n)
	}
	if got := s.Stats().Blind; got != 1 {
		t.Errorf("Stats.Blind = %d, want 1", got)
	}
	checkCacheMatchesFreshFold(t, s, order.StreamID("o1"), newOrder)

	plain := newService(t, noHead{st}, app.Config{})
	before := st.reads.Load()
	if _, err := app.Execute(ctx, plain, order.StreamID("o2"), newOrder, creating("place-o2"), placeOrder("o2")); err != nil {
		t.Fatal(err)
	}
	if st.reads.Load() == before || plain.Stats().Blind != 0 {
		t.Errorf("without a store head a creating command must read its stream (reads %d -> %d, blind %d)", before, st.reads.Load(), plain.Stats().Blind)
	}
}

// TestCreatingCommandOnAnExistingStream: a second, different creating
// command on a stream that exists (cached or not) is decided on what the
// stream holds: the order refuses a second placement and nothing is
// appended.
func TestCreatingCommandOnAnExistingStream(t *testing.T) {
	ctx := context.Background()
	st := newMemory(t)
	s := newService(t, st, app.Config{})
	stream := order.StreamID("o1")
	if _, err := app.Execute(ctx, s, stream, newOrder, creating("place-o1"), placeOrder("o1")); err != nil {
		t.Fatal(err)
	}
	cold := newService(t, st, app.Config{})
	for name, svc := range map[string]*app.Service{"warm": s, "cold": cold} {
		_, err := app.Execute(ctx, svc, stream, newOrder, creating("place-o1-again-"+name), placeOrder("o1"))
		if !errors.Is(err, order.ErrAlreadyPlaced) {
			t.Errorf("%s: second placement: %v, want ErrAlreadyPlaced", name, err)
		}
		checkCacheMatchesFreshFold(t, svc, stream, newOrder)
	}
	if n := len(readStream(t, st, stream)); n != 1 {
		t.Errorf("stream has %d events, want 1", n)
	}
	// A creating command that only succeeds on the existing stream: its
	// blind decision fails, and it is decided again on the stream.
	res, err := app.Execute(ctx, newService(t, st, app.Config{}), order.StreamID("o1"), newOrder, creating("cancel-o1"), func(o *order.Order) ([]event.Event, error) {
		return o.Cancel("changed my mind", t0)
	})
	if err != nil || res.FirstVersion != 2 {
		t.Fatalf("cancel as a creating command on a cold service: %+v, %v", res, err)
	}
	fresh := newService(t, st, app.Config{})
	res, err = app.Execute(ctx, fresh, order.StreamID("o1"), newOrder, creating("cancel-o1-again"), func(o *order.Order) ([]event.Event, error) {
		return []event.Event{}, nil // a no-op on the empty aggregate too
	})
	if err != nil || len(res.Events) != 0 {
		t.Fatalf("no-op creating command: %+v, %v", res, err)
	}
	checkCacheMatchesFreshFold(t, fresh, stream, newOrder)
}

// TestRetriedCreatingCommandReplays: a creating command retried on a
// service that has not cached the stream (a restart after its append) is
// recognised by the store; the service then reads the stream and returns
// the stored events, not the retry's own decision (which here differs in
// time), and its cache holds what the store holds.
func TestRetriedCreatingCommandReplays(t *testing.T) {
	ctx := context.Background()
	st := newMemory(t)
	stream := order.StreamID("o1")
	first, err := app.Execute(ctx, newService(t, st, app.Config{}), stream, newOrder, creating("place-o1"), placeOrderAt("o1", t0))
	if err != nil {
		t.Fatal(err)
	}
	// Other appends move the head on.
	s := newService(t, st, app.Config{})
	receive(t, s, "r1", 5)
	got, err := app.Execute(ctx, s, stream, newOrder, creating("place-o1"), placeOrderAt("o1", t0.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Replayed {
		t.Errorf("retry not marked replayed: %+v", got)
	}
	got.Replayed = false
	if diff := cmp.Diff(first, got, cmpState...); diff != "" {
		t.Errorf("retry result (-first +retry):\n%s", diff)
	}
	if n := len(readStream(t, st, stream)); n != 1 {
		t.Errorf("stream has %d events after the retry, want 1", n)
	}
	checkCacheMatchesFreshFold(t, s, stream, newOrder)
	err = app.Query(ctx, s, stream, newOrder, func(o *order.Order, _ uint64) {
		if !o.PlacedAt().Equal(t0) {
			t.Errorf("cached order placed at %v, want the stored %v", o.PlacedAt(), t0)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func goroutineID() string {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	f := strings.Fields(string(buf[:n]))
	return f[1] // "goroutine N [running]:"
}

// TestIdleStreamIsServedOnTheCallersGoroutine: the caller that finds a
// stream idle runs its round itself; commands queued meanwhile are handed
// to another goroutine once the caller's own command is acked, and the
// caller returns without waiting for them.
func TestIdleStreamIsServedOnTheCallersGoroutine(t *testing.T) {
	ctx := context.Background()
	s := newService(t, newMemory(t), app.Config{})
	receive(t, s, "r0", 100)
	caller := goroutineID()
	var decidedOn string
	if _, err := app.Execute(ctx, s, itemStream, newItem, cmd("r1"), func(it *inventory.Item) ([]event.Event, error) {
		decidedOn = goroutineID()
		return it.Receive(1, "po-r1", t0)
	}); err != nil {
		t.Fatal(err)
	}
	if decidedOn != caller {
		t.Errorf("an idle stream's command was decided on goroutine %s, not its caller's %s", decidedOn, caller)
	}

	entered, release := make(chan struct{}), make(chan struct{})
	firstDone := make(chan string, 1)
	go func() {
		_, err := app.Execute(ctx, s, itemStream, newItem, cmd("slow"), func(it *inventory.Item) ([]event.Event, error) {
			close(entered)
			<-release
			return it.Receive(1, "po-slow", t0)
		})
		firstDone <- fmt.Sprint(err)
	}()
	<-entered
	var wg sync.WaitGroup
	others := make(chan string, 2)
	for _, id := range []string{"q1", "q2"} {
		wg.Go(func() {
			_, err := app.Execute(ctx, s, itemStream, newItem, cmd(id), func(it *inventory.Item) ([]event.Event, error) {
				others <- goroutineID()
				return it.Receive(1, "po-"+id, t0)
			})
			if err != nil {
				t.Errorf("%s: %v", id, err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond) // q1 and q2 queue behind the slow round
	close(release)
	if err := <-firstDone; err != "<nil>" {
		t.Fatalf("slow: %s", err)
	}
	wg.Wait()
	close(others)
	for g := range others {
		if g == caller {
			t.Errorf("a queued command ran on the test's goroutine")
		}
	}
	checkCacheMatchesFreshFold(t, s, itemStream, newItem)
}

// panickingStore panics in Append (a bug in the store).
type panickingStore struct{ app.Store }

func (panickingStore) Append(context.Context, string, event.ExpectedVersion, []event.Proposed) (event.AppendResult, error) {
	panic("store bug")
}

// TestPanicInACallersRoundCrashes: a round that panics on the caller's
// goroutine ends the process, as it did on a goroutine of its own; a
// recover of the caller (an HTTP server's) does not swallow it.
func TestPanicInACallersRoundCrashes(t *testing.T) {
	if os.Getenv("APP_PANIC_CHILD") == "1" {
		s := newService(t, panickingStore{newMemory(t)}, app.Config{})
		func() {
			defer func() { _ = recover() }() // what an HTTP server does
			_, _ = app.Execute(context.Background(), s, itemStream, newItem, cmd("r1"), func(it *inventory.Item) ([]event.Event, error) {
				return it.Receive(1, "po", t0)
			})
		}()
		time.Sleep(5 * time.Second)
		return // not reached: the process has crashed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPanicInACallersRoundCrashes$", "-test.timeout=20s")
	c.Env = append(os.Environ(), "APP_PANIC_CHILD=1")
	out, err := c.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "round of "+itemStream+" panicked: store bug") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
