// Package storetest is the event store conformance suite: one set of tests
// that every event.Store implementation (in-memory, Pebble, ...) must pass.
//
// Run it from an implementation's own test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) event.Store {
//			s, err := pebble.Open(pebble.Config{Dir: t.TempDir()})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// open is called once per subtest with that subtest's t and must return a
// new, empty store; it should register its own cleanup. The suite calls
// Close itself only in the Close subtest, so Close must be idempotent.
// Each concurrency subtest logs its figures with t.Logf (see -v).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livecore/livecore/domain/event"
)

// Run runs every conformance subtest against stores made by open.
func Run(t *testing.T, open func(t *testing.T) event.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s event.Store)
	}{
		{"AppendAndReadStream", testAppendAndReadStream},
		{"ReadAllFromPositions", testReadAllFromPositions},
		{"ExpectedVersion", testExpectedVersion},
		{"InvalidAppend", testInvalidAppend},
		{"IdempotentRetry", testIdempotentRetry},
		{"GlobalOrder", testGlobalOrder},
		{"RecordedAtAndHashes", testRecordedAtAndHashes},
		{"SubscribeCatchUpThenLive", testSubscribe},
		{"HeadAndWaitHead", testHeadAndWaitHead},
		{"ConcurrentWritersExpectedVersion", testConcurrentWriters},
		{"ReadLimits", testReadLimits},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

const testType = "storetest.happened.v1"

// events proposes n events whose IDs derive from cmd, so proposing the same
// cmd twice yields the same IDs (a retried command).
func events(cmd string, n int) []event.Proposed {
	out := make([]event.Proposed, n)
	for i := range out {
		out[i] = event.Proposed{
			ID:            event.DeriveID(cmd, i),
			Type:          testType,
			SchemaVersion: 1,
			Data:          fmt.Appendf(nil, `{"cmd":%q,"i":%d}`, cmd, i),
			Metadata:      event.Metadata{Tenant: "t1", CorrelationID: cmd, CausationID: cmd, Actor: "storetest", Region: "r1"},
		}
	}
	return out
}

func ctxFor(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t testing.TB, s event.Store, stream string, exp event.ExpectedVersion, evs []event.Proposed) event.AppendResult {
	t.Helper()
	r, err := s.Append(ctxFor(t), stream, exp, evs)
	if err != nil {
		t.Fatalf("append %s (%s): %v", stream, exp, err)
	}
	return r
}

func readStream(t testing.TB, s event.Store, stream string) []event.Envelope {
	t.Helper()
	got, err := s.ReadStream(ctxFor(t), stream, 1, 0)
	if err != nil {
		t.Fatalf("read stream %s: %v", stream, err)
	}
	return got
}

func readAll(t testing.TB, s event.Store) []event.Envelope {
	t.Helper()
	got, err := s.ReadAll(ctxFor(t), 1, 0)
	if err != nil {
		t.Fatalf("read $all: %v", err)
	}
	return got
}

func head(t testing.TB, s event.Store) uint64 {
	t.Helper()
	h, err := s.Head(ctxFor(t))
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	return h
}

// sameEvent reports how a stored envelope differs from what was proposed.
func sameEvent(got event.Envelope, stream string, want event.Proposed) error {
	switch {
	case got.ID != want.ID:
		return fmt.Errorf("ID %s, want %s", got.ID, want.ID)
	case got.StreamID != stream:
		return fmt.Errorf("event %s: stream %q, want %q", got.ID, got.StreamID, stream)
	case got.Type != want.Type || got.SchemaVersion != want.SchemaVersion:
		return fmt.Errorf("event %s: type %s v%d, want %s v%d", got.ID, got.Type, got.SchemaVersion, want.Type, want.SchemaVersion)
	case !bytes.Equal(got.Data, want.Data):
		return fmt.Errorf("event %s: data %q, want %q", got.ID, got.Data, want.Data)
	case got.Metadata != want.Metadata:
		return fmt.Errorf("event %s: metadata %+v, want %+v", got.ID, got.Metadata, want.Metadata)
	}
	return nil
}

func sameEnvelope(a, b event.Envelope) bool {
	return a.ID == b.ID && a.StreamID == b.StreamID && a.Type == b.Type &&
		a.SchemaVersion == b.SchemaVersion && bytes.Equal(a.Data, b.Data) &&
		a.Metadata == b.Metadata && a.RecordedAt.Equal(b.RecordedAt) &&
		a.Version == b.Version && a.Position == b.Position &&
		a.PrevHash == b.PrevHash && a.Hash == b.Hash &&
		a.PrevGlobalHash == b.PrevGlobalHash && a.GlobalHash == b.GlobalHash
}

// verifyChains checks every stream chain and the global chain of all, which
// must be the whole $all log from position 1.
func verifyChains(t testing.TB, all []event.Envelope) {
	t.Helper()
	type link struct {
		v uint64
		h event.Hash
	}
	streams := map[string]link{}
	var prevGlobal event.Hash
	for i := range all {
		e := &all[i]
		if err := event.VerifyGlobalLink(prevGlobal, uint64(i), e); err != nil {
			t.Fatalf("global chain: %v", err)
		}
		prevGlobal = e.GlobalHash
		l := streams[e.StreamID]
		if err := event.VerifyStreamLink(l.h, l.v, e); err != nil {
			t.Fatalf("stream chain: %v", err)
		}
		streams[e.StreamID] = link{e.Version, e.Hash}
	}
}

func testAppendAndReadStream(t *testing.T, s event.Store) {
	ctx := ctxFor(t)
	first := events("read-1", 3)
	r := mustAppend(t, s, "order-1", event.NoStream, first)
	if want := (event.AppendResult{FirstVersion: 1, LastVersion: 3, FirstPosition: 1, LastPosition: 3}); r != want {
		t.Fatalf("first append: %+v, want %+v", r, want)
	}
	// The store must own its bytes: changing the caller's slice after the
	// append changes nothing stored.
	first[0].Data[0] = 'X'
	second := events("read-2", 2)
	r = mustAppend(t, s, "order-1", event.Exact(3), second)
	if want := (event.AppendResult{FirstVersion: 4, LastVersion: 5, FirstPosition: 4, LastPosition: 5}); r != want {
		t.Fatalf("second append: %+v, want %+v", r, want)
	}
	mustAppend(t, s, "order-2", event.Any, events("read-3", 1))

	want := append(events("read-1", 3), second...)
	got := readStream(t, s, "order-1")
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	for i, e := range got {
		if err := sameEvent(e, "order-1", want[i]); err != nil {
			t.Fatal(err)
		}
		if e.Version != uint64(i+1) || e.Position != uint64(i+1) {
			t.Fatalf("event %d: version %d position %d, want %d %d", i, e.Version, e.Position, i+1, i+1)
		}
	}
	// Nor does changing what a read returned.
	got[0].Data[0] = 'Y'
	if again := readStream(t, s, "order-1"); !bytes.Equal(again[0].Data, want[0].Data) {
		t.Fatalf("a caller's edit of read data reached the store: %q", again[0].Data)
	}

	from, err := s.ReadStream(ctx, "order-1", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(from) != 2 || from[0].Version != 4 || from[1].Version != 5 {
		t.Fatalf("read from version 4: %d events %v", len(from), versions(from))
	}
	if beyond, err := s.ReadStream(ctx, "order-1", 6, 0); err != nil || len(beyond) != 0 {
		t.Fatalf("read beyond the end: %d events, err %v; want none, nil", len(beyond), err)
	}
	if none, err := s.ReadStream(ctx, "order-missing", 1, 0); err != nil || len(none) != 0 {
		t.Fatalf("read missing stream: %d events, err %v; want none, nil", len(none), err)
	}
	if other := readStream(t, s, "order-2"); len(other) != 1 || other[0].Version != 1 || other[0].Position != 6 {
		t.Fatalf("order-2: %+v", other)
	}
}

func versions(es []event.Envelope) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Version
	}
	return out
}

