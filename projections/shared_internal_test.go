package projections

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/livecore/livecore/domain/event"
)

type testEvent struct {
	N int `json:"n"`
}

func (*testEvent) EventType() string { return "test.happened.v1" }

func testEnvelopes(n int) []event.Envelope {
	out := make([]event.Envelope, n)
	for i := range out {
		data, _ := json.Marshal(testEvent{N: i + 1})
		out[i] = event.Envelope{ID: "ev-" + string(rune('a'+i%26)) + "-" + string(data), StreamID: "test-1", Type: "test.happened.v1", Data: data, Position: uint64(i + 1)}
	}
	return out
}

// TestDecodeCache checks that concurrent decoders of the same events get
// one shared value per event, decoded once; that a slot is not trusted for
// another registry, event ID or position (ring wrap); and that decoding
// ahead never blocks on another's claim.
func TestDecodeCache(t *testing.T) {
	reg := event.NewRegistry()
	reg.Register(func() event.Event { return &testEvent{} })
	evs := testEnvelopes(1000)
	c := newDecodeCache(1024)
	var wg sync.WaitGroup
	got := make([][]event.Event, 8)
	for g := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.predecode(decodingFunc(func(*event.Envelope) *event.Registry { return reg }), evs)
			for i := range evs {
				ev, err := c.decode(reg, &evs[i], false)
				if err != nil {
					t.Error(err)
					return
				}
				got[g] = append(got[g], ev)
			}
		}()
	}
	wg.Wait()
	for i := range evs {
		if got[0][i].(*testEvent).N != i+1 {
			t.Fatalf("position %d decoded as %+v", i+1, got[0][i])
		}
		for g := range got {
			if got[g][i] != got[0][i] {
				t.Fatalf("position %d: decoders got different values", i+1)
			}
		}
	}
	if m := c.misses.Load(); m != uint64(len(evs)) {
		t.Fatalf("%d decodes for %d events", m, len(evs))
	}
	// Another registry, another event at the position, a wrapped position.
	reg2 := event.NewRegistry()
	reg2.Register(func() event.Event { return &testEvent{} })
	if ev, _ := c.decode(reg2, &evs[5], false); ev == got[0][5] {
		t.Fatal("a slot was trusted for another registry")
	}
	other := evs[6]
	other.ID, other.Data = "other", []byte(`{"n":-1}`)
	if ev, _ := c.decode(reg2, &other, false); ev.(*testEvent).N != -1 {
		t.Fatalf("a slot was trusted for another event: %+v", ev)
	}
	wrapped := evs[7]
	wrapped.Position += 1024
	wrapped.Data = []byte(`{"n":-2}`)
	if ev, _ := c.decode(reg, &wrapped, false); ev.(*testEvent).N != -2 {
		t.Fatalf("a slot was trusted for another position: %+v", ev)
	}
	// A decode error is returned, not hidden.
	bad := evs[8]
	bad.Position, bad.ID, bad.Data = 5000, "bad", []byte(`{"n":"x"}`)
	if _, err := c.decode(reg, &bad, false); err == nil {
		t.Fatal("no error for undecodable data")
	}
	var nilCache *decodeCache
	if ev, err := nilCache.decode(reg, &evs[0], false); err != nil || ev.(*testEvent).N != 1 {
		t.Fatalf("without a cache: %v, %v", ev, err)
	}
}

type decodingFunc func(*event.Envelope) *event.Registry

func (decodingFunc) Name() string                                      { return "f" }
func (decodingFunc) Version() int                                      { return 1 }
func (decodingFunc) Tables() []Table                                   { return nil }
func (decodingFunc) Apply(context.Context, Tx, []event.Envelope) error { return nil }
func (f decodingFunc) Decodes(e *event.Envelope) *event.Registry       { return f(e) }

type countingReader struct {
	evs   []event.Envelope
	reads atomic.Int64
}

func (r *countingReader) ReadAll(_ context.Context, from uint64, limit int) ([]event.Envelope, error) {
	r.reads.Add(1)
	if from < 1 || from > uint64(len(r.evs)) {
		return nil, nil
	}
	out := r.evs[from-1:]
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return append([]event.Envelope(nil), out...), nil
}

