package kafka

import (
	"testing"
	"time"
)

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
