// Package projbench measures the projections and the audit verifier on
// realistic simulated histories: projection catch-up into SQLite or
// PostgreSQL, and hash-chain verification over a Pebble store. `livecore
// bench projections|audit` and the go test benchmarks call it.
package projbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/livecore/livecore/adapters/eventcodec"
	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/projections"
	"github.com/livecore/livecore/projections/audit"
	"github.com/livecore/livecore/projections/journal"
	"github.com/livecore/livecore/projections/readmodels"
	"github.com/livecore/livecore/projections/simulate"
)

// History simulates about events events (about 21 per order) into a new
// in-memory store.
func History(ctx context.Context, events int, seed uint64) (*memory.Store, error) {
	sim := simulate.New(simulate.Config{Seed: seed, Orders: max(1, events/21)})
	store := memory.New(memory.Config{Now: sim.Now})
	if _, err := sim.Run(ctx, store); err != nil {
		return nil, err
	}
	return store, nil
}

// ProjectionsConfig configures Projections.
type ProjectionsConfig struct {
	// DB is the target database (fresh: the projections' tables must not
	// exist yet). Required.
	DB *projections.DB
	// Source is the history to project; default a simulated one of
	// Events events.
	Source projections.Source
	Events int    // default 200,000
	Seed   uint64 // of the simulation
	// Projections to run; default every read model and the journal.
	Projections []projections.Projection
	// BatchSize is events per transaction (default 1000).
	BatchSize int
}

// ProjectionsResult is a catch-up measurement.
type ProjectionsResult struct {
	Dialect     projections.Dialect
	Projections int
	Names       []string
	Events      uint64 // $all positions every projection applied
	Elapsed     time.Duration
	CPU         time.Duration // process CPU time (all cores)
	Sharing     projections.SharingStats
}

// EventsPerSecond is positions applied per second by all projections
// together (each event goes through every projection).
func (r ProjectionsResult) EventsPerSecond() float64 { return float64(r.Events) / r.Elapsed.Seconds() }

// EventsPerCPUSecond is positions applied per second of this process's
// CPU (the database server's own CPU not included for PostgreSQL).
func (r ProjectionsResult) EventsPerCPUSecond() float64 { return float64(r.Events) / r.CPU.Seconds() }

func (r ProjectionsResult) String() string {
	return fmt.Sprintf("%s: %d projection(s) %s caught up on %d events in %v: %.0f events/s (CPU %v: %.0f events per CPU-second; %d decodes, %d shared, %d batches shared)",
		r.Dialect, r.Projections, r.Names, r.Events, r.Elapsed.Round(time.Millisecond), r.EventsPerSecond(), r.CPU.Round(time.Millisecond), r.EventsPerCPUSecond(),
		r.Sharing.Decoded, r.Sharing.DecodesShared, r.Sharing.BatchesShared)
}

// Catalog returns the projections Projections runs by default: every read
// model and the journal.
func Catalog() []projections.Projection {
	reg := eventcodec.Fast(simulate.Registry()) // as the product decodes (internal/stack)
	return append(readmodels.All(reg), journal.Projection{Registry: reg})
}

// Projections measures catch-up from position 1 to the head: the time from
// starting a runner until every projection has applied the head.
func Projections(ctx context.Context, cfg ProjectionsConfig) (ProjectionsResult, error) {
	if cfg.DB == nil {
		return ProjectionsResult{}, fmt.Errorf("projbench: DB required")
	}
	if cfg.Events <= 0 {
		cfg.Events = 200_000
	}
	if cfg.Source == nil {
		s, err := History(ctx, cfg.Events, cfg.Seed)
		if err != nil {
			return ProjectionsResult{}, err
		}
		cfg.Source = s
	}
	if cfg.Projections == nil {
		cfg.Projections = Catalog()
	}
	head, err := cfg.Source.Head(ctx)
	if err != nil {
		return ProjectionsResult{}, err
	}
	r, err := projections.NewRunner(projections.Config{DB: cfg.DB, Source: cfg.Source, Projections: cfg.Projections, BatchSize: cfg.BatchSize,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return ProjectionsResult{}, err
	}
	if err := r.Migrate(ctx); err != nil {
		return ProjectionsResult{}, err
	}
	runtime.GC()
	start, cpu0 := time.Now(), cpuTime()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		err := r.Run(rctx)
		cancel() // a runner that stopped on its own ends the waits below
		done <- err
	}()
	for _, p := range cfg.Projections {
		if err := r.WaitFor(rctx, p.Name(), head); err != nil {
			cancel()
			if rerr := <-done; rerr != nil {
				return ProjectionsResult{}, fmt.Errorf("%w (runner: %v)", err, rerr)
			}
			return ProjectionsResult{}, err
		}
	}
	res := ProjectionsResult{Dialect: cfg.DB.Dialect, Projections: len(cfg.Projections), Events: head, Elapsed: time.Since(start), CPU: cpuTime() - cpu0}
	res.Sharing = r.Sharing()
	for _, p := range cfg.Projections {
		res.Names = append(res.Names, p.Name())
	}
	cancel()
	<-done
	return res, nil
}

