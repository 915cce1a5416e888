package replicate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/adapters/kafka"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/regions"
	"github.com/livecore/livecore/regions/replicate"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type region struct {
	name   string
	store  *pebble.Store
	bridge *kafka.Bridge
	rep    *replicate.Replicator
	leases *regions.Leases
	fa     *regions.FencedAppender
}

func topo() regions.Topology {
	return regions.Topology{
		Regions: []regions.Region{{Name: "a", URL: "http://a"}, {Name: "b", URL: "http://b"}},
		Homes:   []regions.Home{{Name: "ha", Region: "a"}, {Name: "hb", Region: "b"}},
	}
}

func start(t *testing.T, ctx context.Context, name string, brokers []string, cp *regions.ControlPlane) *region {
	t.Helper()
	store, err := pebble.Open(pebble.Config{Dir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	r := &region{name: name, store: store}
	r.bridge, err = kafka.New(kafka.Config{
		Source: store, Brokers: brokers, Region: name,
		Topics:       kafka.Topics{Prefix: name + ".livecore.", Partitions: 2},
		MaxDelay:     10 * time.Millisecond,
		RetryBackoff: 20 * time.Millisecond, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	peers := []string{"a", "b"}
	if name == "a" {
		peers = peers[1:]
	} else {
		peers = peers[:1]
	}
	r.rep, err = replicate.New(replicate.Config{
		Store: store, Brokers: brokers, Region: name, Peers: peers,
		Checker: regions.NewValidator(cp, topo()), OffsetsFile: filepath.Join(t.TempDir(), "offsets.json"),
		Discover: 100 * time.Millisecond, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.leases, err = regions.NewLeases(regions.LeasesConfig{Store: cp, Region: name, Head: store.Head, TTL: 900 * time.Millisecond, Poll: 50 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	r.fa = regions.NewFencedAppender(store, topo(), name, r.leases)
	// The loops must end before the store closes and the temporary dirs
	// are removed (cleanups run last-registered first).
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.bridge.Run(ctx) })
	wg.Go(func() { _ = r.rep.Run(ctx) })
	wg.Go(func() { _ = r.leases.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
}

func write(t *testing.T, ctx context.Context, r *region, stream string, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%s-%d", r.name, stream, i)
		var err error
		for try := 0; try < 100; try++ {
			if _, err = r.fa.Append(ctx, stream, event.Any, []event.Proposed{{ID: id, Type: "test.happened.v1", SchemaVersion: 1, Data: []byte(`{}`)}}); !errors.Is(err, regions.ErrNotOwner) {
				break
			}
			time.Sleep(20 * time.Millisecond) // lease not taken yet
		}
		if err != nil {
			t.Fatalf("%s writes %s: %v", r.name, stream, err)
		}
	}
}

// TestReplicationBothWays: two regions on kfake each write their home's
// streams; each ends up with the other's events with identical stream
// hashes, and CaughtUp returns once everything published is applied.
func TestReplicationBothWays(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	kf, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close) // after the regions' loops stop (cleanups run last-registered first)
	cp, err := regions.OpenControlPlane(ctx, "sqlite:"+filepath.Join(t.TempDir(), "cp.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.Bootstrap(ctx, topo()); err != nil {
		t.Fatal(err)
	}
	a := start(t, ctx, "a", kf.ListenAddrs(), cp)
	b := start(t, ctx, "b", kf.ListenAddrs(), cp)
	for i := range 5 {
		write(t, ctx, a, fmt.Sprintf("order-ha.%d", i), 20)
		write(t, ctx, b, fmt.Sprintf("order-hb.%d", i), 10)
	}
	// A stream of a's home written by b is refused at the source.
	if _, err := b.fa.Append(ctx, "order-ha.x", event.Any, []event.Proposed{{ID: "x", Type: "test.happened.v1", SchemaVersion: 1, Data: []byte(`{}`)}}); !errors.Is(err, regions.ErrNotOwner) {
		t.Fatalf("b wrote a's home: %v", err)
	}
	for _, r := range []*region{a, b} {
		head, _ := r.store.Head(ctx)
		wctx, c := context.WithTimeout(ctx, 20*time.Second)
		if err := r.bridge.WaitPublished(wctx, head); err != nil {
			t.Fatalf("%s publish: %v", r.name, err)
		}
		c()
	}
	cctx, c := context.WithTimeout(ctx, 20*time.Second)
	defer c()
	if err := b.rep.CaughtUp(cctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := a.rep.CaughtUp(cctx, "b"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		for _, s := range []string{fmt.Sprintf("order-ha.%d", i), fmt.Sprintf("order-hb.%d", i)} {
			x, _ := a.store.ReadStream(ctx, s, 1, 0)
			y, _ := b.store.ReadStream(ctx, s, 1, 0)
			if len(x) == 0 || len(x) != len(y) || x[len(x)-1].Hash != y[len(y)-1].Hash {
				t.Fatalf("stream %s: a has %d events, b %d, heads differ", s, len(x), len(y))
			}
		}
	}
	ha, _ := a.store.Head(ctx)
	hb, _ := b.store.Head(ctx)
	if ha != 150 || hb != 150 {
		t.Fatalf("heads a=%d b=%d, want 150 each", ha, hb)
	}
	st := b.rep.Status()
	t.Logf("a and b hold the same 150 events, stream heads equal; b from a: %+v", st[0])
	if st[0].Rejected != 0 || st[0].LagEvents != 0 {
		t.Fatalf("status %+v", st[0])
	}
}

// TestStaleOwnerWriteRejected: after a handover of a's home to b at a cut,
// an event a writes anyway (a process that bypassed its fence, or a
// returning old owner that was not reconciled) reaches Kafka through a's
// bridge and is rejected by b's replicator: 0 stale writes accepted.
func TestStaleOwnerWriteRejected(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	kf, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close) // after the regions' loops stop (cleanups run last-registered first)
	cp, err := regions.OpenControlPlane(ctx, "sqlite:"+filepath.Join(t.TempDir(), "cp.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.Bootstrap(ctx, topo()); err != nil {
		t.Fatal(err)
	}
	a := start(t, ctx, "a", kf.ListenAddrs(), cp)
	b := start(t, ctx, "b", kf.ListenAddrs(), cp)
	write(t, ctx, a, "order-ha.1", 3)

	// Planned handover of ha: drain, publish, release at the cut, transfer.
	epoch, err := a.leases.Drain(ctx, "ha")
	if err != nil {
		t.Fatal(err)
	}
	cut, _ := a.store.Head(ctx)
	wctx, c := context.WithTimeout(ctx, 20*time.Second)
	defer c()
	if err := a.bridge.WaitPublished(wctx, cut); err != nil {
		t.Fatal(err)
	}
	if err := a.leases.Release(ctx, "ha", epoch, cut); err != nil {
		t.Fatal(err)
	}
	e2, err := cp.Transfer(ctx, "ha", epoch, "b", false, "planned")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.rep.CaughtUp(wctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := cp.Activate(ctx, "ha", e2); err != nil {
		t.Fatal(err)
	}
	// The old owner writes behind its fence's back.
	if _, err := a.store.Append(ctx, "order-ha.1", event.Exact(3), []event.Proposed{{ID: "stale", Type: "test.happened.v1", SchemaVersion: 1, Data: []byte(`{}`), Metadata: event.Metadata{Region: "a"}}}); err != nil {
		t.Fatal(err)
	}
	// The new owner writes the same stream.
	write(t, ctx, b, "order-ha.1", 2)
	head, _ := a.store.Head(ctx)
	if err := a.bridge.WaitPublished(wctx, head); err != nil {
		t.Fatal(err)
	}
	if err := b.rep.CaughtUp(wctx, "a"); err != nil {
		t.Fatal(err)
	}
	got, _ := b.store.ReadStream(ctx, "order-ha.1", 1, 0)
	if len(got) != 5 || got[3].Metadata.Region != "b" {
		t.Fatalf("b's order-ha.1: %d events, v4 by %q", len(got), got[3].Metadata.Region)
	}
	st := b.rep.Status()[0]
	if st.Rejected != 1 || len(st.Rejections) != 1 || st.Rejections[0].ID != "stale" {
		t.Fatalf("b from a: %+v", st)
	}
	t.Logf("stale write by the old owner rejected by b: %s", st.Rejections[0].Reason)
}