func testReadAllFromPositions(t *testing.T, s event.Store) {
	ctx := ctxFor(t)
	if got := readAll(t, s); len(got) != 0 {
		t.Fatalf("empty store reads %d events", len(got))
	}
	var want []string
	for i := range 10 {
		evs := events(fmt.Sprintf("all-%d", i), 1+i%3)
		mustAppend(t, s, fmt.Sprintf("cart-%d", i%4), event.Any, evs)
		for _, e := range evs {
			want = append(want, e.ID)
		}
	}
	n := uint64(len(want))
	for _, from := range []uint64{0, 1, 2, n / 2, n - 1, n, n + 1, n + 100} {
		got, err := s.ReadAll(ctx, from, 0)
		if err != nil {
			t.Fatalf("read $all from %d: %v", from, err)
		}
		start := max(from, 1)
		wantLen := 0
		if start <= n {
			wantLen = int(n - start + 1)
		}
		if len(got) != wantLen {
			t.Fatalf("read $all from %d: %d events, want %d", from, len(got), wantLen)
		}
		for i, e := range got {
			p := start + uint64(i)
			if e.Position != p || e.ID != want[p-1] {
				t.Fatalf("read $all from %d: event %d at position %d is %s, want position %d %s", from, i, e.Position, e.ID, p, want[p-1])
			}
		}
	}
}

