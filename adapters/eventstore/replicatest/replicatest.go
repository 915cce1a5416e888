// Package replicatest is the conformance suite of event.ReplicaAppender:
// every store that can hold replicas of another region's events runs it.
//
//	func TestReplicaConformance(t *testing.T) {
//		replicatest.Run(t, func(t *testing.T) replicatest.Store { return open(t) })
//	}
//
// open is called once per subtest and must return a new, empty store that
// cleans itself up. Events are produced by an in-memory origin store, so the
// replica receives exactly what a real region's store would seal.
package replicatest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain/event"
)

// Store is what the suite needs of a replica store.
type Store interface {
	event.Store
	event.ReplicaAppender
}

// Run runs every subtest against stores made by open.
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"CopiesEnvelopesExactly", testCopies},
		{"RedeliveryIsSkipped", testRedelivery},
		{"GapRefused", testGap},
		{"DivergedHistoryRefused", testConflict},
		{"TamperedContentRefused", testTampered},
		{"BatchIsAtomic", testAtomic},
		{"LocalAppendsChainOnReplicas", testLocalAfterReplica},
		{"IDTakenLocallyRefused", testIDTaken},
		{"InterleavedWithLocalAppends", testInterleaved},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// origin is a region's store that writes the events to replicate.
type origin struct {
	t    *testing.T
	s    *memory.Store
	name string
	n    int
}

var origins int

func newOrigin(t *testing.T) *origin {
	origins++
	clock := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	s := memory.New(memory.Config{Now: func() time.Time { clock = clock.Add(time.Millisecond); return clock }})
	t.Cleanup(func() { s.Close() })
	return &origin{t: t, s: s, name: fmt.Sprintf("origin%d", origins)}
}

// write appends n events to stream and returns them as stored.
func (o *origin) write(stream string, n int) []event.Envelope {
	o.t.Helper()
	props := make([]event.Proposed, n)
	for i := range props {
		o.n++
		props[i] = event.Proposed{
			ID: fmt.Sprintf("%s-%s-%d", o.name, stream, o.n), Type: "test.happened.v1", SchemaVersion: 1,
			Data:     []byte(fmt.Sprintf(`{"n":%d}`, o.n)),
			Metadata: event.Metadata{Tenant: "t1", CorrelationID: "c", CausationID: "k", Actor: "a", Region: "origin"},
		}
	}
	res, err := o.s.Append(ctx(o.t), stream, event.Any, props)
	if err != nil {
		o.t.Fatalf("origin append: %v", err)
	}
	out, err := o.s.ReadStream(ctx(o.t), stream, res.FirstVersion, n)
	if err != nil {
		o.t.Fatalf("origin read: %v", err)
	}
	return out
}

func replicate(t *testing.T, s Store, evs ...event.Envelope) event.ReplicaResult {
	t.Helper()
	res, err := s.AppendReplicated(ctx(t), evs)
	if err != nil {
		t.Fatalf("AppendReplicated: %v", err)
	}
	return res
}

func refused(t *testing.T, s Store, want error, evs ...event.Envelope) *event.ReplicaError {
	t.Helper()
	before, _ := s.Head(ctx(t))
	_, err := s.AppendReplicated(ctx(t), evs)
	var re *event.ReplicaError
	if !errors.As(err, &re) || !errors.Is(err, want) {
		t.Fatalf("AppendReplicated: got %v, want a *ReplicaError wrapping %v", err, want)
	}
	if after, _ := s.Head(ctx(t)); after != before {
		t.Fatalf("refused batch moved the head %d -> %d", before, after)
	}
	return re
}

