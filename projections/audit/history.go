package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/projections"
)

// Record is one event as the audit trail shows it: where it sits, when it
// was recorded, who caused it, its hashes and whether it links to its
// predecessor.
type Record struct {
	Position      uint64          `json:"position"`
	Version       uint64          `json:"version"`
	EventID       string          `json:"event_id"`
	Type          string          `json:"type"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Tenant        string          `json:"tenant"`
	Actor         string          `json:"actor"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	Region        string          `json:"region,omitempty"`
	Hash          event.Hash      `json:"hash"`
	PrevHash      event.Hash      `json:"prev_hash"`
	GlobalHash    event.Hash      `json:"global_hash"`
	Data          json.RawMessage `json:"data"`
	// Linked: the event's content matches its hash and its recorded
	// predecessor hash is its predecessor's hash (the stream chain holds
	// up to here). Verify checks the global chain as well.
	Linked bool `json:"linked"`
}

// HistoryOptions narrows a history.
type HistoryOptions struct {
	// Tenant, if set, must be the stream's tenant (its first event's);
	// another tenant's stream reads as projections.ErrNotFound.
	Tenant string
	// FromVersion and Limit page through long streams (Limit 0: all).
	FromVersion uint64
	Limit       int
}

// History returns the events of one stream with positions, times, actors
// and hashes, checking the stream's chain as it goes. A stream that does
// not exist (or is another tenant's) is projections.ErrNotFound.
func History(ctx context.Context, r event.StreamReader, stream string, opts HistoryOptions) ([]Record, error) {
	evs, err := r.ReadStream(ctx, stream, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", stream, err)
	}
	if len(evs) == 0 || (opts.Tenant != "" && evs[0].Metadata.Tenant != opts.Tenant) {
		return nil, fmt.Errorf("history %s: %w", stream, projections.ErrNotFound)
	}
	var h hasher
	var prev event.Hash
	out := make([]Record, 0, len(evs))
	for i := range evs {
		e := &evs[i]
		linked := e.PrevHash == prev && e.Version == uint64(i+1) && h.stream(e.PrevHash, e) == e.Hash
		prev = e.Hash
		if e.Version < opts.FromVersion {
			continue
		}
		if opts.Limit > 0 && len(out) == opts.Limit {
			break
		}
		out = append(out, Record{
			Position: e.Position, Version: e.Version, EventID: e.ID, Type: e.Type, RecordedAt: e.RecordedAt,
			Tenant: e.Metadata.Tenant, Actor: e.Metadata.Actor, CorrelationID: e.Metadata.CorrelationID,
			CausationID: e.Metadata.CausationID, Region: e.Metadata.Region,
			Hash: e.Hash, PrevHash: e.PrevHash, GlobalHash: e.GlobalHash, Data: json.RawMessage(e.Data), Linked: linked,
		})
	}
	return out, nil
}
