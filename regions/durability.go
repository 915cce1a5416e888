package regions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/livecore/livecore/domain/event"
)

// Mode is when a write is acknowledged to the client.
//
// Trade-off:
//
//   - Async acknowledges once the append is fsynced in the owning region.
//     Latency is one local group commit (sub-millisecond to a few ms). If
//     the region is lost before its bridge has committed the event to Kafka
//     (the bridge's lag: typically tens of milliseconds, MaxDelay 50 ms
//     plus a commit), a forced failover promotes a region without it: the
//     event is lost to the rest of the world and reported as unreplicated.
//     RPO = the bridge lag at the moment of the failure, measured and
//     reported by the drill; a planned failover loses nothing.
//   - Sync acknowledges only once the bridge has committed the event to
//     Kafka (Bridge.WaitPublished), which production replicates across
//     regions (acks=all, min.insync.replicas >= 2). Latency adds one bridge
//     transaction (~MaxDelay + a Kafka commit, 50-100 ms); throughput is
//     unchanged because the bridge batches. A forced failover first fences
//     the old owner's bridge and cuts at its final checkpoint, so every
//     acknowledged event is at or below the cut and is replicated before the
//     new owner starts: RPO = 0.
type Mode uint8

const (
	Async Mode = iota
	Sync
)

func (m Mode) String() string {
	if m == Sync {
		return "sync"
	}
	return "async"
}

// ParseMode parses "async" or "sync".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "async":
		return Async, nil
	case "sync":
		return Sync, nil
	}
	return 0, fmt.Errorf("durability mode %q: want async or sync", s)
}

// MarshalText encodes the mode's name.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText parses with ParseMode.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	*m = v
	return err
}

// Publisher reports what the region's bridge has committed to Kafka
// (*kafka.Bridge).
type Publisher interface {
	WaitPublished(ctx context.Context, position uint64) error
}

// ErrNotDurable: in sync mode, the event was stored locally but not
// committed to Kafka within the timeout (or ctx ended): its outcome is
// unknown; do not acknowledge. Retry the command with the same ID.
var ErrNotDurable = errors.New("not yet committed to Kafka: outcome unknown")

// Acker acknowledges appends according to the durability mode. The API
// layer calls Ack after a successful (fenced) append and answers 2xx only if
// Ack returns nil.
type Acker struct {
	Mode Mode
	// Published is the region's bridge; required in Sync mode.
	Published Publisher
	// Timeout bounds the wait in Sync mode. Default 10 s.
	Timeout time.Duration
}

// Ack returns nil when the append res may be acknowledged: at once in
// Async mode; once its last position is committed to Kafka in Sync mode
// (ErrNotDurable otherwise).
func (a Acker) Ack(ctx context.Context, res event.AppendResult) error {
	if a.Mode != Sync || res.LastPosition == 0 {
		return nil
	}
	if a.Published == nil {
		return fmt.Errorf("%w: sync mode without a bridge", ErrNotDurable)
	}
	timeout := a.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := a.Published.WaitPublished(wctx, res.LastPosition); err != nil {
		return fmt.Errorf("position %d: %w: %v", res.LastPosition, ErrNotDurable, err)
	}
	return nil
}
