// Package fsyncbench measures a directory's raw durable-write rate: the
// anchor every durability figure in livecore is stated against.
package fsyncbench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Result is one measurement.
type Result struct {
	Syncs   int
	Elapsed time.Duration
	P50     time.Duration
	P99     time.Duration
}

// PerSecond is the serial fsync rate.
func (r Result) PerSecond() float64 { return float64(r.Syncs) / r.Elapsed.Seconds() }

func (r Result) String() string {
	return fmt.Sprintf("%d fsyncs in %v: %.0f/s, p50 %v, p99 %v", r.Syncs, r.Elapsed.Round(time.Millisecond), r.PerSecond(), r.P50, r.P99)
}

// Measure appends a 4 KiB block and fsyncs it, n times in a row, in a
// temporary file under dir, which it removes. It is what one serial durable
// writer can do on this disk.
func Measure(dir string, n int) (Result, error) {
	if n <= 0 {
		n = 1000
	}
	f, err := os.CreateTemp(dir, "fsyncbench-*")
	if err != nil {
		return Result{}, fmt.Errorf("fsync bench: %w", err)
	}
	defer os.Remove(filepath.Clean(f.Name()))
	defer f.Close()
	block := make([]byte, 4096)
	lat := make([]time.Duration, n)
	start := time.Now()
	for i := range n {
		t := time.Now()
		if _, err := f.Write(block); err != nil {
			return Result{}, fmt.Errorf("fsync bench: write: %w", err)
		}
		if err := f.Sync(); err != nil {
			return Result{}, fmt.Errorf("fsync bench: sync: %w", err)
		}
		lat[i] = time.Since(t)
	}
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return Result{Syncs: n, Elapsed: elapsed, P50: lat[n/2], P99: lat[n*99/100]}, nil
}
