package httpapi

import (
	"context"
	"sync"

	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
)

// PositionTracker remembers where recent appends landed in $all, so that a
// write's answer can carry its X-Livecore-Position without reading its
// event back. Wrap the store the application service appends to; a
// position it has forgotten (evicted, or appended by another process) is
// read from the store instead. Safe for concurrent use.
type PositionTracker struct {
	mu  sync.Mutex
	m   map[streamVersion]uint64
	max int
}

type streamVersion struct {
	stream  string
	version uint64
}

// NewPositionTracker returns a tracker that keeps at most 100,000
// positions (then starts over: handlers take theirs within milliseconds).
func NewPositionTracker() *PositionTracker {
	return &PositionTracker{m: map[streamVersion]uint64{}, max: 100_000}
}

// Wrap returns s with its appends recorded. If s reports its head
// (event.HeadReader), so does the result (the application service then
// creates streams without reading them first: app.Command.Creates).
func (t *PositionTracker) Wrap(s app.Store) app.Store {
	ts := trackingStore{Store: s, t: t}
	if h, ok := s.(event.HeadReader); ok {
		return trackingHeadStore{trackingStore: ts, head: h}
	}
	return ts
}

type trackingHeadStore struct {
	trackingStore
	head event.HeadReader
}

func (ts trackingHeadStore) Head(ctx context.Context) (uint64, error) { return ts.head.Head(ctx) }

type trackingStore struct {
	app.Store
	t *PositionTracker
}

func (ts trackingStore) Append(ctx context.Context, stream string, expected event.ExpectedVersion, events []event.Proposed) (event.AppendResult, error) {
	res, err := ts.Store.Append(ctx, stream, expected, events)
	if err == nil {
		ts.t.record(stream, res)
	}
	return res, err
}

func (t *PositionTracker) record(stream string, res event.AppendResult) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= t.max {
		t.m = make(map[streamVersion]uint64, 1024)
	}
	// One append's events sit at consecutive positions; if a store ever
	// says otherwise, only the last one is known.
	if res.LastPosition-res.FirstPosition == res.LastVersion-res.FirstVersion {
		for v := res.FirstVersion; v <= res.LastVersion; v++ {
			t.m[streamVersion{stream, v}] = res.FirstPosition + (v - res.FirstVersion)
		}
		return
	}
	t.m[streamVersion{stream, res.LastVersion}] = res.LastPosition
}

// take returns and forgets the position of stream's event at version.
func (t *PositionTracker) take(stream string, version uint64) (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := streamVersion{stream, version}
	p, ok := t.m[k]
	if ok {
		delete(t.m, k)
	}
	return p, ok
}
