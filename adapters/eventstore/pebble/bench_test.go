package pebble_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/pebble/pebblebench"
	"github.com/livecore/livecore/internal/fsyncbench"
)

// Durability figures are stated against this disk's own fsync rate,
// measured in the same run (PERFORMANCE.md). Run with
//
//	go test -run '^$' -bench . -benchtime 3s ./adapters/eventstore/pebble/
//
// or `go run ./cmd/livecore bench eventstore` for the whole table.

// BenchmarkRawFsync is the anchor: serial 4 KiB write + fsync in the data
// directory's file system.
func BenchmarkRawFsync(b *testing.B) {
	r, err := fsyncbench.Measure(b.TempDir(), max(b.N, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.PerSecond(), "fsyncs/s")
	b.ReportMetric(float64(r.P99.Microseconds()), "p99-µs")
}

// BenchmarkAppendSingleWriter: one writer, one event per append, each
// acknowledged after its own fsync, interleaved with raw fsyncs in the
// same directory (rounds of 100 of each) so both see the same disk;
// ratio-to-fsync is appends/s over raw fsyncs/s.
func BenchmarkAppendSingleWriter(b *testing.B) {
	r, err := pebblebench.SingleWriter(b.Context(), b.TempDir(), "single", max(b.N/100, 1), 100, 200)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.AppendPerSecond, "appends/s")
	b.ReportMetric(r.RawPerSecond, "raw-fsyncs/s")
	b.ReportMetric(r.Ratio(), "ratio-to-fsync")
}

// BenchmarkAppend64Writers: 64 writers, one event per append, 100 streams
// each; events per fsync counted by the store's group commits and by WAL
// syncs at the file layer.
func BenchmarkAppend64Writers(b *testing.B) {
	r, err := pebblebench.Appends(b.Context(), b.TempDir(), "many", 64, 100, max(b.N, 64), 0, 200)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.PerSecond(), "events/s")
	b.ReportMetric(r.EventsPerCommit(), "events/commit")
	b.ReportMetric(r.EventsPerWALSync(), "events/wal-sync")
}

// BenchmarkReadAll: sequential $all read in pages of 10,000 over 200,000
// events of ~200 B (after one warm-up pass). One op is one page.
func BenchmarkReadAll(b *testing.B) {
	s, err := pebblebench.Fill(b.Context(), b.TempDir(), "read", 2000, 100, 10, 200)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := pebblebench.ReadAll(b.Context(), s, 10_000); err != nil {
		b.Fatal(err)
	}
	read, next := 0, uint64(1)
	start := time.Now()
	for b.Loop() {
		batch, err := s.ReadAll(b.Context(), next, 10_000)
		if err != nil {
			b.Fatal(err)
		}
		if len(batch) < 10_000 {
			next = 1
		} else {
			next = batch[len(batch)-1].Position + 1
		}
		read += len(batch)
	}
	b.ReportMetric(float64(read)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkStreamLoad100: ReadStream of a whole 100-event stream whose
// events are interleaved with 1,999 other streams' in $all (ten runs of
// ten events each). One op is one stream load.
func BenchmarkStreamLoad100(b *testing.B) {
	s, err := pebblebench.Fill(b.Context(), b.TempDir(), "load", 2000, 100, 10, 200)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var lat []time.Duration
	for b.Loop() {
		stream := fmt.Sprintf("load-%d", rng.IntN(2000))
		t := time.Now()
		evs, err := s.ReadStream(b.Context(), stream, 1, 0)
		lat = append(lat, time.Since(t))
		if err != nil || len(evs) != 100 {
			b.Fatalf("%s: %d events, %v", stream, len(evs), err)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(pebblebench.Percentile(lat, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(pebblebench.Percentile(lat, 99).Microseconds()), "p99-µs")
}

// TestBenchTable prints pebblebench.Run's table when LIVECORE_BENCH_TABLE
// names a directory (it takes about 30 s, so it is not part of the default
// run).
func TestBenchTable(t *testing.T) {
	dir := os.Getenv("LIVECORE_BENCH_TABLE")
	if dir == "" {
		t.Skip("set LIVECORE_BENCH_TABLE=<dir> to print the benchmark table")
	}
	if err := pebblebench.Run(t.Context(), dir, os.Stdout); err != nil {
		t.Fatal(err)
	}
}
