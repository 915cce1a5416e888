// Package storebench measures event stores side by side in one run, so
// their ratio means something on a noisy 2-core machine: the same
// workloads, in the same order, against every store given, with the disk's
// raw fsync rate measured in the same run as the anchor.
//
// Workloads (each on a fresh store from its Target):
//
//   - append-1w: one writer appends one event at a time (expected version
//     Any, a new stream every 100 events) for Options.Duration.
//   - append-64w: 64 writers do the same concurrently, each on its own
//     streams, for Options.Duration.
//   - read-all: Options.ReadEvents events are loaded (appends of 100), then
//     $all is read from position 1 to the head in batches of 1000.
//
// Every append is durable as each store defines it (fsync / WAL flush
// before the acknowledgement); Run does not change any store's settings.
package storebench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/livecore/livecore/domain/event"
)

// Target is one store under test. Open must return a new, empty store each
// time it is called; Run closes it.
type Target struct {
	Name string
	Open func(ctx context.Context) (event.Store, error)
	// Note is printed under the table (e.g. the store's durability settings).
	Note string
}

// Options tunes Run. Zero values take the defaults.
type Options struct {
	// Duration of each append workload. Default 3s.
	Duration time.Duration
	// Writers of the concurrent append workload. Default 64.
	Writers int
	// ReadEvents loaded before the $all read. Default 20,000.
	ReadEvents int
	// Workloads to run, by name; default all: append-1w, append-64w, read-all.
	Workloads []string
}

func (o *Options) setDefaults() {
	if o.Duration <= 0 {
		o.Duration = 3 * time.Second
	}
	if o.Writers <= 0 {
		o.Writers = 64
	}
	if o.ReadEvents <= 0 {
		o.ReadEvents = 20000
	}
	if len(o.Workloads) == 0 {
		o.Workloads = []string{"append-1w", "append-64w", "read-all"}
	}
}

// Result is one workload against one store.
type Result struct {
	Store, Workload string
	Events          int
	Elapsed         time.Duration
	P50, P99        time.Duration // per operation (append or read batch)
}

// PerSecond is events per second.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Events) / r.Elapsed.Seconds()
}

// Run runs every workload against every target and prints a table to out
// (nil: no output). A target that fails to open or errors is reported in
// the table and the returned error, and the others still run.
func Run(ctx context.Context, targets []Target, opts Options, out io.Writer) ([]Result, error) {
	opts.setDefaults()
	var results []Result
	var errs []error
	for _, w := range opts.Workloads {
		for _, tg := range targets {
			r, err := runOne(ctx, tg, w, opts)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", tg.Name, w, err))
				continue
			}
			results = append(results, r)
		}
	}
	if out != nil {
		Print(out, targets, results)
	}
	return results, errors.Join(errs...)
}

func runOne(ctx context.Context, tg Target, workload string, opts Options) (Result, error) {
	s, err := tg.Open(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("open: %w", err)
	}
	defer s.Close()
	r := Result{Store: tg.Name, Workload: workload}
	switch workload {
	case "append-1w":
		err = appendLoad(ctx, s, 1, opts.Duration, &r)
	case "append-64w":
		err = appendLoad(ctx, s, opts.Writers, opts.Duration, &r)
	case "read-all":
		err = readAll(ctx, s, opts.ReadEvents, &r)
	default:
		err = fmt.Errorf("unknown workload %q", workload)
	}
	return r, err
}

func proposal(writer, i, n int) []event.Proposed {
	out := make([]event.Proposed, n)
	for k := range out {
		cmd := fmt.Sprintf("bench-%d-%d", writer, i)
		out[k] = event.Proposed{
			ID: event.DeriveID(cmd, k), Type: "bench.happened.v1", SchemaVersion: 1,
			Data:     fmt.Appendf(nil, `{"writer":%d,"i":%d,"k":%d,"pad":"%s"}`, writer, i, k, strings.Repeat("x", 100)),
			Metadata: event.Metadata{Tenant: "bench", CorrelationID: cmd, Actor: "storebench", Region: "local"},
		}
	}
	return out
}

func appendLoad(ctx context.Context, s event.Store, writers int, d time.Duration, r *Result) error {
	var (
		wg       sync.WaitGroup
		events   atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		firstErr error
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				t := time.Now()
				_, err := s.Append(ctx, fmt.Sprintf("bench-%d-%d", w, i/100), event.Any, proposal(w, i, 1))
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
				events.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	r.Events = int(events.Load())
	r.P50, r.P99 = percentiles(lat)
	return firstErr
}

func cmpErr(prev, err error) error {
	if prev != nil {
		return prev
	}
	return err
}

func readAll(ctx context.Context, s event.Store, n int, r *Result) error {
	const per = 100
	for i := 0; i < n; i += per {
		if _, err := s.Append(ctx, fmt.Sprintf("load-%d", i/1000), event.Any, proposal(-1, i, min(per, n-i))); err != nil {
			return fmt.Errorf("load: %w", err)
		}
	}
	var lat []time.Duration
	start := time.Now()
	next := uint64(1)
	for {
		t := time.Now()
		batch, err := s.ReadAll(ctx, next, 1000)
		if err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
		r.Events += len(batch)
		if len(batch) < 1000 {
			break
		}
		next = batch[len(batch)-1].Position + 1
	}
	r.Elapsed = time.Since(start)
	r.P50, r.P99 = percentiles(lat)
	if r.Events != n {
		return fmt.Errorf("read %d events, loaded %d", r.Events, n)
	}
	return nil
}

func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

// Print writes results as a table: one row per workload, one column per
// store, and each store's ratio to the first target.
func Print(out io.Writer, targets []Target, results []Result) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "workload")
	for _, t := range targets {
		fmt.Fprintf(tw, "\t%s events/s (p50 / p99)", t.Name)
	}
	for _, t := range targets[min(1, len(targets)):] {
		fmt.Fprintf(tw, "\t%s / %s", targets[0].Name, t.Name)
	}
	fmt.Fprintln(tw)
	var workloads []string
	for _, r := range results {
		if !slices.Contains(workloads, r.Workload) {
			workloads = append(workloads, r.Workload)
		}
	}
	find := func(store, w string) (Result, bool) {
		for _, r := range results {
			if r.Store == store && r.Workload == w {
				return r, true
			}
		}
		return Result{}, false
	}
	for _, w := range workloads {
		fmt.Fprint(tw, w)
		for _, t := range targets {
			if r, ok := find(t.Name, w); ok {
				fmt.Fprintf(tw, "\t%.0f (%v / %v)", r.PerSecond(), r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond))
			} else {
				fmt.Fprint(tw, "\tfailed")
			}
		}
		base, okBase := find(targets[0].Name, w)
		for _, t := range targets[min(1, len(targets)):] {
			if r, ok := find(t.Name, w); ok && okBase && r.PerSecond() > 0 {
				fmt.Fprintf(tw, "\t%.1fx", base.PerSecond()/r.PerSecond())
			} else {
				fmt.Fprint(tw, "\t-")
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	for _, t := range targets {
		if t.Note != "" {
			fmt.Fprintf(out, "%s: %s\n", t.Name, t.Note)
		}
	}
}