func testExpectedVersion(t *testing.T, s event.Store) {
	ctx := ctxFor(t)
	mustAppend(t, s, "stock-2", event.NoStream, events("ev-setup", 2)) // stock-2 at version 2

	cases := []struct {
		name     string
		stream   string
		expected event.ExpectedVersion
		ok       bool
		actual   uint64 // on failure
	}{
		{"any on a new stream", "stock-new-any", event.Any, true, 0},
		{"any on an existing stream", "stock-2", event.Any, true, 0},
		{"no-stream on a new stream", "stock-new-ns", event.NoStream, true, 0},
		{"no-stream on an existing stream", "stock-2", event.NoStream, false, 3},
		{"stream-exists on a new stream", "stock-new-se", event.StreamExists, false, 0},
		{"stream-exists on an existing stream", "stock-2", event.StreamExists, true, 0},
		{"exact 0 on a new stream", "stock-new-e0", event.Exact(0), true, 0},
		{"exact on a new stream", "stock-new-e1", event.Exact(1), false, 0},
		{"exact current version", "stock-2", event.Exact(4), true, 0},
		{"exact stale version", "stock-2", event.Exact(2), false, 5},
		{"exact future version", "stock-2", event.Exact(9), false, 5},
	}
	// stock-2 is at 2; "any" makes it 3, "stream-exists" 4, "exact current"
	// 5: the actual versions above follow the order of the cases.
	for i, tc := range cases {
		evs := events(fmt.Sprintf("ev-%d", i), 1)
		headBefore := head(t, s)
		before := readStream(t, s, tc.stream)
		r, err := s.Append(ctx, tc.stream, tc.expected, evs)
		if tc.ok {
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if r.LastVersion != uint64(len(before)+1) {
				t.Fatalf("%s: landed at version %d, want %d", tc.name, r.LastVersion, len(before)+1)
			}
			continue
		}
		if !errors.Is(err, event.ErrWrongExpectedVersion) {
			t.Fatalf("%s: err %v, want ErrWrongExpectedVersion", tc.name, err)
		}
		var ce *event.ConcurrencyError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: err %T %v is not a *ConcurrencyError", tc.name, err, err)
		}
		if ce.Actual != tc.actual || ce.Stream != tc.stream || ce.Expected != tc.expected {
			t.Fatalf("%s: %+v, want stream %s expected %s actual %d", tc.name, ce, tc.stream, tc.expected, tc.actual)
		}
		if r != (event.AppendResult{}) {
			t.Fatalf("%s: failed append returned result %+v", tc.name, r)
		}
		if after := readStream(t, s, tc.stream); len(after) != len(before) {
			t.Fatalf("%s: failed append changed the stream from %d to %d events", tc.name, len(before), len(after))
		}
		if h := head(t, s); h != headBefore {
			t.Fatalf("%s: failed append moved the head from %d to %d", tc.name, headBefore, h)
		}
		// A rejected event ID is not burnt: it can be appended properly.
		mustAppend(t, s, "stock-reuse", event.Any, evs)
	}
}

