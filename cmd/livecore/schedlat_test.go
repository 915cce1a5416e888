package main

import (
	"math"
	"runtime/metrics"
	"testing"
	"time"
)

func TestSchedLatencyQuantiles(t *testing.T) {
	buckets := []float64{0, 1e-6, 1e-3, 1e-2, math.Inf(1)}
	before := schedLatency{h: &metrics.Float64Histogram{Buckets: buckets, Counts: []uint64{5, 5, 5, 5}}}
	// Since before: 90 waits under 1µs, 9 under 1ms and one beyond the
	// last finite bound (reported as that bound).
	after := schedLatency{h: &metrics.Float64Histogram{Buckets: buckets, Counts: []uint64{95, 14, 5, 6}}}
	d := after.since(before)
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, time.Microsecond}, {0.9, time.Microsecond}, {0.95, time.Millisecond}, {0.99, time.Millisecond}, {0.995, 10 * time.Millisecond}, {1, 10 * time.Millisecond}} {
		if got := d.quantile(c.q); got != c.want {
			t.Errorf("quantile %v = %v, want %v", c.q, got, c.want)
		}
	}
	if got := (schedLatency{}).quantile(0.99); got != 0 {
		t.Errorf("no histogram: %v", got)
	}
	// The real metric exists and reads.
	if readSchedLatency().h == nil {
		t.Fatal("runtime/metrics has no " + schedLatencyMetric)
	}
	g0 := readGC()
	if g0.cycles < 0 || g0.heap <= 0 || g0.alloc <= 0 {
		t.Fatalf("GC metrics: %+v", g0)
	}
	sink = make([]byte, 1<<20)
	if d := readGC().since(g0); d.alloc < 1<<20 {
		t.Fatalf("allocated 1 MiB, the metrics say %.0f bytes", d.alloc)
	}
}

// sink keeps an allocation from being optimised away.
var sink []byte