// TestReadCache checks that concurrent readers of a full batch read the
// source once and get the same events, and that a partial batch (the head
// may still grow) is never served from the cache.
func TestReadCache(t *testing.T) {
	src := &countingReader{evs: testEnvelopes(250)}
	c := newReadCache(src, 2)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for from := uint64(1); from <= 250; from += 100 {
				b, err := c.ReadAll(context.Background(), from, 100)
				if err != nil || len(b) == 0 || b[0].Position != from || b[len(b)-1].Position != min(from+99, 250) {
					t.Errorf("from %d: %d events, %v", from, len(b), err)
				}
			}
		}()
	}
	wg.Wait()
	// 2 full batches read once each; the partial one by every reader.
	if n := src.reads.Load(); n != 2+6 {
		t.Fatalf("%d source reads, want 8", n)
	}
	if h := c.hits.Load(); h != 2*5 {
		t.Fatalf("%d shared batches, want 10", h)
	}
	// Two batches are kept, the oldest dropped first.
	read := func(from uint64, wantReads int64) {
		t.Helper()
		if _, err := c.ReadAll(context.Background(), from, 100); err != nil || src.reads.Load() != wantReads {
			t.Fatalf("from %d: %d source reads (want %d), %v", from, src.reads.Load(), wantReads, err)
		}
	}
	read(1, 8)   // kept
	read(51, 9)  // a third full batch: the one from 1 goes
	read(101, 9) // kept
	read(1, 10)  // dropped: read again
}

// TestDecodeCacheRelease checks that a decoded event stays shared until
// every projection that decodes it has applied it, and is then let go: its
// slot is empty, and a late decode (a rebuild) gets a correct value of its
// own. A projection that does not decode an event does not count for it.
func TestDecodeCacheRelease(t *testing.T) {
	reg := event.NewRegistry()
	reg.Register(func() event.Event { return &testEvent{} })
	evs := testEnvelopes(10)
	even := func(e *event.Envelope) *event.Registry {
		if e.Position%2 == 0 {
			return reg
		}
		return nil
	}
	all, evenOnly := decodingFunc(func(*event.Envelope) *event.Registry { return reg }), decodingFunc(even)
	c := newDecodeCache(16)
	c.users = projectionUsers([]Projection{all, evenOnly, plain{}})
	held := func() (n int) {
		for i := range c.slots {
			if c.slots[i].Load() != nil {
				n++
			}
		}
		return n
	}
	c.predecode(all, evs)
	c.predecode(evenOnly, evs)
	first, err := c.decode(reg, &evs[1], false)
	if err != nil {
		t.Fatal(err)
	}
	if n := held(); n != 10 {
		t.Fatalf("%d slots held after decoding 10 events", n)
	}
	c.release(all, evs)
	// The odd positions had one user; the even ones wait for evenOnly.
	if n := held(); n != 5 {
		t.Fatalf("%d slots held after the first projection applied the batch, want the 5 even ones", n)
	}
	if again, _ := c.decode(reg, &evs[1], false); again != first {
		t.Fatal("an event another projection still needs was not shared")
	}
	c.release(evenOnly, evs)
	if n := held(); n != 0 {
		t.Fatalf("%d slots held after every projection applied the batch", n)
	}
	misses := c.misses.Load()
	late, err := c.decode(reg, &evs[1], false)
	if err != nil || late == first || late.(*testEvent).N != 2 {
		t.Fatalf("late decode: %+v (shared %v), %v", late, late == first, err)
	}
	if c.misses.Load() != misses+1 {
		t.Fatal("a late decode was not counted as a decode")
	}
	// Without users (no runner), events stay until their slot is reused.
	keep := newDecodeCache(16)
	keep.predecode(all, evs)
	keep.release(all, evs)
	for i := range evs {
		if keep.slots[evs[i].Position&keep.mask].Load() == nil {
			t.Fatalf("position %d let go without a count of users", evs[i].Position)
		}
	}
}

type plain struct{}

func (plain) Name() string                                      { return "plain" }
func (plain) Version() int                                      { return 1 }
func (plain) Tables() []Table                                   { return nil }
func (plain) Apply(context.Context, Tx, []event.Envelope) error { return nil }
