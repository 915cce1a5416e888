package projbench_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/livecore/livecore/internal/testenv"
	"github.com/livecore/livecore/projections"
	"github.com/livecore/livecore/projections/projbench"
)

// go test -run XXX -bench . -benchtime 1x ./projections/projbench/
// (PostgreSQL: with LIVECORE_TEST_PG_DSN set, as scripts/test.sh does.)

func catchUp(b *testing.B, open func() *projections.DB) {
	ctx := context.Background()
	src, err := projbench.History(ctx, 200_000, 1)
	if err != nil {
		b.Fatal(err)
	}
	run := func(name string, projs []projections.Projection) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				db := open()
				res, err := projbench.Projections(ctx, projbench.ProjectionsConfig{DB: db, Source: src, Projections: projs, BatchSize: 5000})
				db.Close()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(res.EventsPerSecond(), "events/s")
				b.ReportMetric(res.EventsPerCPUSecond(), "events/cpu-s")
				b.Log(res)
			}
		})
	}
	run("all", projbench.Catalog())
	for _, p := range projbench.Catalog() {
		run(p.Name(), []projections.Projection{p})
	}
}

func BenchmarkCatchUpSQLite(b *testing.B) {
	catchUp(b, func() *projections.DB {
		db, err := projections.OpenSQLite(filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		return db
	})
}

func BenchmarkCatchUpPostgres(b *testing.B) {
	dsn := testenv.PostgresDSN(b)
	catchUp(b, func() *projections.DB {
		db, err := projections.OpenPostgres(context.Background(), testenv.FreshSchema(b, dsn))
		if err != nil {
			b.Fatal(err)
		}
		return db
	})
}

// BenchmarkVerify keeps its store in $TMPDIR/livecore-verify-bench (built
// once, ~1M events) so later runs measure a warm store.
func BenchmarkVerify(b *testing.B) {
	dir := filepath.Join(os.TempDir(), "livecore-verify-bench")
	for b.Loop() {
		res, err := projbench.Audit(context.Background(), projbench.AuditConfig{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.Store.EventsPerSecond(), "events/s")
		b.ReportMetric(res.Store.EventsPerCPUSecond(), "events/cpu-s")
		b.ReportMetric(res.Core.EventsPerCPUSecond(), "core-events/cpu-s")
		b.Log(res)
	}
}
