package kurrentdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/livecore/livecore/domain/event"
)

// Append implements event.Appender. Errors: event.ErrInvalidAppend,
// *event.ConcurrencyError, event.ErrIdempotencyConflict, event.ErrClosed,
// ctx's error, or a plain error for a server failure (outcome unknown: retry
// with the same event IDs). See the package doc for how expectations,
// retries and the read-back check work.
func (s *Store) Append(ctx context.Context, stream string, expected event.ExpectedVersion, events []event.Proposed) (event.AppendResult, error) {
	if err := event.ValidateAppend(stream, events); err != nil {
		return event.AppendResult{}, err
	}
	if err := s.checkOpen(); err != nil {
		return event.AppendResult{}, err
	}
	res, err := s.append(ctx, stream, expected, events)
	if err != nil {
		var ce *event.ConcurrencyError
		if errors.As(err, &ce) || errors.Is(err, event.ErrIdempotencyConflict) {
			return event.AppendResult{}, err
		}
		return event.AppendResult{}, s.port("append "+stream, err)
	}
	s.moved.wake()
	return res, nil
}

// attempt is one write as sent, kept byte for byte for a resend.
type attempt struct {
	current uint64 // version the stream was at: the expected revision
	props   []proposal
}

func (s *Store) append(ctx context.Context, stream string, expected event.ExpectedVersion, events []event.Proposed) (event.AppendResult, error) {
	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		ids[i] = esdbID(e.ID)
	}
	if res, retry, err := s.readBack(ctx, stream, ids); retry || err != nil {
		return res, err
	}
	name := s.cfg.Namespace + stream
	var (
		pending *attempt
		lastErr error
	)
	for try := 0; try < s.cfg.MaxAppendTries; try++ {
		if pending == nil {
			current, last, err := s.tail(ctx, stream)
			if err != nil {
				return event.AppendResult{}, err
			}
			if !expected.Holds(current) {
				return event.AppendResult{}, &event.ConcurrencyError{Stream: stream, Expected: expected, Actual: current}
			}
			pending = s.build(stream, current, last, events, ids)
		}
		err := s.be.appendToStream(ctx, name, expectedRevision(pending.current), pending.props)
		var (
			wrong     *wrongRevisionError
			transient *transientError
		)
		switch {
		case err == nil:
			return s.locate(ctx, stream, ids)
		case errors.As(err, &wrong):
			// Our IDs may be there: an earlier try of ours committed, or a
			// concurrent retry of the same command won.
			if res, retry, err := s.readBack(ctx, stream, ids); retry || err != nil {
				return res, err
			}
			actual := wrong.actual
			if !wrong.known {
				if actual, _, err = s.tail(ctx, stream); err != nil {
					return event.AppendResult{}, err
				}
			}
			if !expected.Holds(actual) {
				return event.AppendResult{}, &event.ConcurrencyError{Stream: stream, Expected: expected, Actual: actual}
			}
			pending, lastErr = nil, wrong // the stream moved; chain onto its new tail
		case errors.As(err, &transient):
			// Resend the identical request: a committed first try makes it a
			// no-op for ESDB, or a WrongExpectedVersion settled above.
			lastErr = err
			select {
			case <-ctx.Done():
				return event.AppendResult{}, ctx.Err()
			case <-s.done:
				return event.AppendResult{}, event.ErrClosed
			case <-time.After(backoff(try)):
			}
		default:
			return event.AppendResult{}, err
		}
	}
	return event.AppendResult{}, fmt.Errorf("gave up after %d tries: %w", s.cfg.MaxAppendTries, lastErr)
}

func backoff(try int) time.Duration {
	return min(time.Duration(1<<min(try, 6))*10*time.Millisecond, time.Second)
}

// readBack catches the index up and applies the idempotency decision.
func (s *Store) readBack(ctx context.Context, stream string, ids []uuid.UUID) (event.AppendResult, bool, error) {
	if err := s.catchUp(ctx); err != nil {
		return event.AppendResult{}, false, err
	}
	return matchRetry(stream, ids, s.idx.stored(ids))
}

// locate returns the result of a successful write once the index shows it
// (an ESDB follower may lag the leader for a moment).
func (s *Store) locate(ctx context.Context, stream string, ids []uuid.UUID) (event.AppendResult, error) {
	for try := 0; ; try++ {
		res, retry, err := s.readBack(ctx, stream, ids)
		if retry || err != nil {
			return res, err
		}
		if try >= 50 {
			return event.AppendResult{}, fmt.Errorf("appended events not visible in $all after %d reads", try+1)
		}
		select {
		case <-ctx.Done():
			return event.AppendResult{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// tail returns the version and hash of the stream's last event (0 and the
// zero hash for a missing stream).
func (s *Store) tail(ctx context.Context, stream string) (uint64, event.Hash, error) {
	recs, err := s.be.readStream(ctx, s.cfg.Namespace+stream, esdb.End{}, 1, true)
	var nf *notFoundError
	if errors.As(err, &nf) || (err == nil && len(recs) == 0) {
		return 0, event.Hash{}, nil
	}
	if err != nil {
		return 0, event.Hash{}, err
	}
	e, err := decode(s.cfg.Namespace, &recs[0])
	if errors.Is(err, errNotOurs) {
		return 0, event.Hash{}, fmt.Errorf("%w: stream %s ends with an event livecore did not write", event.ErrCorrupt, stream)
	}
	if err != nil {
		return 0, event.Hash{}, err
	}
	return e.Version, e.Hash, nil
}

// build seals the events' stream chain after the stream's last event.
func (s *Store) build(stream string, current uint64, prev event.Hash, events []event.Proposed, ids []uuid.UUID) *attempt {
	now := s.cfg.Now().UTC()
	a := &attempt{current: current, props: make([]proposal, len(events))}
	for i, p := range events {
		e := event.Envelope{
			ID: p.ID, StreamID: stream, Type: p.Type, SchemaVersion: p.SchemaVersion,
			Data: p.Data, Metadata: p.Metadata, RecordedAt: now, Version: current + uint64(i) + 1,
		}
		e.PrevHash = prev
		e.Hash = event.StreamHash(prev, &e)
		prev = e.Hash
		a.props[i] = proposal{
			ID: ids[i], Type: p.Type, JSON: json.Valid(p.Data),
			Data: append([]byte(nil), p.Data...), Meta: encodeMeta(&e),
		}
	}
	return a
}
