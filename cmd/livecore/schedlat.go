package main

import (
	"fmt"
	"math"
	"runtime/metrics"
	"time"
)

// schedLatency reads the Go scheduler's latency histogram: how long
// goroutines that were ready to run waited for a P. Two readings taken
// around a run give that run's distribution (sub).
type schedLatency struct{ h *metrics.Float64Histogram }

const schedLatencyMetric = "/sched/latencies:seconds"

func readSchedLatency() schedLatency {
	s := []metrics.Sample{{Name: schedLatencyMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return schedLatency{}
	}
	return schedLatency{h: s[0].Value.Float64Histogram()}
}

// since returns the waits recorded after before was read.
func (l schedLatency) since(before schedLatency) schedLatency {
	if l.h == nil || before.h == nil || len(l.h.Counts) != len(before.h.Counts) {
		return l
	}
	d := &metrics.Float64Histogram{Buckets: l.h.Buckets, Counts: make([]uint64, len(l.h.Counts))}
	for i := range d.Counts {
		d.Counts[i] = l.h.Counts[i] - before.h.Counts[i]
	}
	return schedLatency{h: d}
}

// quantile returns the upper bound of the bucket holding quantile q.
func (l schedLatency) quantile(q float64) time.Duration {
	if l.h == nil {
		return 0
	}
	var total uint64
	for _, c := range l.h.Counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range l.h.Counts {
		seen += c
		if seen >= rank {
			upper := l.h.Buckets[i+1]
			if math.IsInf(upper, 1) {
				upper = l.h.Buckets[i]
			}
			return time.Duration(upper * float64(time.Second))
		}
	}
	return 0
}

func (l schedLatency) String() string {
	return fmt.Sprintf("p50 %s, p99 %s, p99.9 %s", l.quantile(0.5).Round(time.Microsecond), l.quantile(0.99).Round(time.Microsecond), l.quantile(0.999).Round(time.Microsecond))
}

// gcActivity is the garbage collector's work between two readings.
type gcActivity struct{ cycles, cpu, assist, heap, alloc float64 }

func readGC() gcActivity {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/gc/mark/assist:cpu-seconds"}, {Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	v := func(i int) float64 {
		switch s[i].Value.Kind() {
		case metrics.KindUint64:
			return float64(s[i].Value.Uint64())
		case metrics.KindFloat64:
			return s[i].Value.Float64()
		}
		return 0
	}
	return gcActivity{cycles: v(0), cpu: v(1), assist: v(2), heap: v(3), alloc: v(4)}
}

// since returns the work done after before was read (the live heap as
// of now).
func (g gcActivity) since(before gcActivity) gcActivity {
	return gcActivity{cycles: g.cycles - before.cycles, cpu: g.cpu - before.cpu, assist: g.assist - before.assist, heap: g.heap, alloc: g.alloc - before.alloc}
}

func (g gcActivity) String() string {
	return fmt.Sprintf("%.0f cycles, %.1fs CPU (assists %.1fs), %.0f MiB allocated, live heap %.0f MiB at the end", g.cycles, g.cpu, g.assist, g.alloc/(1<<20), g.heap/(1<<20))
}
