package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/adapters/temporal/embedded"
	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/workflows/checkout"
	"github.com/livecore/livecore/workflows/dispatcher"
	"github.com/livecore/livecore/workflows/internal/steps"
)

// BenchConfig configures BenchSagas. Zero fields get defaults.
type BenchConfig struct {
	// Dir holds the Temporal database and the event store. Default: a
	// temporary directory, removed afterwards.
	Dir string
	// Orders is the number of checkout sagas per variant. Default 1000.
	Orders int
	// Concurrency is how many orders are in flight at once (each client
	// places an order and waits for its confirmation). Default 64.
	Concurrency int
	// Trivial is the number of one-activity workflows of the baseline.
	// Default 500.
	Trivial int
	// Temporal configures the embedded server (DBPath defaults to a file
	// in Dir). BenchSagas sets VisibilityInMemory unless PersistVisibility.
	Temporal embedded.Config
	// PersistVisibility keeps the visibility store in its SQLite file, as
	// the embedded server does by default; the benchmark otherwise keeps it
	// in memory, which saves about 2 ms of CPU per saga (measured).
	PersistVisibility bool
	// GCPercent is the garbage collector's target during the benchmark
	// (debug.SetGCPercent; restored afterwards). Default 400: the server,
	// worker and store allocate briskly, and at the default 100 the
	// collector took about 9% of the CPU.
	GCPercent int
	// Variants selects the saga variants by index (0: provider calls as
	// activities, 1: as local activities). Default both.
	Variants []int
	// Logger receives progress. Default: discard.
	Logger *slog.Logger
}