func testInvalidAppend(t *testing.T, s event.Store) {
	ctx := ctxFor(t)
	mustAppend(t, s, "pay-1", event.NoStream, events("inv-setup", 1))
	valid := func() []event.Proposed { return events("inv", 2) }
	cases := []struct {
		name   string
		stream string
		evs    func() []event.Proposed
	}{
		{"empty stream ID", "", valid},
		{"reserved stream ID", "$all", valid},
		{"space in stream ID", "pay 1", valid},
		{"control byte in stream ID", "pay\x001", valid},
		{"no events", "pay-1", func() []event.Proposed { return nil }},
		{"empty event ID", "pay-1", func() []event.Proposed { e := valid(); e[1].ID = ""; return e }},
		{"event ID too long", "pay-1", func() []event.Proposed { e := valid(); e[0].ID = string(make([]byte, 129)); return e }},
		{"duplicate event ID", "pay-1", func() []event.Proposed { e := valid(); e[1].ID = e[0].ID; return e }},
		{"malformed type", "pay-1", func() []event.Proposed { e := valid(); e[1].Type = "Happened"; return e }},
		{"schema version mismatch", "pay-1", func() []event.Proposed { e := valid(); e[0].SchemaVersion = 2; return e }},
		{"no data", "pay-1", func() []event.Proposed { e := valid(); e[1].Data = nil; return e }},
	}
	for _, tc := range cases {
		r, err := s.Append(ctx, tc.stream, event.Any, tc.evs())
		if !errors.Is(err, event.ErrInvalidAppend) {
			t.Fatalf("%s: err %v, want ErrInvalidAppend", tc.name, err)
		}
		if r != (event.AppendResult{}) {
			t.Fatalf("%s: result %+v", tc.name, r)
		}
	}
	if all := readAll(t, s); len(all) != 1 {
		t.Fatalf("invalid appends stored something: $all has %d events, want 1", len(all))
	}
	if h := head(t, s); h != 1 {
		t.Fatalf("head %d after invalid appends, want 1", h)
	}
	// The IDs of the rejected appends are not burnt.
	mustAppend(t, s, "pay-1", event.Exact(1), valid())
}

