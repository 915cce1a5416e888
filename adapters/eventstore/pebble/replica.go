package pebble

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/livecore/livecore/domain/event"
)

// This file adds event.ReplicaAppender to the store: events written by
// another region's store, appended through the same committer and group
// commit as local appends (one queue, one order, one fsync per group), so
// replicas and local writes interleave on one $all and one set of stream
// heads. The only hook in store.go is appendReq.replica and the branch at
// the top of prepare.

var _ event.ReplicaAppender = (*Store)(nil)

// replicaBatch is one AppendReplicated call as the committer sees it.
type replicaBatch struct {
	events []event.Envelope
	res    event.ReplicaResult // set by the committer before it replies
}

// AppendReplicated implements event.ReplicaAppender. The batch goes through
// the group committer like an Append: checked against the stream heads as
// of its turn, written with the group's batch and fsync, acknowledged only
// once durable. Errors: *event.ReplicaError (nothing stored),
// event.ErrReadOnly, event.ErrCorrupt, event.ErrClosed, ctx's error (the
// outcome is then unknown: offer the batch again, re-delivery is skipped).
func (s *Store) AppendReplicated(ctx context.Context, events []event.Envelope) (event.ReplicaResult, error) {
	if len(events) == 0 {
		return event.ReplicaResult{}, nil
	}
	seen := make(map[string]struct{}, len(events))
	for i := range events {
		e := &events[i]
		err := event.ValidateReplica(e)
		if _, dup := seen[e.ID]; dup && err == nil {
			err = fmt.Errorf("%w: ID twice in one batch", event.ErrInvalidAppend)
		}
		if err != nil {
			return event.ReplicaResult{}, &event.ReplicaError{Index: i, ID: e.ID, Stream: e.StreamID, Version: e.Version, Err: err}
		}
		seen[e.ID] = struct{}{}
	}
	if err := ctx.Err(); err != nil {
		return event.ReplicaResult{}, err
	}
	if err := s.readOnly(); err != nil {
		return event.ReplicaResult{}, fmt.Errorf("replicate: %w", err)
	}
	rb := &replicaBatch{events: events}
	r := &appendReq{ctx: ctx, stream: "$replica", replica: rb, done: make(chan appendResp, 1)}
	for i := range events {
		r.bytes += len(events[i].Data) + 256
	}
	s.qmu.Lock()
	if s.qclosed {
		s.qmu.Unlock()
		return event.ReplicaResult{}, event.ErrClosed
	}
	s.queue = append(s.queue, r)
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	select {
	case resp := <-r.done:
		if resp.err != nil {
			return event.ReplicaResult{}, resp.err
		}
		return rb.res, nil
	case <-ctx.Done():
		return event.ReplicaResult{}, fmt.Errorf("replicate: outcome unknown: %w", ctx.Err())
	}
}