func (c *BenchConfig) setDefaults() {
	if c.Orders <= 0 {
		c.Orders = 1000
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.Trivial <= 0 {
		c.Trivial = 500
	}
	if c.GCPercent == 0 {
		c.GCPercent = 400
	}
	if !c.PersistVisibility {
		c.Temporal.VisibilityInMemory = true
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// SagaFigures are one variant's results.
type SagaFigures struct {
	Variant string
	Orders  int
	// PerSec is checkout sagas completed (order confirmed, fulfillment
	// started, workflow closed) per second.
	PerSec float64
	// P50 and P99 are the times from order placed (the API's append
	// acknowledged) to order confirmed (the confirmation appended).
	P50, P99 time.Duration
	// CPUPerSaga is the process CPU time (server, worker, store, clients:
	// everything runs in this process) spent per saga. Unlike the rate it
	// hardly depends on what else the machine runs: NumCPU / CPUPerSaga
	// is the rate this machine reaches when the process has it to itself.
	CPUPerSaga time.Duration
}

// BenchReport is what BenchSagas measured.
type BenchReport struct {
	// TrivialPerSec is the rate of one-activity workflows (default start,
	// regular activity), the anchor on this machine; TrivialCPU the process
	// CPU time per one.
	TrivialPerSec float64
	TrivialCPU    time.Duration
	CPUs          int
	Sagas         []SagaFigures
	Concurrency   int
	// Settings summarises the tuning the figures were measured with.
	Settings string
}

func (r BenchReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "embedded Temporal (SQLite), %d in flight, %d CPUs; CPU = process CPU time per workflow, ceiling = CPUs / CPU\n", r.Concurrency, r.CPUs)
	fmt.Fprintf(&b, "settings: %s\n", r.Settings)
	fmt.Fprintf(&b, "  %-46s %7.1f /s  CPU %5.1f ms  ceiling %6.1f /s\n", "trivial one-activity workflow", r.TrivialPerSec, ms(r.TrivialCPU), ceiling(r.CPUs, r.TrivialCPU))
	for _, s := range r.Sagas {
		fmt.Fprintf(&b, "  %-46s %7.1f /s  CPU %5.1f ms  ceiling %6.1f /s  placed->confirmed p50 %v p99 %v  (%d orders, %.1fx trivial)\n",
			"checkout saga, "+s.Variant, s.PerSec, ms(s.CPUPerSaga), ceiling(r.CPUs, s.CPUPerSaga), s.P50.Round(time.Millisecond), s.P99.Round(time.Millisecond), s.Orders, s.PerSec/r.TrivialPerSec)
	}
	return b.String()
}

// BenchSagas measures checkout sagas end to end on an embedded Temporal
// server: orders are placed through the application service into a Pebble
// event store, the dispatcher starts their sagas (eager start), a worker
// with the sandbox provider runs them; each of Concurrency clients places
// an order and waits for its confirmation. It reports sagas per second and
// placed-to-confirmed latency per variant (provider calls as regular
// activities, the default, and as local activities), beside the rate of a
// trivial one-activity workflow measured in the same run. 'livecore bench
// sagas' calls it.
func BenchSagas(ctx context.Context, cfg BenchConfig) (BenchReport, error) {
	cfg.setDefaults()
	rep := BenchReport{Concurrency: cfg.Concurrency, CPUs: runtime.NumCPU()}
	defer debug.SetGCPercent(debug.SetGCPercent(cfg.GCPercent))
	maxConns := cfg.Temporal.MaxConns
	if maxConns == 0 {
		maxConns = 1
	}
	rep.Settings = fmt.Sprintf("GOGC %d, visibility in memory %v, %d SQLite connection(s) per file, eager workflow start, %d WFT/activity pollers",
		cfg.GCPercent, cfg.Temporal.VisibilityInMemory, maxConns, WorkerOptions().MaxConcurrentWorkflowTaskPollers)
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "livecore-bench-sagas-*")
		if err != nil {
			return rep, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	tc := cfg.Temporal
	if tc.DBPath == "" && !tc.Ephemeral {
		tc.DBPath = filepath.Join(dir, "temporal.db")
	}
	srv, err := embedded.Start(ctx, tc)
	if err != nil {
		return rep, err
	}
	defer srv.Stop()
	quiet := sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	cl, err := srv.NewClient(ctx, func(o *client.Options) { o.Logger = quiet })
	if err != nil {
		return rep, err
	}
	defer cl.Close()

	cpu0 := cpuTime()
	if rep.TrivialPerSec, err = benchTrivial(ctx, cl, cfg); err != nil {
		return rep, err
	}
	rep.TrivialCPU = (cpuTime() - cpu0) / time.Duration(cfg.Trivial)
	cfg.Logger.Info("trivial workflows", "per_sec", rep.TrivialPerSec)
	for i, v := range []struct {
		name string
		opts steps.Options
	}{
		{"provider calls as activities", steps.Options{}},
		{"provider calls as local activities", steps.Options{LocalProvider: true}},
	} {
		if len(cfg.Variants) > 0 && !slices.Contains(cfg.Variants, i) {
			continue
		}
		figs, err := benchCheckout(ctx, cl, cfg, filepath.Join(dir, fmt.Sprintf("events-%d", i)), fmt.Sprintf("bench-sagas-%d", i), v.opts)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", v.name, err)
		}
		figs.Variant = v.name
		cfg.Logger.Info("checkout sagas", "variant", v.name, "per_sec", figs.PerSec, "p50", figs.P50, "p99", figs.P99)
		rep.Sagas = append(rep.Sagas, figs)
	}
	return rep, nil
}

// BenchNoop is the baseline's activity.
func BenchNoop(context.Context) error { return nil }

// BenchTrivial is the baseline workflow: one activity.
func BenchTrivial(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	return workflow.ExecuteActivity(ctx, BenchNoop).Get(ctx, nil)
}

func benchTrivial(ctx context.Context, cl client.Client, cfg BenchConfig) (float64, error) {
	const queue = "bench-trivial"
	w := worker.New(cl, queue, WorkerOptions())
	w.RegisterWorkflow(BenchTrivial)
	w.RegisterActivity(BenchNoop)
	if err := w.Start(); err != nil {
		return 0, err
	}
	defer w.Stop()
	var next atomic.Int64
	start := time.Now()
	err := closedLoop(cfg.Concurrency, func() error {
		for {
			i := next.Add(1)
			if i > int64(cfg.Trivial) {
				return nil
			}
			run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("trivial-%d-%d", start.UnixNano(), i), TaskQueue: queue}, BenchTrivial)
			if err == nil {
				err = run.Get(ctx, nil)
			}
			if err != nil {
				return err
			}
		}
	})
	return float64(cfg.Trivial) / time.Since(start).Seconds(), err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ceiling(cpus int, per time.Duration) float64 {
	if per <= 0 {
		return 0
	}
	return float64(cpus) / per.Seconds()
}

// cpuTime is the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func closedLoop(n int, fn func() error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func benchRegistry() *event.Registry {
	r := event.NewRegistry()
	order.Register(r)
	inventory.Register(r)
	payment.Register(r)
	financing.Register(r)
	fulfillment.Register(r)
	RegisterEvents(r)
	return r
}

