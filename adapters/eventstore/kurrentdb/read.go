package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/livecore/livecore/domain/event"
)

// ReadStream implements event.StreamReader. A missing stream reads as
// empty. Positions and global hashes come from the index, caught up when a
// read returns events it has not seen yet.
func (s *Store) ReadStream(ctx context.Context, stream string, fromVersion uint64, limit int) ([]event.Envelope, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	out, err := s.readStream(ctx, stream, max(fromVersion, 1), limit)
	if err != nil {
		return nil, s.port("read "+stream, err)
	}
	return out, nil
}

func (s *Store) readStream(ctx context.Context, stream string, from uint64, limit int) ([]event.Envelope, error) {
	var out []event.Envelope
	next := from - 1 // ESDB revision
	for limit <= 0 || len(out) < limit {
		count := s.cfg.ReadBatch
		if limit > 0 {
			count = min(count, limit-len(out))
		}
		recs, err := s.be.readStream(ctx, s.cfg.Namespace+stream, esdb.Revision(next), uint64(count), false)
		var nf *notFoundError
		if errors.As(err, &nf) {
			break
		}
		if err != nil {
			return nil, err
		}
		for i := range recs {
			e, err := decode(s.cfg.Namespace, &recs[i])
			if err != nil {
				return nil, fmt.Errorf("%s@%d: %w", stream, recs[i].Revision, err)
			}
			if err := s.place(ctx, &e, &recs[i]); err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		if len(recs) < count {
			break
		}
		next = recs[len(recs)-1].Revision + 1
	}
	return out, nil
}

// place fills in e's Position and global hashes from the index.
func (s *Store) place(ctx context.Context, e *event.Envelope, r *record) error {
	p, ok := s.idx.lookup(r.ID)
	if !ok {
		if err := s.catchUp(ctx); err != nil {
			return err
		}
		if p, ok = s.idx.lookup(r.ID); !ok {
			return fmt.Errorf("%w: event %s of %s is not in $all", event.ErrCorrupt, e.ID, e.StreamID)
		}
	}
	ent, _ := s.idx.at(p)
	if ent.pos != r.Pos {
		return fmt.Errorf("%w: event %s is at $all %v, indexed at %v", event.ErrCorrupt, e.ID, r.Pos, ent.pos)
	}
	e.Position = p
	e.GlobalHash = ent.globalHash
	e.PrevGlobalHash = s.idx.globalHash(p - 1)
	return nil
}

// ReadAll implements event.AllReader: positions from the index (caught up
// first), events from $all starting at the indexed place of fromPosition.
// It never returns beyond the head it saw when it started.
func (s *Store) ReadAll(ctx context.Context, fromPosition uint64, limit int) ([]event.Envelope, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	out, err := s.readAll(ctx, fromPosition, limit)
	if err != nil {
		return nil, s.port("read $all", err)
	}
	return out, nil
}

func (s *Store) readAll(ctx context.Context, from uint64, limit int) ([]event.Envelope, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	from = max(from, 1)
	head := s.idx.head()
	if from > head {
		return nil, nil
	}
	want := head - from + 1
	if limit > 0 {
		want = min(want, uint64(limit))
	}
	first, _ := s.idx.at(from)
	var (
		out     []event.Envelope
		p                        = from
		cursor  esdb.AllPosition = esdb.Position{Commit: first.pos.Commit, Prepare: first.pos.Prepare}
		skipPos *allPos
	)
	for uint64(len(out)) < want {
		recs, err := s.be.readAll(ctx, cursor, uint64(s.cfg.ReadBatch))
		if err != nil {
			return nil, err
		}
		for i := range recs {
			r := &recs[i]
			if skipPos != nil && r.Pos == *skipPos {
				continue
			}
			e, err := decode(s.cfg.Namespace, r)
			if errors.Is(err, errNotOurs) {
				continue
			}
			if err != nil {
				return nil, err
			}
			ent, _ := s.idx.at(p)
			if ent.pos != r.Pos {
				return nil, fmt.Errorf("%w: position %d is at $all %v, indexed at %v", event.ErrCorrupt, p, r.Pos, ent.pos)
			}
			e.Position = p
			e.GlobalHash = ent.globalHash
			e.PrevGlobalHash = s.idx.globalHash(p - 1)
			out = append(out, e)
			p++
			if uint64(len(out)) == want {
				return out, nil
			}
		}
		if len(recs) < s.cfg.ReadBatch {
			return nil, fmt.Errorf("%w: $all ended at position %d, indexed up to %d", event.ErrCorrupt, p-1, head)
		}
		last := recs[len(recs)-1].Pos
		cursor, skipPos = esdb.Position{Commit: last.Commit, Prepare: last.Prepare}, &last
	}
	return out, nil
}

// Head implements event.HeadReader: the index caught up to $all's end.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if err := s.catchUp(ctx); err != nil {
		return 0, s.port("head", err)
	}
	return s.idx.head(), nil
}

// WaitHead implements event.HeadWaiter by polling $all every PollInterval
// (at once after an append through this Store). Errors: ctx's error,
// event.ErrClosed.
func (s *Store) WaitHead(ctx context.Context, after uint64) (uint64, error) {
	for {
		moved := s.moved.wait()
		h, err := s.Head(ctx)
		if err != nil || h > after {
			return h, err
		}
		t := time.NewTimer(s.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-s.done:
			t.Stop()
			return 0, event.ErrClosed
		case <-moved:
		case <-t.C:
		}
		t.Stop()
	}
}

// SubscribeAll implements event.Subscriber with event.SubscribeAll over
// ReadAll and WaitHead.
func (s *Store) SubscribeAll(ctx context.Context, fromPosition uint64, handle func(context.Context, []event.Envelope) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return event.SubscribeAll(ctx, s, s, fromPosition, s.cfg.ReadBatch, handle)
}