// prepareReplicas decides a replica batch against the group's state and
// adds it to b. It decides the whole batch before touching b or tx, so a
// refused event leaves nothing of the batch behind. The committer
// goroutine calls it.
func (s *Store) prepareReplicas(b *pebble.Batch, tx *groupState, r *appendReq) (event.AppendResult, bool, error) {
	rb := r.replica
	refuse := func(i int, err error) (event.AppendResult, bool, error) {
		e := &rb.events[i]
		return event.AppendResult{}, false, &event.ReplicaError{Index: i, ID: e.ID, Stream: e.StreamID, Version: e.Version, Err: err}
	}
	heads := map[string]streamHead{} // this batch's view, over the group's
	keep := make([]bool, len(rb.events))
	pending := false // a skipped event is in this group, not yet durable
	var res event.ReplicaResult
	for i := range rb.events {
		e := &rb.events[i]
		loc, inGroup := tx.ids[e.ID]
		found := inGroup
		if !found {
			var err error
			tx.key = idKey(tx.key[:0], e.ID)
			if loc, found, err = s.lookupID(tx.key); err != nil {
				return event.AppendResult{}, false, fmt.Errorf("replicate %s: %w", e.StreamID, err)
			}
		}
		if found {
			same, err := s.storedSame(r.ctx, tx, loc, e, inGroup)
			if err != nil {
				return event.AppendResult{}, false, err
			}
			if !same {
				return refuse(i, fmt.Errorf("%w: ID stored as %s v%d", event.ErrReplicaConflict, loc.stream, loc.version))
			}
			pending = pending || inGroup
			res.Skipped++
			continue
		}
		h, ok := heads[e.StreamID]
		if !ok {
			var err error
			if h, err = s.streamHead(tx, e.StreamID); err != nil {
				return event.AppendResult{}, false, fmt.Errorf("replicate %s: %w", e.StreamID, err)
			}
		}
		if err := event.LinkReplica(h.version, h.hash, e); err != nil {
			return refuse(i, err)
		}
		heads[e.StreamID] = streamHead{version: e.Version, hash: e.Hash}
		keep[i] = true
	}
	for i := range rb.events {
		if !keep[i] {
			continue
		}
		tx.pos++
		e := rb.events[i] // a copy: the caller's envelopes stay as they were
		e.RecordedAt = e.RecordedAt.UTC()
		e.Position = tx.pos
		e.PrevGlobalHash = tx.globalHash
		e.GlobalHash = event.GlobalChainHash(tx.globalHash, e.Position, e.Hash)
		tx.globalHash = e.GlobalHash

		tx.key = eventKey(tx.key[:0], e.Position)
		tx.buf = appendRecord(tx.buf[:0], tx.key, &e)
		if err := b.Set(tx.key, tx.buf, nil); err != nil {
			return event.AppendResult{}, false, err
		}
		tx.key = streamKey(tx.key[:0], e.StreamID, e.Version)
		tx.buf = appendPosition(tx.buf[:0], tx.key, e.Position)
		if err := b.Set(tx.key, tx.buf, nil); err != nil {
			return event.AppendResult{}, false, err
		}
		loc := idLoc{position: e.Position, version: e.Version, stream: e.StreamID}
		tx.key = idKey(tx.key[:0], e.ID)
		tx.buf = appendIDLoc(tx.buf[:0], tx.key, loc)
		if err := b.Set(tx.key, tx.buf, nil); err != nil {
			return event.AppendResult{}, false, err
		}
		s.filter.add(tx.key)
		tx.ids[e.ID] = loc
		h := streamHead{version: e.Version, position: e.Position, hash: e.Hash}
		heads[e.StreamID] = h
		tx.heads[e.StreamID] = h
		res.Appended++
		res.LastPosition = e.Position
	}
	for stream, h := range heads {
		if h.position == 0 {
			continue // linked in the first pass only: nothing of it is kept
		}
		tx.key = headKey(tx.key[:0], stream)
		tx.buf = appendHead(tx.buf[:0], tx.key, h)
		if err := b.Set(tx.key, tx.buf, nil); err != nil {
			return event.AppendResult{}, false, err
		}
		s.filter.add(tx.key)
	}
	rb.res = res
	if res.Appended > 0 {
		tx.appends++
		tx.events += uint64(res.Appended)
		pending = true
	}
	return event.AppendResult{}, pending, nil
}

// storedSame reports whether the event stored at loc (durable, or written
// earlier in this group when inGroup) is e: same stream, version and hash.
func (s *Store) storedSame(ctx context.Context, tx *groupState, loc idLoc, e *event.Envelope, inGroup bool) (bool, error) {
	if loc.stream != e.StreamID || loc.version != e.Version {
		return false, nil
	}
	if h, ok := tx.heads[e.StreamID]; ok && h.version == e.Version {
		return h.hash == e.Hash, nil
	}
	if inGroup {
		// Written earlier in this group and already followed by another
		// event: its hash is not at hand. Rare (one event delivered twice
		// within one group commit); a transient error makes the caller
		// offer it again once the group is durable and readable.
		return false, fmt.Errorf("replicate %s: event %s v%d is being written; offer it again", e.StreamID, e.ID, e.Version)
	}
	if h, ok := s.heads.get(e.StreamID); ok && h.version == e.Version {
		return h.hash == e.Hash, nil
	}
	got, err := s.ReadStream(ctx, e.StreamID, e.Version, 1)
	if err != nil {
		return false, fmt.Errorf("replicate %s: %w", e.StreamID, err)
	}
	if len(got) != 1 {
		return false, fmt.Errorf("replicate %s: %w: v%d indexed at %d but not readable", e.StreamID, event.ErrCorrupt, e.Version, loc.position)
	}
	return got[0].Hash == e.Hash, nil
}