// AuditConfig configures Audit.
type AuditConfig struct {
	// Dir holds the Pebble store verified. If it has no events, a
	// simulated history is replicated into it until it holds about Events
	// events; an existing store is reused as it is. Default: a new
	// temporary directory, removed afterwards.
	Dir    string
	Events int // default 1,000,000
	// Workers hash in parallel (default GOMAXPROCS).
	Workers int
}

// AuditResult is a verification measurement.
type AuditResult struct {
	Store audit.Report // Verify over the Pebble store: read + hash + link
	// Core is Verify over envelopes already in memory (up to 200,000 of
	// the same events): the verifier's own cost, hashing included.
	Core audit.Report
}

func (r AuditResult) String() string {
	return fmt.Sprintf("verify over Pebble: %d events, %d streams in %v: %.0f events/s wall, %.0f events per CPU-second; verifier alone (in memory): %.0f events/s wall, %.0f events per CPU-second",
		r.Store.Events, r.Store.Streams, r.Store.Elapsed.Round(time.Millisecond), r.Store.EventsPerSecond(), r.Store.EventsPerCPUSecond(),
		r.Core.EventsPerSecond(), r.Core.EventsPerCPUSecond())
}

// Audit measures audit.Verify over a Pebble store of realistic events, and
// the verifier alone over the same events in memory.
func Audit(ctx context.Context, cfg AuditConfig) (AuditResult, error) {
	if cfg.Events <= 0 {
		cfg.Events = 1_000_000
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "livecore-audit-bench-")
		if err != nil {
			return AuditResult{}, err
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	// As livecore audit opens it (a scan's cache: pebble.ScanCacheBytes).
	s, err := pebble.Open(pebble.Config{Dir: cfg.Dir, CacheBytes: pebble.ScanCacheBytes, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return AuditResult{}, err
	}
	defer s.Close()
	if h, _ := s.Head(ctx); h == 0 {
		mem, err := History(ctx, 20_000, 1)
		if err != nil {
			return AuditResult{}, err
		}
		src, err := mem.ReadAll(ctx, 1, 0)
		if err != nil {
			return AuditResult{}, err
		}
		if _, err := simulate.Replicate(ctx, s, src, cfg.Events/len(src)+1, 64); err != nil {
			return AuditResult{}, err
		}
		// Measure a settled store: without this, the compactions the
		// bulk load left behind run during the verify and count in its
		// CPU (livecore bench audit measured 0.86M events per CPU-second,
		// the verifier alone 1.30M instead of ~1.8M).
		if err := s.Compact(ctx); err != nil {
			return AuditResult{}, err
		}
	}
	runtime.GC()
	var res AuditResult
	if res.Store, err = audit.Verify(ctx, s, audit.VerifyOptions{Workers: cfg.Workers}); err != nil {
		return res, err
	}
	if !res.Store.OK() {
		return res, fmt.Errorf("projbench: the store does not verify: %v", res.Store.Problem)
	}
	evs, err := s.ReadAll(ctx, 1, 200_000)
	if err != nil {
		return res, err
	}
	runtime.GC()
	if res.Core, err = audit.Verify(ctx, sliceSource(evs), audit.VerifyOptions{Workers: cfg.Workers}); err != nil {
		return res, err
	}
	return res, nil
}

// sliceSource serves envelopes already in memory, without copying.
type sliceSource []event.Envelope

func (s sliceSource) ReadAll(_ context.Context, from uint64, limit int) ([]event.Envelope, error) {
	if from < 1 || from > uint64(len(s)) {
		return nil, nil
	}
	out := s[from-1:]
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s sliceSource) Head(context.Context) (uint64, error) { return uint64(len(s)), nil }
