package kafka

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gather returns the bridge metrics' values (histograms: sample count).
func gather(t testing.TB, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				out[mf.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[mf.GetName()] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestBridgeExactlyOnce publishes events across many streams, restarts the
// bridge, appends more, and checks with Verify and with an independent
// read_committed consumer that every event is there once, in stream order.
func TestBridgeExactlyOnce(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		const streams, first, second = 2000, 20_000, 5_000
		store := newMemStore(t)
		cfg := testConfig(t, tg, store)
		appendEvents(t, store, streams, first, 200, 1)

		start := time.Now()
		b, stop := runBridge(t, cfg)
		waitPublished(t, b, head(t, store), time.Minute)
		took := time.Since(start)
		if err := stop(); err != nil {
			t.Fatalf("run: %v", err)
		}

		// The metrics of the first run.
		m := gather(t, cfg.Registerer.(*prometheus.Registry))
		t.Logf("%s: metrics: %v", tg.name, m)
		if m["livecore_bridge_last_published_position"] != float64(first) || m["livecore_bridge_lag_events"] != 0 ||
			m["livecore_bridge_transactions_committed_total"] < 1 || m["livecore_bridge_events_published_total"] != float64(first) {
			t.Errorf("metrics after publishing %d events: %v", first, m)
		}

		// Restart: a new bridge (same transactional ID and checkpoint)
		// resumes after the checkpoint; append more while it runs.
		cfg.Registerer = nil
		b2, stop2 := runBridge(t, cfg)
		appendEvents(t, store, streams, second, 200, 2)
		waitPublished(t, b2, head(t, store), time.Minute)
		if err := stop2(); err != nil {
			t.Fatalf("run 2: %v", err)
		}

		r := verify(t, cfg)
		c := consumeCommitted(t, cfg)
		h := head(t, store)
		t.Logf("%s: %d events over %d streams; first %d published in %v (%.0f events/s); consumer: records %d, missing %d, duplicates %d, out of order %d, checkpoints %d",
			tg.name, h, r.Streams, first, took.Round(time.Millisecond), float64(first)/took.Seconds(),
			c.records, c.missing(t, store, h), c.duplicates(), c.outOfOrder, len(c.checkpoints))
		t.Logf("verifier:\n%s", r)
		if !r.OK() || r.Published != h || r.LagEvents != 0 {
			t.Errorf("verify: not exactly once or not caught up:\n%s", r)
		}
		if c.records != int(h) || c.missing(t, store, h) != 0 || c.duplicates() != 0 || c.outOfOrder != 0 {
			t.Errorf("consumer: %d records for %d events, missing %d, duplicates %d, out of order %d",
				c.records, h, c.missing(t, store, h), c.duplicates(), c.outOfOrder)
		}
		for i := 1; i < len(c.checkpoints); i++ {
			if c.checkpoints[i] <= c.checkpoints[i-1] {
				t.Errorf("checkpoint %d went from %d to %d", i, c.checkpoints[i-1], c.checkpoints[i])
			}
		}
	})
}