// verifyChains checks both hash chains of the whole store.
func verifyChains(t *testing.T, s Store) []event.Envelope {
	t.Helper()
	all, err := s.ReadAll(ctx(t), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var prev event.Hash
	heads := map[string]event.Envelope{}
	for i := range all {
		e := &all[i]
		if err := event.VerifyGlobalLink(prev, uint64(i), e); err != nil {
			t.Fatalf("global chain: %v", err)
		}
		prev = e.GlobalHash
		h := heads[e.StreamID]
		if err := event.VerifyStreamLink(h.Hash, h.Version, e); err != nil {
			t.Fatalf("stream chain: %v", err)
		}
		heads[e.StreamID] = *e
	}
	return all
}

func sameEvent(t *testing.T, got, want event.Envelope) {
	t.Helper()
	if got.ID != want.ID || got.StreamID != want.StreamID || got.Type != want.Type || got.SchemaVersion != want.SchemaVersion ||
		string(got.Data) != string(want.Data) || got.Metadata != want.Metadata || !got.RecordedAt.Equal(want.RecordedAt) ||
		got.Version != want.Version || got.PrevHash != want.PrevHash || got.Hash != want.Hash {
		t.Fatalf("replica differs from origin:\n got %+v\nwant %+v", got, want)
	}
}

func testCopies(t *testing.T, s Store) {
	o := newOrigin(t)
	a := o.write("order-a", 3)
	b := o.write("order-b", 2)
	a2 := o.write("order-a", 1)
	batch := append(append(append([]event.Envelope{}, a...), b...), a2...)
	res := replicate(t, s, batch...)
	if res.Appended != 6 || res.Skipped != 0 || res.LastPosition != 6 {
		t.Fatalf("result %+v, want 6 appended at 1..6", res)
	}
	all := verifyChains(t, s)
	if len(all) != 6 {
		t.Fatalf("%d events stored, want 6", len(all))
	}
	for i := range all {
		sameEvent(t, all[i], batch[i])
	}
	got, err := s.ReadStream(ctx(t), "order-a", 1, 0)
	if err != nil || len(got) != 4 {
		t.Fatalf("read order-a: %d events, %v", len(got), err)
	}
	t.Logf("6 replicated events kept ID, version, RecordedAt, metadata and hash; both chains verify")
}

func testRedelivery(t *testing.T, s Store) {
	o := newOrigin(t)
	evs := o.write("order-a", 4)
	replicate(t, s, evs[:2]...)
	res := replicate(t, s, evs...) // overlaps: 2 again, 2 new
	if res.Appended != 2 || res.Skipped != 2 {
		t.Fatalf("result %+v, want 2 appended, 2 skipped", res)
	}
	res = replicate(t, s, evs...)
	if res.Appended != 0 || res.Skipped != 4 || res.LastPosition != 0 {
		t.Fatalf("result %+v, want all 4 skipped", res)
	}
	if h, _ := s.Head(ctx(t)); h != 4 {
		t.Fatalf("head %d, want 4", h)
	}
	verifyChains(t, s)
}

func testGap(t *testing.T, s Store) {
	o := newOrigin(t)
	evs := o.write("order-a", 3)
	re := refused(t, s, event.ErrReplicaGap, evs[1:]...)
	if re.Index != 0 || re.Version != 2 {
		t.Fatalf("refused %+v, want the first event (v2)", re)
	}
	replicate(t, s, evs[0])
	refused(t, s, event.ErrReplicaGap, evs[2])
	replicate(t, s, evs[1:]...)
	verifyChains(t, s)
}

func testConflict(t *testing.T, s Store) {
	o1, o2 := newOrigin(t), newOrigin(t)
	a := o1.write("order-a", 2)
	other := o2.write("order-a", 3) // another history of the same stream, other IDs
	replicate(t, s, a...)
	refused(t, s, event.ErrReplicaConflict, other[1]) // v2 is taken
	refused(t, s, event.ErrReplicaConflict, other[2]) // v3 does not link to our v2
	verifyChains(t, s)
}

func testTampered(t *testing.T, s Store) {
	o := newOrigin(t)
	evs := o.write("order-a", 1)
	bad := evs[0]
	bad.Data = []byte(`{"n":999}`)
	refused(t, s, event.ErrReplicaConflict, bad)
	bad = evs[0]
	bad.Metadata.Region = "elsewhere"
	refused(t, s, event.ErrReplicaConflict, bad)
}

func testAtomic(t *testing.T, s Store) {
	o := newOrigin(t)
	a := o.write("order-a", 1)
	b := o.write("order-b", 3)
	re := refused(t, s, event.ErrReplicaGap, a[0], b[0], b[2])
	if re.Index != 2 {
		t.Fatalf("refused index %d, want 2", re.Index)
	}
	if got, _ := s.ReadStream(ctx(t), "order-a", 1, 0); len(got) != 0 {
		t.Fatalf("order-a has %d events after a refused batch", len(got))
	}
}

func testLocalAfterReplica(t *testing.T, s Store) {
	o := newOrigin(t)
	evs := o.write("order-a", 2)
	replicate(t, s, evs...)
	res, err := s.Append(ctx(t), "order-a", event.Exact(2), []event.Proposed{{
		ID: "local-1", Type: "test.happened.v1", SchemaVersion: 1, Data: []byte(`{}`),
		Metadata: event.Metadata{Region: "replica"},
	}})
	if err != nil || res.FirstVersion != 3 {
		t.Fatalf("local append after replicas: %+v, %v", res, err)
	}
	all := verifyChains(t, s)
	if all[2].PrevHash != evs[1].Hash {
		t.Fatal("local event does not chain on the replicated head")
	}
	// The origin's next event now conflicts: this store took version 3.
	next := o.write("order-a", 1)
	refused(t, s, event.ErrReplicaConflict, next...)
}

func testIDTaken(t *testing.T, s Store) {
	o := newOrigin(t)
	evs := o.write("order-a", 1)
	if _, err := s.Append(ctx(t), "order-z", event.NoStream, []event.Proposed{{
		ID: evs[0].ID, Type: "test.happened.v1", SchemaVersion: 1, Data: []byte(`{}`),
	}}); err != nil {
		t.Fatal(err)
	}
	refused(t, s, event.ErrReplicaConflict, evs...)
}

func testInterleaved(t *testing.T, s Store) {
	o := newOrigin(t)
	done := make(chan error, 1)
	go func() {
		for i := range 50 {
			if _, err := s.Append(ctx(t), fmt.Sprintf("local-%d", i%5), event.Any, []event.Proposed{{
				ID: fmt.Sprintf("l%d", i), Type: "test.happened.v1", SchemaVersion: 1, Data: []byte(`{}`),
			}}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range 50 {
		replicate(t, s, o.write(fmt.Sprintf("order-%d", i%7), 2)...)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if all := verifyChains(t, s); len(all) != 150 {
		t.Fatalf("%d events, want 150", len(all))
	}
}
