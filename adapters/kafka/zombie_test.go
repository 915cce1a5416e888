package kafka

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestZombieFenced runs two bridges with one transactional ID. The first
// stops inside its first transaction, after its records are acknowledged
// and before EndTransaction; the second starts (fencing the first), and
// publishes everything; then the first resumes. None of the first's
// records may be visible to read_committed, it must not commit, and it
// must stop with ErrFenced.
func TestZombieFenced(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		store := newMemStore(t)
		appendEvents(t, store, 500, 3000, 200, 1)
		cfg := testConfig(t, tg, store)

		paused := make(chan TxnInfo, 1)
		resume := make(chan struct{})
		var zombieCommits atomic.Int64
		zcfg := cfg
		zcfg.Hooks.BeforeCommit = func(_ context.Context, ti TxnInfo) {
			select {
			case paused <- ti:
				<-resume
			default:
			}
		}
		zcfg.Hooks.AfterCommit = func(context.Context, TxnInfo) { zombieCommits.Add(1) }
		zombie, err := New(zcfg)
		if err != nil {
			t.Fatal(err)
		}
		zctx, zcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer zcancel()
		zdone := make(chan error, 1)
		go func() { zdone <- zombie.Run(zctx) }()

		var zt TxnInfo
		select {
		case zt = <-paused:
		case err := <-zdone:
			t.Fatalf("zombie ended before pausing: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("zombie never reached its commit")
		}
		t.Logf("%s: zombie paused before committing positions %d..%d (%d events) as producer %d epoch %d",
			tg.name, zt.FirstPosition, zt.LastPosition, zt.Events, zt.ProducerID, zt.ProducerEpoch)

		// The successor fences the zombie and publishes everything.
		scfg := cfg
		scfg.Registerer = nil
		successor, stop := runBridge(t, scfg)
		appendEvents(t, store, 500, 1000, 200, 2)
		waitPublished(t, successor, head(t, store), time.Minute)

		close(resume)
		var zerr error
		select {
		case zerr = <-zdone:
		case <-time.After(time.Minute):
			t.Fatal("zombie did not stop after resuming")
		}
		if err := stop(); err != nil {
			t.Fatalf("successor: %v", err)
		}

		c := consumeCommitted(t, cfg)
		h := head(t, store)
		zombieVisible := c.producers[[2]int64{zt.ProducerID, int64(zt.ProducerEpoch)}]
		r := verify(t, cfg)
		t.Logf("%s: zombie stopped with %v; zombie commits %d, zombie records visible %d; events %d, records %d, missing %d, duplicates %d, out of order %d",
			tg.name, zerr, zombieCommits.Load(), zombieVisible, h, c.records, c.missing(t, store, h), c.duplicates(), c.outOfOrder)
		if !errors.Is(zerr, ErrFenced) {
			t.Errorf("zombie Run = %v, want ErrFenced", zerr)
		}
		if zombieCommits.Load() != 0 || zombieVisible != 0 {
			t.Errorf("zombie committed %d transactions, %d of its records visible; want 0, 0", zombieCommits.Load(), zombieVisible)
		}
		if !r.OK() || c.records != int(h) || c.duplicates() != 0 {
			t.Errorf("not exactly once after the zombie:\n%s", r)
		}
	})
}
