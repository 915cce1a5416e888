// Package memory is an in-memory event.Store: the fake for unit tests. It
// passes the same conformance suite (adapters/eventstore/storetest) as the
// durable stores, so code tested against it sees the same contract:
// expected versions, idempotent retries, hash chains, gap-free $all.
// Nothing survives Close or the process.
package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/livecore/livecore/domain/event"
)

// Config configures a Store.
type Config struct {
	// Now stamps RecordedAt. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Store is an in-memory event store. It is safe for concurrent use; one
// mutex serialises appends, reads share it.
type Store struct {
	now func() time.Time

	mu      sync.RWMutex
	closed  bool
	all     []event.Envelope    // position p at all[p-1]
	streams map[string][]uint64 // stream -> positions by version
	ids     map[string]uint64   // event ID -> position
	moved   chan struct{}       // closed and replaced when the head moves or the store closes
}

var (
	_ event.Store      = (*Store)(nil)
	_ event.HeadWaiter = (*Store)(nil)
)

// New returns an empty store.
func New(cfg Config) *Store {
	cfg.setDefaults()
	return &Store{
		now:     cfg.Now,
		streams: map[string][]uint64{},
		ids:     map[string]uint64{},
		moved:   make(chan struct{}),
	}
}

// Append implements event.Appender. Errors: event.ErrInvalidAppend,
// *event.ConcurrencyError (errors.Is event.ErrWrongExpectedVersion),
// event.ErrIdempotencyConflict, event.ErrClosed. A retry of a stored append
// returns the original result whatever expected says.
func (s *Store) Append(ctx context.Context, stream string, expected event.ExpectedVersion, events []event.Proposed) (event.AppendResult, error) {
	if err := event.ValidateAppend(stream, events); err != nil {
		return event.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return event.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return event.AppendResult{}, event.ErrClosed
	}
	if r, retry, err := s.retried(stream, events); err != nil || retry {
		return r, err
	}
	positions := s.streams[stream]
	current := uint64(len(positions))
	if !expected.Holds(current) {
		return event.AppendResult{}, &event.ConcurrencyError{Stream: stream, Expected: expected, Actual: current}
	}
	var prevStream, prevGlobal event.Hash
	if current > 0 {
		prevStream = s.all[positions[current-1]-1].Hash
	}
	if n := len(s.all); n > 0 {
		prevGlobal = s.all[n-1].GlobalHash
	}
	recordedAt := s.now().UTC().Round(0)
	res := event.AppendResult{FirstVersion: current + 1, FirstPosition: uint64(len(s.all)) + 1}
	for i, p := range events {
		e := event.Envelope{
			ID:            p.ID,
			StreamID:      stream,
			Type:          p.Type,
			SchemaVersion: p.SchemaVersion,
			Data:          append([]byte(nil), p.Data...),
			Metadata:      p.Metadata,
			RecordedAt:    recordedAt,
			Version:       current + 1 + uint64(i),
			Position:      uint64(len(s.all)) + 1,
		}
		event.Seal(&e, prevStream, prevGlobal)
		prevStream, prevGlobal = e.Hash, e.GlobalHash
		s.all = append(s.all, e)
		positions = append(positions, e.Position)
		s.ids[e.ID] = e.Position
	}
	s.streams[stream] = positions
	res.LastVersion = uint64(len(positions))
	res.LastPosition = uint64(len(s.all))
	close(s.moved)
	s.moved = make(chan struct{})
	return res, nil
}

// retried reports whether events were all stored before, consecutively and
// in order, in stream (retry), with the original result; or a conflict.
// The caller holds mu.
func (s *Store) retried(stream string, events []event.Proposed) (event.AppendResult, bool, error) {
	found := 0
	for _, p := range events {
		if _, ok := s.ids[p.ID]; ok {
			found++
		}
	}
	if found == 0 {
		return event.AppendResult{}, false, nil
	}
	if found < len(events) {
		return event.AppendResult{}, false, fmt.Errorf("append %s: %w: %d of %d event IDs are stored", stream, event.ErrIdempotencyConflict, found, len(events))
	}
	first := s.all[s.ids[events[0].ID]-1]
	res := event.AppendResult{FirstVersion: first.Version, FirstPosition: first.Position}
	for i, p := range events {
		e := s.all[s.ids[p.ID]-1]
		if e.StreamID != stream || e.Version != first.Version+uint64(i) {
			return event.AppendResult{}, false, fmt.Errorf("append %s: %w: event %s is stored in %s at version %d", stream, event.ErrIdempotencyConflict, p.ID, e.StreamID, e.Version)
		}
		res.LastVersion, res.LastPosition = e.Version, e.Position
	}
	return res, true, nil
}

// ReadStream implements event.StreamReader. The envelopes are copies the
// caller may change. Errors: event.ErrClosed, ctx's error.
func (s *Store) ReadStream(ctx context.Context, stream string, fromVersion uint64, limit int) ([]event.Envelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, event.ErrClosed
	}
	positions := s.streams[stream]
	fromVersion = max(fromVersion, 1)
	if fromVersion > uint64(len(positions)) {
		return nil, nil
	}
	positions = positions[fromVersion-1:]
	if limit > 0 && len(positions) > limit {
		positions = positions[:limit]
	}
	out := make([]event.Envelope, len(positions))
	for i, p := range positions {
		out[i] = clone(s.all[p-1])
	}
	return out, nil
}

// ReadAll implements event.AllReader. The envelopes are copies the caller
// may change. Errors: event.ErrClosed, ctx's error.
func (s *Store) ReadAll(ctx context.Context, fromPosition uint64, limit int) ([]event.Envelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, event.ErrClosed
	}
	fromPosition = max(fromPosition, 1)
	if fromPosition > uint64(len(s.all)) {
		return nil, nil
	}
	src := s.all[fromPosition-1:]
	if limit > 0 && len(src) > limit {
		src = src[:limit]
	}
	out := make([]event.Envelope, len(src))
	for i := range src {
		out[i] = clone(src[i])
	}
	return out, nil
}

// Head implements event.HeadReader.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, event.ErrClosed
	}
	return uint64(len(s.all)), nil
}

// WaitHead implements event.HeadWaiter. It returns event.ErrClosed if the
// store closes while waiting, ctx's error when ctx ends.
func (s *Store) WaitHead(ctx context.Context, after uint64) (uint64, error) {
	for {
		s.mu.RLock()
		closed, h, moved := s.closed, uint64(len(s.all)), s.moved
		s.mu.RUnlock()
		if closed {
			return 0, event.ErrClosed
		}
		if h > after {
			return h, nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// SubscribeAll implements event.Subscriber in batches of up to 1000. It
// returns event.ErrClosed when the store closes.
func (s *Store) SubscribeAll(ctx context.Context, fromPosition uint64, handle func(context.Context, []event.Envelope) error) error {
	return event.SubscribeAll(ctx, s, s, fromPosition, 1000, handle)
}

// Close drops the events; every later call returns event.ErrClosed. It is
// idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.all, s.streams, s.ids = nil, nil, nil
		close(s.moved)
	}
	return nil
}

func clone(e event.Envelope) event.Envelope {
	e.Data = append([]byte(nil), e.Data...)
	return e
}
