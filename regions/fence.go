package regions

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/livecore/livecore/domain/event"
)

// ErrOwnershipLost: the append was stored locally but this region's lease
// on the stream's home stopped being known-valid before the append
// returned, so it is not acknowledged: its outcome is unknown (it survives
// only if it reached Kafka before the handover's cut). Retry the command,
// with the same command ID, against the owner.
var ErrOwnershipLost = errors.New("ownership lost during the append: outcome unknown")

// Gate admits writes per home; *Leases is the implementation.
type Gate interface {
	Enter(home string) (*Guard, error)
}

// FencedAppender wraps any event store's Appender so that only the owner
// of a stream's home writes it:
//
//   - before the append, the region's lease on the home must be
//     known-valid (Gate.Enter); otherwise *NotOwnerError (errors.Is
//     ErrNotOwner) and nothing is written;
//   - every proposed event is stamped with Metadata.Region = this region
//     (covered by the stream hash; replicators use it to find the writer's
//     epoch);
//   - after the append, the lease must still be known-valid; otherwise
//     ErrOwnershipLost: the caller must not acknowledge.
//
// A handover waits for admitted appends to finish (Leases.Drain), so no
// write admitted under an epoch lands after its cut in a planned failover.
// It is safe for concurrent use.
type FencedAppender struct {
	next   event.Appender
	topo   Topology
	region string
	gate   Gate

	refused, lost atomic.Uint64
}

var _ event.Appender = (*FencedAppender)(nil)

// NewFencedAppender wraps next for region.
func NewFencedAppender(next event.Appender, topo Topology, region string, gate Gate) *FencedAppender {
	if next == nil || gate == nil || region == "" {
		panic("regions: NewFencedAppender: next, gate and region are required")
	}
	return &FencedAppender{next: next, topo: topo, region: region, gate: gate}
}

// Append implements event.Appender with the ownership checks above.
func (f *FencedAppender) Append(ctx context.Context, stream string, expected event.ExpectedVersion, events []event.Proposed) (event.AppendResult, error) {
	home := f.topo.HomeOf(stream)
	g, err := f.gate.Enter(home)
	if err != nil {
		f.refused.Add(1)
		return event.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	defer g.Exit()
	stamped := make([]event.Proposed, len(events))
	for i, e := range events {
		e.Metadata.Region = f.region
		stamped[i] = e
	}
	res, err := f.next.Append(ctx, stream, expected, stamped)
	if err != nil {
		return res, err
	}
	if !g.Valid() {
		f.lost.Add(1)
		return event.AppendResult{}, fmt.Errorf("append %s (home %s, epoch %d): %w", stream, home, g.Epoch(), ErrOwnershipLost)
	}
	return res, nil
}

// FenceStats counts what the fence refused.
type FenceStats struct {
	// Refused: appends refused before writing (not the owner, lease not
	// known-valid).
	Refused uint64 `json:"refused"`
	// Lost: appends written but not acknowledged because the lease lapsed
	// during the append.
	Lost uint64 `json:"lost"`
}

// Stats returns the counters.
func (f *FencedAppender) Stats() FenceStats {
	return FenceStats{Refused: f.refused.Load(), Lost: f.lost.Load()}
}
