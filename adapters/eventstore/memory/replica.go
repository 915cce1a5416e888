package memory

import (
	"context"
	"fmt"

	"github.com/livecore/livecore/domain/event"
)

var _ event.ReplicaAppender = (*Store)(nil)

// AppendReplicated implements event.ReplicaAppender: the batch is checked
// whole (validity, stream links, re-deliveries) and then stored at once
// under the store's lock, keeping every field of each envelope but
// Position and the global hashes, which this store assigns.
func (s *Store) AppendReplicated(ctx context.Context, events []event.Envelope) (event.ReplicaResult, error) {
	if err := ctx.Err(); err != nil {
		return event.ReplicaResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return event.ReplicaResult{}, event.ErrClosed
	}
	type head struct {
		version uint64
		hash    event.Hash
	}
	heads := map[string]head{}   // streams touched by this batch
	batchIDs := map[string]int{} // IDs appended by this batch
	refuse := func(i int, err error) (event.ReplicaResult, error) {
		e := &events[i]
		return event.ReplicaResult{}, &event.ReplicaError{Index: i, ID: e.ID, Stream: e.StreamID, Version: e.Version, Err: err}
	}
	var res event.ReplicaResult
	keep := make([]bool, len(events))
	for i := range events {
		e := &events[i]
		if err := event.ValidateReplica(e); err != nil {
			return refuse(i, err)
		}
		if _, dup := batchIDs[e.ID]; dup {
			return refuse(i, fmt.Errorf("%w: ID twice in one batch", event.ErrInvalidAppend))
		}
		if pos, ok := s.ids[e.ID]; ok {
			got := &s.all[pos-1]
			if got.StreamID != e.StreamID || got.Version != e.Version || got.Hash != e.Hash {
				return refuse(i, fmt.Errorf("%w: ID stored as %s v%d", event.ErrReplicaConflict, got.StreamID, got.Version))
			}
			res.Skipped++
			continue
		}
		h, ok := heads[e.StreamID]
		if !ok {
			if ps := s.streams[e.StreamID]; len(ps) > 0 {
				last := &s.all[ps[len(ps)-1]-1]
				h = head{last.Version, last.Hash}
			}
		}
		if err := event.LinkReplica(h.version, h.hash, e); err != nil {
			return refuse(i, err)
		}
		heads[e.StreamID] = head{e.Version, e.Hash}
		batchIDs[e.ID] = i
		keep[i] = true
	}
	var prevGlobal event.Hash
	if n := len(s.all); n > 0 {
		prevGlobal = s.all[n-1].GlobalHash
	}
	for i := range events {
		if !keep[i] {
			continue
		}
		e := clone(events[i])
		e.RecordedAt = e.RecordedAt.UTC()
		e.Position = uint64(len(s.all)) + 1
		e.PrevGlobalHash = prevGlobal
		e.GlobalHash = event.GlobalChainHash(prevGlobal, e.Position, e.Hash)
		prevGlobal = e.GlobalHash
		s.all = append(s.all, e)
		s.streams[e.StreamID] = append(s.streams[e.StreamID], e.Position)
		s.ids[e.ID] = e.Position
		res.Appended++
		res.LastPosition = e.Position
	}
	if res.Appended > 0 {
		close(s.moved)
		s.moved = make(chan struct{})
	}
	return res, nil
}
