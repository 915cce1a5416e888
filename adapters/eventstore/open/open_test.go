package open

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/adapters/eventstore/storebench"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/internal/fsyncbench"
	"github.com/livecore/livecore/internal/testenv"
)

func TestFromEnvFlagsWin(t *testing.T) {
	env := map[string]string{EnvKind: "sql", EnvDSN: "postgres://env", EnvDir: "/env", EnvNamespace: "ns-"}
	c := FromEnv(Config{Kind: "pebble"}, func(k string) string { return env[k] })
	if c.Kind != "pebble" || c.DSN != "postgres://env" || c.Dir != "/env" || c.Namespace != "ns-" {
		t.Fatalf("%+v", c)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		c    Config
		want string // "" = valid
	}{
		{Config{Dir: "/d"}, ""},
		{Config{Kind: "PostgreSQL", DSN: "postgres://x"}, ""},
		{Config{Kind: "esdb", DSN: "esdb://x"}, ""},
		{Config{}, "data directory"},
		{Config{Kind: "sql"}, "connection string"},
		{Config{Kind: "kurrentdb"}, "connection string"},
		{Config{Kind: "mongo", Dir: "/d"}, "want one of pebble, kurrentdb, sql"},
	}
	for _, tc := range cases {
		err := tc.c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}

// TestOpenEachKind opens every kind that is available here and appends one
// event through the selected store.
func TestOpenEachKind(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cfgs := []Config{{Kind: "pebble", Dir: t.TempDir()}}
	if os.Getenv(testenv.EnvPostgresDSN) != "" {
		cfgs = append(cfgs, Config{Kind: "sql", DSN: testenv.FreshSchema(t, testenv.PostgresDSN(t))})
	} else {
		t.Logf("LOUD: %s not set: the sql kind was not opened", testenv.EnvPostgresDSN)
	}
	for _, c := range cfgs {
		s, err := Open(ctx, c)
		if err != nil {
			t.Fatalf("%s: %v", c.Kind, err)
		}
		ev := event.Proposed{ID: event.DeriveID("open-"+c.Kind, 0), Type: "test.opened.v1", SchemaVersion: 1, Data: []byte(`{}`)}
		if r, err := s.Append(ctx, "order-1", event.NoStream, []event.Proposed{ev}); err != nil || r.LastPosition != 1 {
			t.Fatalf("%s: append: %+v %v", c.Kind, r, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A KurrentDB store opens lazily: no server needed to get one.
	s, err := Open(ctx, Config{Kind: "kurrentdb", DSN: "esdb://127.0.0.1:1?tls=false"})
	if err != nil {
		t.Fatalf("kurrentdb: %v", err)
	}
	s.Close()
}

// TestPebbleCacheBytes: a block cache size reaches the Pebble store, and
// without one the store keeps its default.
func TestPebbleCacheBytes(t *testing.T) {
	for _, c := range []struct {
		set, want int64
	}{{0, 256 << 20}, {pebble.ScanCacheBytes, 16 << 20}} {
		s, err := Open(t.Context(), Config{Kind: "pebble", Dir: t.TempDir(), CacheBytes: c.set})
		if err != nil {
			t.Fatal(err)
		}
		got := s.(*pebble.Store).Stats().CacheBytes
		s.Close()
		if got != c.want {
			t.Fatalf("CacheBytes %d: the store's block cache is %d bytes, want %d", c.set, got, c.want)
		}
	}
}

// BenchmarkCompare runs the side-by-side event store comparison once:
// Pebble vs PostgreSQL (LIVECORE_TEST_PG_DSN) vs KurrentDB
// (LIVECORE_KURRENTDB_URL), whichever are set, with the disk's raw fsync
// rate measured in the same run. Run it with
//
//	go test ./adapters/eventstore/open -run '^$' -bench Compare -benchtime 1x
//
// LIVECORE_BENCH_SECONDS sets each append workload's duration (default 5).
func BenchmarkCompare(b *testing.B) {
	dir := b.TempDir()
	d := 5 * time.Second
	if v, err := time.ParseDuration(os.Getenv("LIVECORE_BENCH_SECONDS") + "s"); err == nil && v > 0 {
		d = v
	}
	targets := BenchTargets(b.Context(), BenchConfig{
		Dir:         dir,
		PostgresDSN: os.Getenv(testenv.EnvPostgresDSN),
		KurrentURL:  os.Getenv("LIVECORE_KURRENTDB_URL"),
	})
	for env, what := range map[string]string{testenv.EnvPostgresDSN: "PostgreSQL", "LIVECORE_KURRENTDB_URL": "KurrentDB"} {
		if os.Getenv(env) == "" {
			b.Logf("LOUD: %s not set: %s left out of the comparison", env, what)
		}
	}
	for range b.N {
		fs, err := fsyncbench.Measure(dir, 500)
		if err != nil {
			b.Fatal(err)
		}
		// Printed, not logged: benchmark logs are cut at a few lines.
		fmt.Printf("raw fsync on this disk, same run: %s\n", fs)
		res, err := storebench.Run(b.Context(), targets, storebench.Options{Duration: d}, os.Stdout)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			b.ReportMetric(r.PerSecond(), r.Store+"-"+r.Workload+"-events/s")
		}
	}
}
