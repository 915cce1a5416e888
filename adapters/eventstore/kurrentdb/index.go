package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/livecore/livecore/domain/event"
)

// entry is what the index knows about the event at one position.
type entry struct {
	pos        allPos
	stream     string // livecore stream ID (no namespace)
	version    uint64
	globalHash event.Hash
}

// index maps positions (ordinals of the namespace's livecore events in $all)
// to $all places and event IDs to positions. See the package doc.
type index struct {
	catching sync.Mutex // one catch-up at a time

	mu      sync.RWMutex
	entries []entry // position p at entries[p-1]
	byID    map[uuid.UUID]uint64
	cursor  allPos // last $all place read (any event)
	started bool   // cursor is valid
}

func newIndex() index { return index{byID: map[uuid.UUID]uint64{}} }

// head is the last indexed position.
func (x *index) head() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return uint64(len(x.entries))
}

func (x *index) at(p uint64) (entry, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if p == 0 || p > uint64(len(x.entries)) {
		return entry{}, false
	}
	return x.entries[p-1], true
}

func (x *index) globalHash(p uint64) event.Hash {
	e, _ := x.at(p)
	return e.globalHash
}

func (x *index) lookup(id uuid.UUID) (uint64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	p, ok := x.byID[id]
	return p, ok
}

// catchUp reads $all from the cursor to its end and indexes the
// namespace's livecore events.
func (s *Store) catchUp(ctx context.Context) error {
	x := &s.idx
	x.catching.Lock()
	defer x.catching.Unlock()
	for {
		x.mu.RLock()
		var from esdb.AllPosition = esdb.Start{}
		if x.started {
			from = esdb.Position{Commit: x.cursor.Commit, Prepare: x.cursor.Prepare}
		}
		skipFirst := x.started
		cursor := x.cursor
		x.mu.RUnlock()

		recs, err := s.be.readAll(ctx, from, uint64(s.cfg.ReadBatch))
		if err != nil {
			return err
		}
		fresh := recs
		if skipFirst && len(fresh) > 0 && fresh[0].Pos == cursor {
			fresh = fresh[1:]
		}
		if err := x.add(s.cfg.Namespace, fresh); err != nil {
			return err
		}
		if len(recs) < s.cfg.ReadBatch {
			return nil
		}
	}
}

// add indexes records read from $all in order.
func (x *index) add(namespace string, recs []record) error {
	if len(recs) == 0 {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range recs {
		r := &recs[i]
		x.cursor, x.started = r.Pos, true
		e, err := decode(namespace, r)
		if errors.Is(err, errNotOurs) {
			continue
		}
		if err != nil {
			return err
		}
		p := uint64(len(x.entries)) + 1
		var prev event.Hash
		if p > 1 {
			prev = x.entries[p-2].globalHash
		}
		if _, dup := x.byID[r.ID]; dup {
			return fmt.Errorf("%w: event ID %s stored twice in $all (second in %s)", event.ErrCorrupt, e.ID, r.Stream)
		}
		x.entries = append(x.entries, entry{
			pos: r.Pos, stream: e.StreamID, version: e.Version,
			globalHash: event.GlobalChainHash(prev, p, e.Hash),
		})
		x.byID[r.ID] = p
	}
	return nil
}

// storedAt is where an already stored event ID lives.
type storedAt struct {
	stream            string
	version, position uint64
}

// stored looks ids up in the index.
func (x *index) stored(ids []uuid.UUID) map[uuid.UUID]storedAt {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var found map[uuid.UUID]storedAt
	for _, id := range ids {
		if p, ok := x.byID[id]; ok {
			if found == nil {
				found = map[uuid.UUID]storedAt{}
			}
			e := x.entries[p-1]
			found[id] = storedAt{e.stream, e.version, p}
		}
	}
	return found
}

// matchRetry is the read-back decision of the Appender idempotency contract:
// no proposed ID stored, not a retry; all stored consecutively and in order
// in stream, a retry with the original result; any other overlap,
// event.ErrIdempotencyConflict.
func matchRetry(stream string, ids []uuid.UUID, found map[uuid.UUID]storedAt) (res event.AppendResult, retry bool, err error) {
	if len(found) == 0 {
		return event.AppendResult{}, false, nil
	}
	conflict := func(why string) (event.AppendResult, bool, error) {
		return event.AppendResult{}, false, fmt.Errorf("append %s: %w: %s", stream, event.ErrIdempotencyConflict, why)
	}
	if len(found) != len(ids) {
		return conflict(fmt.Sprintf("%d of %d event IDs already stored", len(found), len(ids)))
	}
	first := found[ids[0]]
	for i, id := range ids {
		f := found[id]
		switch {
		case f.stream != stream:
			return conflict(fmt.Sprintf("event %s is stored in stream %s", id, f.stream))
		case f.version != first.version+uint64(i) || f.position != first.position+uint64(i):
			return conflict(fmt.Sprintf("event %s is stored at version %d, not after the others in order", id, f.version))
		}
	}
	last := found[ids[len(ids)-1]]
	return event.AppendResult{
		FirstVersion: first.version, LastVersion: last.version,
		FirstPosition: first.position, LastPosition: last.position,
	}, true, nil
}
