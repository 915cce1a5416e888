package workflows_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"

	"github.com/livecore/livecore/workflows"
)

// BenchmarkSagas runs BenchSagas once (use -benchtime=1x) and reports
// sagas per second and placed-to-confirmed latency beside the trivial
// workflow rate. Knobs: LIVECORE_BENCH_ORDERS (orders per variant),
// LIVECORE_BENCH_VARIANT (0 or 1 only), LIVECORE_BENCH_PERSIST_VISIBILITY=1,
// LIVECORE_BENCH_GOGC, LIVECORE_BENCH_PARTITIONS, LIVECORE_BENCH_MAXCONNS.
//
//	go test -run '^$' -bench Sagas -benchtime=1x ./workflows/
func BenchmarkSagas(b *testing.B) {
	cfg := workflows.BenchConfig{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if n, err := strconv.Atoi(os.Getenv("LIVECORE_BENCH_ORDERS")); err == nil {
		cfg.Orders = n
	}
	if v, err := strconv.Atoi(os.Getenv("LIVECORE_BENCH_VARIANT")); err == nil {
		cfg.Variants = []int{v}
	}
	cfg.PersistVisibility = os.Getenv("LIVECORE_BENCH_PERSIST_VISIBILITY") == "1"
	if n, err := strconv.Atoi(os.Getenv("LIVECORE_BENCH_GOGC")); err == nil {
		cfg.GCPercent = n
	}
	if n, err := strconv.Atoi(os.Getenv("LIVECORE_BENCH_PARTITIONS")); err == nil {
		cfg.Temporal.DynamicConfig = map[string]any{"matching.numTaskqueueReadPartitions": n, "matching.numTaskqueueWritePartitions": n}
	}
	if n, err := strconv.Atoi(os.Getenv("LIVECORE_BENCH_MAXCONNS")); err == nil {
		cfg.Temporal.MaxConns = n
	}
	for range b.N {
		rep, err := workflows.BenchSagas(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Print(rep)
		b.ReportMetric(rep.TrivialPerSec, "trivial/s")
		for i, s := range rep.Sagas {
			b.ReportMetric(s.PerSec, fmt.Sprintf("sagas/s(v%d)", i+1))
			b.ReportMetric(float64(s.P50.Milliseconds()), fmt.Sprintf("p50-ms(v%d)", i+1))
			b.ReportMetric(float64(s.P99.Milliseconds()), fmt.Sprintf("p99-ms(v%d)", i+1))
		}
	}
}