func testIdempotentRetry(t *testing.T, s event.Store) {
	ctx := ctxFor(t)
	mustAppend(t, s, "ship-0", event.NoStream, events("idem-other", 1))
	orig := events("idem-1", 3)
	r1 := mustAppend(t, s, "ship-1", event.NoStream, orig)
	mustAppend(t, s, "ship-1", event.Exact(3), events("idem-2", 1)) // the stream moves on

	// A retry after a lost response: same IDs, stale expectation.
	for _, exp := range []event.ExpectedVersion{event.NoStream, event.Any, event.Exact(3)} {
		r, err := s.Append(ctx, "ship-1", exp, events("idem-1", 3))
		if err != nil {
			t.Fatalf("retry with %s: %v", exp, err)
		}
		if r != r1 {
			t.Fatalf("retry with %s: result %+v, want the original %+v", exp, r, r1)
		}
	}
	if got := readStream(t, s, "ship-1"); len(got) != 4 {
		t.Fatalf("retries stored events: stream has %d, want 4", len(got))
	}

	newEvs := events("idem-new", 1)
	conflicts := []struct {
		name   string
		stream string
		evs    []event.Proposed
	}{
		{"partial overlap", "ship-1", []event.Proposed{orig[1], orig[2], newEvs[0]}},
		{"new then stored", "ship-1", []event.Proposed{newEvs[0], orig[0]}},
		{"other order", "ship-1", []event.Proposed{orig[1], orig[0], orig[2]}},
		{"gap", "ship-1", []event.Proposed{orig[0], orig[2]}},
		{"same IDs in another stream", "ship-2", events("idem-1", 3)},
		{"ID of another stream's event", "ship-1", events("idem-other", 1)},
	}
	h := head(t, s)
	for _, tc := range conflicts {
		r, err := s.Append(ctx, tc.stream, event.Any, tc.evs)
		if !errors.Is(err, event.ErrIdempotencyConflict) {
			t.Fatalf("%s: err %v, want ErrIdempotencyConflict", tc.name, err)
		}
		if r != (event.AppendResult{}) {
			t.Fatalf("%s: result %+v", tc.name, r)
		}
	}
	if got := head(t, s); got != h {
		t.Fatalf("conflicting appends moved the head from %d to %d", h, got)
	}
	if got := readStream(t, s, "ship-2"); len(got) != 0 {
		t.Fatalf("conflicting append stored %d events in ship-2", len(got))
	}
	// The new ID of a rejected partial overlap is not burnt.
	mustAppend(t, s, "ship-1", event.Exact(4), newEvs)

	// Concurrent retries of one append: stored once, everyone gets the same result.
	dup := events("idem-concurrent", 2)
	results := make([]event.AppendResult, 16)
	errs := make([]error, len(results))
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			results[i], errs[i] = s.Append(ctx, "ship-3", event.Any, dup)
		})
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("concurrent retry %d: %v", i, errs[i])
		}
		if results[i] != results[0] {
			t.Fatalf("concurrent retries got %+v and %+v", results[0], results[i])
		}
	}
	if got := readStream(t, s, "ship-3"); len(got) != 2 {
		t.Fatalf("concurrent retries stored %d events, want 2", len(got))
	}
}

// ack is an acknowledged append, as its writer saw it.
type ack struct {
	stream string
	ids    []string
	res    event.AppendResult
}