func benchCheckout(ctx context.Context, cl client.Client, cfg BenchConfig, dir, queue string, opts steps.Options) (SagaFigures, error) {
	figs := SagaFigures{Orders: cfg.Orders}
	store, err := pebble.Open(pebble.Config{Dir: dir})
	if err != nil {
		return figs, err
	}
	defer store.Close()
	reg := benchRegistry()
	svc, err := app.New(app.Config{Store: store, Registry: reg})
	if err != nil {
		return figs, err
	}
	loc := inventory.MustLocation("main")
	deps := Deps{
		App: svc, Events: store, Registry: reg, PSP: sandbox.New(sandbox.Config{}), Locations: []inventory.Location{loc},
		Tokens: TokenFunc(func(context.Context, string) (payment.Token, error) { return payment.ParseToken("tok_visa_approve") }),
	}
	w := worker.New(cl, queue, WorkerOptions())
	if err := Register(w, deps); err != nil {
		return figs, err
	}
	if err := w.Start(); err != nil {
		return figs, err
	}
	defer w.Stop()
	for _, sku := range []string{"LIVE-1", "LIVE-2"} {
		if _, err := app.Execute(ctx, svc, inventory.StreamID(sku, loc), func() *inventory.Item { return inventory.NewItem(sku, loc) },
			app.Command{ID: "bench/stock/" + sku}, func(it *inventory.Item) ([]event.Event, error) { return it.Receive(10_000_000, "bench", time.Now()) }); err != nil {
			return figs, err
		}
	}

	// Confirmations are watched on the log, as a read model would.
	var mu sync.Mutex
	waiting := map[string]chan struct{}{}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	head, err := store.Head(ctx)
	if err != nil {
		return figs, err
	}
	go func() {
		_ = store.SubscribeAll(watchCtx, head+1, func(_ context.Context, batch []event.Envelope) error {
			for _, env := range batch {
				if env.Type != order.TypeOrderConfirmed && env.Type != order.TypeOrderCancelled {
					continue
				}
				id := strings.TrimPrefix(env.StreamID, "order-")
				mu.Lock()
				if ch := waiting[id]; ch != nil {
					close(ch)
					delete(waiting, id)
				}
				mu.Unlock()
			}
			return nil
		})
	}()

	d, err := dispatcher.New(dispatcher.Config{
		Store: store, Registry: reg, Client: cl, TaskQueue: queue, Checkpoint: filepath.Join(dir, "dispatcher.checkpoint"),
		Checkout: checkout.Options{Steps: opts},
	})
	if err != nil {
		return figs, err
	}
	dctx, stopDisp := context.WithCancel(ctx)
	defer stopDisp()
	go func() { _ = d.Run(dctx) }()

	usd := money.MustCurrency("USD")
	price := money.MustParse("19.99", "USD")
	var next atomic.Int64
	lat := make([]time.Duration, 0, cfg.Orders)
	ids := make([]string, 0, cfg.Orders)
	start, cpu0 := time.Now(), cpuTime()
	err = closedLoop(cfg.Concurrency, func() error {
		for {
			i := next.Add(1)
			if i > int64(cfg.Orders) {
				return nil
			}
			id := fmt.Sprintf("%s-%d", queue, i)
			done := make(chan struct{})
			mu.Lock()
			waiting[id] = done
			mu.Unlock()
			placed := time.Now()
			if _, err := app.Execute(ctx, svc, order.StreamID(id), func() *order.Order { return &order.Order{} }, app.Command{ID: "bench/place/" + id},
				func(o *order.Order) ([]event.Event, error) {
					evs, err := o.Place(order.PlaceOrder{OrderID: id, CustomerID: "c-" + id, Region: "eu", Currency: usd, Lines: []order.LineItem{
						{SKU: "LIVE-1", Quantity: 1, UnitPrice: price}, {SKU: "LIVE-2", Quantity: 2, UnitPrice: price},
					}}, placed)
					if err != nil {
						return nil, err
					}
					o2 := &order.Order{}
					for _, e := range evs {
						o2.Apply(e)
					}
					more, err := o2.StartCheckout(order.MethodCard, order.PlanKind{}, placed)
					return append(evs, more...), err
				}); err != nil {
				return err
			}
			select {
			case <-done:
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Minute):
				return fmt.Errorf("order %s not confirmed after 2 minutes", id)
			}
			mu.Lock()
			lat = append(lat, time.Since(placed))
			ids = append(ids, id)
			mu.Unlock()
		}
	})
	if err != nil {
		return figs, err
	}
	// Every saga must have finished confirmed (fulfillment handed over).
	var bad atomic.Int64
	var idx atomic.Int64
	err = closedLoop(cfg.Concurrency, func() error {
		for {
			i := idx.Add(1) - 1
			if i >= int64(len(ids)) {
				return nil
			}
			var res checkout.Result
			if err := cl.GetWorkflow(ctx, checkout.WorkflowID(ids[i]), "").Get(ctx, &res); err != nil {
				return err
			}
			if res.Outcome != checkout.OutcomeConfirmed {
				bad.Add(1)
			}
		}
	})
	elapsed := time.Since(start)
	if err != nil {
		return figs, err
	}
	if n := bad.Load(); n > 0 {
		return figs, fmt.Errorf("%d sagas did not end confirmed", n)
	}
	slices.Sort(lat)
	figs.CPUPerSaga = (cpuTime() - cpu0) / time.Duration(cfg.Orders)
	figs.PerSec = float64(cfg.Orders) / elapsed.Seconds()
	figs.P50, figs.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	return figs, nil
}
