package regions_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/regions"
)

// skewClock is time.Now plus an offset the test moves (a paused process
// sees its monotonic clock jump).
type skewClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *skewClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *skewClock) Jump(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

const testTTL = 900 * time.Millisecond

func newLeases(t *testing.T, cp *regions.ControlPlane, region string, store event.HeadReader, clock *skewClock) *regions.Leases {
	t.Helper()
	l, err := regions.NewLeases(regions.LeasesConfig{
		Store: cp, Region: region, TTL: testTTL, Poll: 50 * time.Millisecond, Now: clock.Now,
		Head: store.Head,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func sqliteCP(t *testing.T) *regions.ControlPlane {
	return openCP(t, "sqlite:"+filepath.Join(t.TempDir(), "cp.db"))
}

func prop(id string) []event.Proposed {
	return []event.Proposed{{ID: id, Type: "test.happened.v1", SchemaVersion: 1, Data: []byte(`{}`), Metadata: event.Metadata{Region: "forged"}}}
}

// hookAppender runs a hook in the middle of every append.
type hookAppender struct {
	next event.Appender
	hook func()
}

func (h *hookAppender) Append(ctx context.Context, s string, ev event.ExpectedVersion, p []event.Proposed) (event.AppendResult, error) {
	if h.hook != nil {
		h.hook()
	}
	return h.next.Append(ctx, s, ev, p)
}

func TestFencedAppender(t *testing.T) {
	ctx := t.Context()
	cp := sqliteCP(t)
	topo := testTopology()
	store := memory.New(memory.Config{})
	clock := &skewClock{}
	leases := newLeases(t, cp, "r1", store, clock)
	hook := &hookAppender{next: store}
	fa := regions.NewFencedAppender(hook, topo, "r1", leases)
	mine, theirs := "order-"+regions.EntityID("h1", "1"), "order-"+regions.EntityID("h2", "1")

	var noe *regions.NotOwnerError
	if _, err := fa.Append(ctx, mine, event.Any, prop("a")); !errors.As(err, &noe) {
		t.Fatalf("before the lease is taken: %v", err)
	}
	leases.Refresh(ctx)
	if _, err := fa.Append(ctx, mine, event.Any, prop("b")); err != nil {
		t.Fatal(err)
	}
	got, _ := store.ReadStream(ctx, mine, 1, 0)
	if len(got) != 1 || got[0].Metadata.Region != "r1" {
		t.Fatalf("stored %+v, want one event stamped with region r1", got)
	}
	if _, err := fa.Append(ctx, theirs, event.Any, prop("c")); !errors.As(err, &noe) || noe.Owner != "r2" {
		t.Fatalf("a stream of r2's home: %v", err)
	}

	t.Run("PausedProcessRefusesAtOnce", func(t *testing.T) {
		clock.Jump(testTTL) // SIGSTOP for a TTL: the keeper had no chance to notice
		defer clock.Jump(-testTTL)
		if _, err := fa.Append(ctx, mine, event.Any, prop("d")); !errors.Is(err, regions.ErrNotOwner) {
			t.Fatalf("after a pause longer than the lease: %v", err)
		}
	})
	t.Run("LeaseLapsesDuringAppend", func(t *testing.T) {
		hook.hook = func() { clock.Jump(testTTL) }
		defer func() { hook.hook = nil; clock.Jump(-testTTL) }()
		if _, err := fa.Append(ctx, mine, event.Any, prop("e")); !errors.Is(err, regions.ErrOwnershipLost) {
			t.Fatalf("lease lapsed during the append: %v (must not be acknowledged)", err)
		}
	})
	t.Run("DrainWaitsForWritesInFlight", func(t *testing.T) {
		leases.Refresh(ctx)
		entered, release := make(chan struct{}), make(chan struct{})
		hook.hook = func() { close(entered); <-release }
		done := make(chan error, 1)
		go func() { _, err := fa.Append(ctx, mine, event.Any, prop("f")); done <- err }()
		<-entered
		hook.hook = nil
		drained := make(chan error, 1)
		go func() { _, err := leases.Drain(ctx, "h1"); drained <- err }()
		select {
		case err := <-drained:
			t.Fatalf("drain returned with a write in flight: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := fa.Append(ctx, mine, event.Any, prop("g")); !errors.Is(err, regions.ErrNotOwner) {
			t.Fatalf("new write while draining: %v", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("write in flight: %v", err)
		}
		if err := <-drained; err != nil {
			t.Fatal(err)
		}
		leases.Reopen("h1")
	})
	t.Run("FencedAfterForcedTransfer", func(t *testing.T) {
		leases.Refresh(ctx)
		o := owner(t, cp, "h1")
		time.Sleep(testTTL + 100*time.Millisecond) // the keeper is "paused": no renewals
		if _, err := cp.Transfer(ctx, "h1", o.Epoch, "r2", true, "forced"); err != nil {
			t.Fatal(err)
		}
		leases.Refresh(ctx) // the process wakes up
		if !leases.Fenced() {
			t.Fatal("keeper did not notice it was fenced")
		}
		if _, err := fa.Append(ctx, mine, event.Any, prop("h")); !errors.Is(err, regions.ErrNotOwner) {
			t.Fatalf("fenced process wrote: %v", err)
		}
		// Even if the home comes back to r1, this process takes nothing
		// until it restarts (and reconciles its log).
		if err := cp.SetCut(ctx, "h1", o.Epoch, 1); err != nil {
			t.Fatal(err)
		}
		if err := cp.Activate(ctx, "h1", o.Epoch+1); err != nil {
			t.Fatal(err)
		}
		if err := cp.Release(ctx, "h1", o.Epoch+1, "r2", "", 0); err != nil {
			t.Fatal(err)
		}
		e3, err := cp.Transfer(ctx, "h1", o.Epoch+1, "r1", false, "failback")
		if err != nil {
			t.Fatal(err)
		}
		if err := cp.Activate(ctx, "h1", e3); err != nil {
			t.Fatal(err)
		}
		leases.Refresh(ctx)
		if _, err := fa.Append(ctx, mine, event.Any, prop("i")); !errors.Is(err, regions.ErrNotOwner) {
			t.Fatalf("fenced process took the home back without restarting: %v", err)
		}
	})
	t.Logf("fence stats %+v", fa.Stats())
}

func TestValidatorAndStaleTail(t *testing.T) {
	ctx := t.Context()
	cp := sqliteCP(t)
	topo := testTopology()
	log := memory.New(memory.Config{})
	write := func(region, stream, id string) uint64 {
		p := prop(id)
		p[0].Metadata.Region = region
		res, err := log.Append(ctx, stream, event.Any, p)
		if err != nil {
			t.Fatal(err)
		}
		return res.LastPosition
	}
	h1 := func(n int) string { return fmt.Sprintf("order-%s", regions.EntityID("h1", fmt.Sprint(n))) }
	if _, err := cp.Acquire(ctx, "h1", 1, "r1", "p", 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	write("r1", h1(1), "a")          // 1: valid
	write("r2", "order-h2.1", "rep") // 2: a replica
	p3 := write("r1", h1(2), "b")    // 3: valid, the cut
	write("r1", h1(3), "c")          // 4: beyond the cut: stale
	write("r3", "order-h3.1", "rep2")
	write("r1", h1(4), "d") // 6: stale

	v := regions.NewValidator(cp, topo)
	if vd, err := v.Check(ctx, "r1", 4, h1(3), time.Now()); err != nil || !vd.OK {
		t.Fatalf("while epoch 1 is open, position 4 is valid: %+v %v", vd, err)
	}
	// A handover at cut 3 (a forced one is refused while the lease is held).
	if _, err := cp.Transfer(ctx, "h1", 1, "r2", true, "forced"); !errors.Is(err, regions.ErrLeaseHeld) {
		t.Fatal(err)
	}
	if err := cp.Release(ctx, "h1", 1, "r1", "p", p3); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Transfer(ctx, "h1", 1, "r2", false, "planned"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		origin string
		pos    uint64
		ok     bool
	}{{"r1", 1, true}, {"r1", 3, true}, {"r1", 4, false}, {"r2", 1, false}, {"r3", 1, false}} {
		vd, err := v.Check(ctx, c.origin, c.pos, h1(9), time.Now())
		if err != nil || vd.OK != c.ok {
			t.Fatalf("%s@%d: %+v %v, want ok=%v", c.origin, c.pos, vd, err, c.ok)
		}
	}
	tail, err := regions.FindStaleTail(ctx, v, "r1", log)
	if err != nil {
		t.Fatal(err)
	}
	if tail.Cut != 3 || tail.FirstStale != 4 || len(tail.Events) != 2 || tail.Events[1].ID != "d" {
		t.Fatalf("stale tail %+v", tail)
	}
	t.Logf("r1's log after its cut at 3: stale events at 4 and 6 found (%d), replica at 5 kept", len(tail.Events))
}