func testGlobalOrder(t *testing.T, s event.Store) {
	ctx := ctxFor(t)
	const writers, perWriter = 8, 25
	acks := make([][]ack, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range perWriter {
				stream := fmt.Sprintf("inv-%d", rng.IntN(5))
				evs := events(fmt.Sprintf("order-%d-%d", w, i), 1+rng.IntN(3))
				r, err := s.Append(ctx, stream, event.Any, evs)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				a := ack{stream: stream, res: r}
				for _, e := range evs {
					a.ids = append(a.ids, e.ID)
				}
				acks[w] = append(acks[w], a)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	all := readAll(t, s)
	total := 0
	for w, as := range acks {
		var last uint64
		for _, a := range as {
			total += len(a.ids)
			// Commit order: an append acknowledged before another starts
			// lands before it in $all.
			if a.res.FirstPosition <= last {
				t.Fatalf("writer %d: append at position %d after one acknowledged at %d", w, a.res.FirstPosition, last)
			}
			last = a.res.LastPosition
			// Atomic and contiguous: the append's events are exactly
			// positions First..Last and versions First..Last.
			if n := uint64(len(a.ids)); a.res.LastPosition-a.res.FirstPosition+1 != n || a.res.LastVersion-a.res.FirstVersion+1 != n {
				t.Fatalf("append of %d events: result %+v", n, a.res)
			}
			for i, id := range a.ids {
				p := a.res.FirstPosition + uint64(i)
				if p > uint64(len(all)) {
					t.Fatalf("acknowledged position %d beyond $all (%d events)", p, len(all))
				}
				e := all[p-1]
				if e.ID != id || e.StreamID != a.stream || e.Version != a.res.FirstVersion+uint64(i) {
					t.Fatalf("position %d holds %s %s v%d, want %s %s v%d", p, e.ID, e.StreamID, e.Version, id, a.stream, a.res.FirstVersion+uint64(i))
				}
			}
		}
	}
	if len(all) != total {
		t.Fatalf("$all has %d events, %d acknowledged", len(all), total)
	}
	// Per stream, version order is position order, versions contiguous.
	next := map[string]uint64{}
	for i, e := range all {
		if e.Position != uint64(i+1) {
			t.Fatalf("$all[%d] at position %d", i, e.Position)
		}
		next[e.StreamID]++
		if e.Version != next[e.StreamID] {
			t.Fatalf("%s: version %d at position %d, want %d", e.StreamID, e.Version, e.Position, next[e.StreamID])
		}
	}
	t.Logf("%d writers: %d appends, %d events, positions 1..%d contiguous", writers, writers*perWriter, total, len(all))
}

func testRecordedAtAndHashes(t *testing.T, s event.Store) {
	for i := range 30 {
		mustAppend(t, s, fmt.Sprintf("sub-%d", i%7), event.Any, events(fmt.Sprintf("hash-%d", i), 1+i%4))
	}
	all := readAll(t, s)
	for _, e := range all {
		if e.RecordedAt.IsZero() || e.RecordedAt.Location() != time.UTC {
			t.Fatalf("event %d: recorded-at %v, want a UTC time", e.Position, e.RecordedAt)
		}
	}
	verifyChains(t, all)
	// ReadStream serves the same envelopes as ReadAll.
	for i := range 7 {
		for _, e := range readStream(t, s, fmt.Sprintf("sub-%d", i)) {
			if !sameEnvelope(e, all[e.Position-1]) {
				t.Fatalf("stream read of position %d differs from $all:\n%+v\n%+v", e.Position, e, all[e.Position-1])
			}
		}
	}
	t.Logf("%d events: stream and global hash chains verified", len(all))
}

func testSubscribe(t *testing.T, s event.Store) {
	ctx := ctxFor(t)
	const before, writers, perWriter = 50, 4, 50
	for i := range before {
		mustAppend(t, s, fmt.Sprintf("pay-%d", i%5), event.Any, events(fmt.Sprintf("sub-pre-%d", i), 1))
	}
	total := uint64(before + writers*perWriter*2)

	type sub struct {
		from uint64
		got  []uint64
		err  error
	}
	subs := []*sub{{from: 0}, {from: 1}, {from: before / 2}, {from: before + 1}}
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	var subsDone sync.WaitGroup
	for _, sb := range subs {
		subsDone.Go(func() {
			done := errors.New("done")
			sb.err = s.SubscribeAll(subCtx, sb.from, func(_ context.Context, batch []event.Envelope) error {
				for _, e := range batch {
					sb.got = append(sb.got, e.Position)
				}
				if len(sb.got) > 0 && sb.got[len(sb.got)-1] >= total {
					return done
				}
				return nil
			})
			if errors.Is(sb.err, done) {
				sb.err = nil
			}
		})
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := s.Append(ctx, fmt.Sprintf("pay-%d", (w+i)%5), event.Any, events(fmt.Sprintf("sub-%d-%d", w, i), 2)); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	finished := make(chan struct{})
	go func() { subsDone.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(20 * time.Second):
		stop()
		<-finished
		t.Fatalf("subscriptions did not reach position %d", total)
	}
	for _, sb := range subs {
		if sb.err != nil {
			t.Fatalf("subscription from %d: %v", sb.from, sb.err)
		}
		start := max(sb.from, 1)
		if uint64(len(sb.got)) != total-start+1 {
			t.Fatalf("subscription from %d got %d events, want %d", sb.from, len(sb.got), total-start+1)
		}
		for i, p := range sb.got {
			if p != start+uint64(i) {
				t.Fatalf("subscription from %d: event %d at position %d, want %d (gap, duplicate or reorder)", sb.from, i, p, start+uint64(i))
			}
		}
	}
	// Cancelling the context ends a live subscription with ctx's error.
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- s.SubscribeAll(cctx, total+1, func(context.Context, []event.Envelope) error { return nil })
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled subscription returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled subscription did not return")
	}
	t.Logf("%d subscriptions caught up and followed %d live events with %d writers: no gap, no duplicate", len(subs), total-before, writers)
}

// headWaiter is the optional part of a store that subscriptions build on.
type headWaiter interface {
	WaitHead(ctx context.Context, after uint64) (uint64, error)
}

func testHeadAndWaitHead(t *testing.T, s event.Store) {
	ctx := ctxFor(t)
	if h := head(t, s); h != 0 {
		t.Fatalf("empty store head %d", h)
	}
	r := mustAppend(t, s, "head-1", event.Any, events("head-1", 3))
	if h := head(t, s); h != r.LastPosition || h != 3 {
		t.Fatalf("head %d after append at %+v", h, r)
	}
	w, ok := s.(headWaiter)
	if !ok {
		t.Skip("store has no WaitHead")
	}
	if h, err := w.WaitHead(ctx, 1); err != nil || h != 3 {
		t.Fatalf("WaitHead(1) = %d, %v; want 3 at once", h, err)
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if h, err := w.WaitHead(short, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitHead(3) with no append = %d, %v; want deadline exceeded", h, err)
	}
	type woke struct {
		h   uint64
		err error
	}
	got := make(chan woke, 1)
	go func() {
		h, err := w.WaitHead(ctx, 3)
		got <- woke{h, err}
	}()
	time.Sleep(10 * time.Millisecond)
	mustAppend(t, s, "head-2", event.Any, events("head-2", 2))
	select {
	case r := <-got:
		if r.err != nil || r.h != 5 {
			t.Fatalf("WaitHead(3) woke with %d, %v; want 5", r.h, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitHead did not wake after an append")
	}
}

func testConcurrentWriters(t *testing.T, s event.Store) {
	ctx := ctxFor(t)
	const writers, streams, attempts = 64, 100, 40
	var acked, conflicts atomic.Int64
	type key struct {
		stream  string
		version uint64
	}
	var mu sync.Mutex
	winners := map[key]string{} // (stream, version) -> event ID acknowledged there
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 64))
			for i := range attempts {
				stream := fmt.Sprintf("hot-%d", rng.IntN(streams))
				cur, err := s.ReadStream(ctx, stream, 1, 0)
				if err != nil {
					t.Errorf("read %s: %v", stream, err)
					return
				}
				v := uint64(len(cur))
				evs := events(fmt.Sprintf("hot-%d-%d", w, i), 1)
				r, err := s.Append(ctx, stream, event.Exact(v), evs)
				var ce *event.ConcurrencyError
				switch {
				case err == nil:
					acked.Add(1)
					if r.FirstVersion != v+1 {
						t.Errorf("%s: append expecting %d landed at %d", stream, v, r.FirstVersion)
					}
					mu.Lock()
					k := key{stream, r.FirstVersion}
					if prev, dup := winners[k]; dup {
						t.Errorf("%s v%d acknowledged twice: %s and %s", stream, r.FirstVersion, prev, evs[0].ID)
					}
					winners[k] = evs[0].ID
					mu.Unlock()
				case errors.As(err, &ce):
					conflicts.Add(1)
					if ce.Actual <= v {
						t.Errorf("%s: conflict expecting %d reports actual %d", stream, v, ce.Actual)
					}
				default:
					t.Errorf("append %s: %v", stream, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if t.Failed() {
		return
	}
	stored, lost := 0, 0
	for i := range streams {
		stream := fmt.Sprintf("hot-%d", i)
		for j, e := range readStream(t, s, stream) {
			stored++
			if e.Version != uint64(j+1) {
				t.Fatalf("%s: version %d at index %d", stream, e.Version, j)
			}
			if id, ok := winners[key{stream, e.Version}]; !ok || id != e.ID {
				t.Fatalf("%s v%d holds %s, acknowledged winner %q", stream, e.Version, e.ID, id)
			}
		}
	}
	for k, id := range winners {
		got, err := s.ReadStream(ctx, k.stream, k.version, 1)
		if err != nil || len(got) != 1 || got[0].ID != id {
			lost++
		}
	}
	verifyChains(t, readAll(t, s))
	t.Logf("%d writers on %d streams: %d acknowledged appends, %d conflicts, %d stored, %d lost updates, %.0f appends/s",
		writers, streams, acked.Load(), conflicts.Load(), stored, lost, float64(acked.Load())/elapsed.Seconds())
	if int64(stored) != acked.Load() || lost != 0 {
		t.Fatalf("acknowledged %d appends, stored %d, lost %d", acked.Load(), stored, lost)
	}
	if acked.Load()+conflicts.Load() != writers*attempts {
		t.Fatalf("%d acknowledged + %d conflicts != %d attempts", acked.Load(), conflicts.Load(), writers*attempts)
	}
}

func testReadLimits(t *testing.T, s event.Store) {
	ctx := ctxFor(t)
	mustAppend(t, s, "lim-1", event.Any, events("lim-1", 10))
	mustAppend(t, s, "lim-2", event.Any, events("lim-2", 5))
	cases := []struct {
		name      string
		read      func() ([]event.Envelope, error)
		first     uint64
		n         int
		byVersion bool
	}{
		{"stream max 3", func() ([]event.Envelope, error) { return s.ReadStream(ctx, "lim-1", 1, 3) }, 1, 3, true},
		{"stream from 4 max 4", func() ([]event.Envelope, error) { return s.ReadStream(ctx, "lim-1", 4, 4) }, 4, 4, true},
		{"stream from 8 max 100", func() ([]event.Envelope, error) { return s.ReadStream(ctx, "lim-1", 8, 100) }, 8, 3, true},
		{"stream from 0 max -1", func() ([]event.Envelope, error) { return s.ReadStream(ctx, "lim-1", 0, -1) }, 1, 10, true},
		{"all max 1", func() ([]event.Envelope, error) { return s.ReadAll(ctx, 1, 1) }, 1, 1, false},
		{"all from 9 max 4", func() ([]event.Envelope, error) { return s.ReadAll(ctx, 9, 4) }, 9, 4, false},
		{"all from 14 max 10", func() ([]event.Envelope, error) { return s.ReadAll(ctx, 14, 10) }, 14, 2, false},
		{"all max 0", func() ([]event.Envelope, error) { return s.ReadAll(ctx, 0, 0) }, 1, 15, false},
	}
	for _, tc := range cases {
		got, err := tc.read()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(got) != tc.n {
			t.Fatalf("%s: %d events, want %d", tc.name, len(got), tc.n)
		}
		for i, e := range got {
			n := e.Position
			if tc.byVersion {
				n = e.Version
			}
			if n != tc.first+uint64(i) {
				t.Fatalf("%s: event %d is %d, want %d", tc.name, i, n, tc.first+uint64(i))
			}
		}
	}
}

func testClose(t *testing.T, s event.Store) {
	ctx := ctxFor(t)
	mustAppend(t, s, "close-1", event.Any, events("close-1", 1))
	w, _ := s.(headWaiter)
	waiting := make(chan error, 1)
	if w != nil {
		go func() {
			_, err := w.WaitHead(ctx, 1)
			waiting <- err
		}()
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.Append(ctx, "close-1", event.Any, events("close-2", 1)); !errors.Is(err, event.ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
	if _, err := s.ReadStream(ctx, "close-1", 1, 0); !errors.Is(err, event.ErrClosed) {
		t.Fatalf("read stream after close: %v, want ErrClosed", err)
	}
	if _, err := s.ReadAll(ctx, 1, 0); !errors.Is(err, event.ErrClosed) {
		t.Fatalf("read $all after close: %v, want ErrClosed", err)
	}
	if _, err := s.Head(ctx); !errors.Is(err, event.ErrClosed) {
		t.Fatalf("head after close: %v, want ErrClosed", err)
	}
	if err := s.SubscribeAll(ctx, 0, func(context.Context, []event.Envelope) error { return nil }); !errors.Is(err, event.ErrClosed) {
		t.Fatalf("subscribe after close: %v, want ErrClosed", err)
	}
	if w != nil {
		select {
		case err := <-waiting:
			if !errors.Is(err, event.ErrClosed) {
				t.Fatalf("WaitHead across close: %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("WaitHead did not return on close")
		}
	}
}
