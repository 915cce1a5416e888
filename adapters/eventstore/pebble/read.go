package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/livecore/livecore/domain/event"
)

// reading runs fn while the store cannot close under it.
func (s *Store) reading(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return event.ErrClosed
	}
	return portErr(fn())
}

// portErr turns Pebble's corruption errors into event.ErrCorrupt; callers
// above the adapter never see Pebble's error types.
func portErr(err error) error {
	if err != nil && pebble.IsCorruptionError(err) && !errors.Is(err, event.ErrCorrupt) {
		return fmt.Errorf("%w: %v", event.ErrCorrupt, err)
	}
	return err
}

// ReadStream implements event.StreamReader. It sees only acknowledged
// appends. Errors: event.ErrCorrupt (a record or index entry failed its
// checksum, or the index and the log disagree; nothing is returned),
// event.ErrClosed, ctx's error.
func (s *Store) ReadStream(ctx context.Context, stream string, fromVersion uint64, limit int) ([]event.Envelope, error) {
	var out []event.Envelope
	err := s.reading(ctx, func() error {
		head := s.head.Load()
		fromVersion = max(fromVersion, 1)
		// The head entry is written with the stream's index entries, so
		// without one there is no stream; with one it sizes the result
		// (it may be ahead of what is durable: that is only a hint).
		sh, found, err := s.loadHead(stream)
		if err != nil || !found || sh.version < fromVersion {
			return err
		}
		n := sh.version - fromVersion + 1
		if limit > 0 {
			n = min(n, uint64(limit))
		}
		out = make([]event.Envelope, 0, n)

		prefix := streamPrefix(nil, stream)
		upper := append(prefix[:len(prefix)-1:len(prefix)-1], 1)
		idx, err := s.db.NewIter(&pebble.IterOptions{LowerBound: streamKey(nil, stream, fromVersion), UpperBound: upper})
		if err != nil {
			return err
		}
		defer idx.Close()
		evs, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindEvent}, UpperBound: []byte{kindEvent + 1}})
		if err != nil {
			return err
		}
		defer evs.Close()
		var ekey []byte
		var at uint64 // evs is positioned at this position (0: nowhere)
		want := fromVersion
		for ok := idx.First(); ok && (limit <= 0 || len(out) < limit); ok = idx.Next() {
			key := idx.Key()
			if len(key) != len(prefix)+8 {
				return fmt.Errorf("%w: stream index key %q", event.ErrCorrupt, key)
			}
			version := binary.BigEndian.Uint64(key[len(prefix):])
			pos, err := decodePosition(key, idx.Value())
			if err != nil {
				return err
			}
			if pos > head {
				break // written by a group that is not durable yet
			}
			if version != want {
				return fmt.Errorf("%w: stream %s: version %d follows %d in the index", event.ErrCorrupt, stream, version, want-1)
			}
			want++
			ekey = eventKey(ekey[:0], pos)
			// A stream's events often sit next to each other in $all
			// (appends of several events): step instead of seeking.
			var found bool
			if at != 0 && pos == at+1 {
				found = evs.Next()
			} else {
				found = evs.SeekGE(ekey)
			}
			at = pos
			if !found || !bytes.Equal(evs.Key(), ekey) {
				if err := evs.Error(); err != nil {
					return err
				}
				return fmt.Errorf("%w: stream %s v%d: event %d is missing", event.ErrCorrupt, stream, version, pos)
			}
			out = append(out, event.Envelope{})
			e := &out[len(out)-1]
			if err := decodeRecord(e, ekey, evs.Value()); err != nil {
				return err
			}
			if e.StreamID != stream || e.Version != version {
				return fmt.Errorf("%w: index says %s v%d is at %d, which holds %s v%d", event.ErrCorrupt, stream, version, pos, e.StreamID, e.Version)
			}
		}
		return idx.Error()
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	return out, nil
}

