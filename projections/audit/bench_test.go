package audit_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/projections/audit"
	"github.com/livecore/livecore/projections/simulate"
)

// BenchmarkVerifyPebble verifies $all of a Pebble store of realistic
// events (a simulated history replicated to ~1M events) and reports
// events/s (wall) and events per CPU-second (per core).
func BenchmarkVerifyPebble(b *testing.B) {
	ctx := context.Background()
	dir := filepath.Join(os.TempDir(), "livecore-audit-bench-1m")
	s, err := pebble.Open(pebble.Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if h, _ := s.Head(ctx); h == 0 {
		sim := simulate.New(simulate.Config{Seed: 9, Orders: 1000})
		mem := memory.New(memory.Config{Now: sim.Now})
		if _, err := sim.Run(ctx, mem); err != nil {
			b.Fatal(err)
		}
		src, _ := mem.ReadAll(ctx, 1, 0)
		if _, err := simulate.Replicate(ctx, s, src, 1_000_000/len(src)+1, 64); err != nil {
			b.Fatal(err)
		}
	}
	var rep audit.Report
	for b.Loop() {
		rep, err = audit.Verify(ctx, s, audit.VerifyOptions{})
		if err != nil || !rep.OK() {
			b.Fatal(rep.Problem, err)
		}
	}
	b.ReportMetric(rep.EventsPerSecond(), "events/s")
	b.ReportMetric(rep.EventsPerCPUSecond(), "events/cpu-s")
	b.Logf("%d events, %d streams: %.0f events/s wall, %.0f events per CPU-second", rep.Events, rep.Streams, rep.EventsPerSecond(), rep.EventsPerCPUSecond())
}