// ReadAll implements event.AllReader: positions in order, no gaps, only
// acknowledged appends. Errors: event.ErrCorrupt (a record failed its
// checksum or a position is missing; nothing is returned), event.ErrClosed,
// ctx's error.
func (s *Store) ReadAll(ctx context.Context, fromPosition uint64, limit int) ([]event.Envelope, error) {
	var out []event.Envelope
	err := s.scanAll(ctx, fromPosition, limit, func(n uint64) {
		out = make([]event.Envelope, 0, min(n, 1<<16))
	}, func(key, val []byte) (*event.Envelope, error) {
		out = append(out, event.Envelope{})
		e := &out[len(out)-1]
		return e, decodeRecord(e, key, val)
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("read $all from %d: %w", fromPosition, err)
	}
	return out, nil
}

// ScanAll is ReadAll without building a slice of envelopes: it calls fn
// with each event of $all from fromPosition on, in position order, up to
// limit events (0: to the head), after the same checks as ReadAll. The
// envelope's strings and Data point into the store's own memory (Pebble's
// block, read in place): they are only valid during the call, fn copies
// what it keeps and must not modify them; scanning copies and allocates
// nothing per event. fn's error stops the scan and is returned
// wrapped. Unlike ReadAll, events before a damaged or missing record have
// already been handed to fn when ScanAll returns event.ErrCorrupt.
// Errors otherwise as ReadAll's.
func (s *Store) ScanAll(ctx context.Context, fromPosition uint64, limit int, fn func(e *event.Envelope) error) error {
	var e event.Envelope
	err := s.scanAll(ctx, fromPosition, limit, nil, func(key, val []byte) (*event.Envelope, error) {
		return &e, decodeRecordInPlace(&e, key, val)
	}, fn)
	if err != nil {
		return fmt.Errorf("scan $all from %d: %w", fromPosition, err)
	}
	return nil
}

// scanAll iterates $all from fromPosition, up to limit events (0: to the
// head): it calls start with the number of positions it will read, decode
// for each record (which checks and decodes it), then fn, if set, with the
// decoded envelope. It checks that the positions run without gaps and
// that each record holds its key's position.
func (s *Store) scanAll(ctx context.Context, fromPosition uint64, limit int, start func(n uint64),
	decode func(key, val []byte) (*event.Envelope, error), fn func(*event.Envelope) error) error {
	return s.reading(ctx, func() error {
		from, to := max(fromPosition, 1), s.head.Load()
		if from > to {
			return nil
		}
		if limit > 0 && to-from >= uint64(limit) {
			to = from + uint64(limit) - 1
		}
		if start != nil {
			start(to - from + 1)
		}
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: eventKey(nil, from), UpperBound: eventKey(nil, to+1)})
		if err != nil {
			return err
		}
		defer it.Close()
		want := from
		for ok := it.First(); ok; ok = it.Next() {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			key := it.Key()
			if len(key) != 9 || binary.BigEndian.Uint64(key[1:]) != want {
				return fmt.Errorf("%w: $all: key %q where position %d belongs", event.ErrCorrupt, key, want)
			}
			e, err := decode(key, it.Value())
			if err != nil {
				return err
			}
			if e.Position != want {
				return fmt.Errorf("%w: $all: record at %d says position %d", event.ErrCorrupt, want, e.Position)
			}
			if fn != nil {
				if err := fn(e); err != nil {
					return err
				}
			}
			want++
		}
		if err := it.Error(); err != nil {
			return err
		}
		if want != to+1 {
			return fmt.Errorf("%w: $all: positions %d..%d are missing", event.ErrCorrupt, want, to)
		}
		return nil
	})
}

// Head implements event.HeadReader: the position of the last acknowledged
// event. Errors: event.ErrClosed, ctx's error.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s.closed.Load() {
		return 0, event.ErrClosed
	}
	return s.head.Load(), nil
}

// WaitHead implements event.HeadWaiter. It returns event.ErrClosed if the
// store closes while waiting, ctx's error when ctx ends.
func (s *Store) WaitHead(ctx context.Context, after uint64) (uint64, error) {
	for {
		s.headMu.Lock()
		h, moved := s.head.Load(), s.moved
		s.headMu.Unlock()
		if s.closed.Load() {
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
// returns event.ErrClosed when the store closes and event.ErrCorrupt if a
// record fails its checksum.
func (s *Store) SubscribeAll(ctx context.Context, fromPosition uint64, handle func(context.Context, []event.Envelope) error) error {
	return event.SubscribeAll(ctx, s, s, fromPosition, 1000, handle)
}
