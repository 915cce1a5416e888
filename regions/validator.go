package regions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/livecore/livecore/domain/event"
)

// EpochSource lists every ownership epoch (*ControlPlane).
type EpochSource interface {
	Epochs(ctx context.Context) ([]Epoch, error)
}

// Validator decides whether an event was written by the owner of its
// stream's home: whether its origin position lies in one of its writer's
// epochs of that home. It caches the epochs. An ended epoch never changes,
// so a position inside one is decided from the cache. An open epoch may
// have ended since, so a position inside it is accepted only from a cache
// read after the event was received (Check's seen): an event published
// after its writer's cut was recorded is then always refused. An event
// that fits no epoch makes the cache reread once before it is refused. It
// is safe for concurrent use.
type Validator struct {
	src  EpochSource
	topo Topology

	mu     sync.Mutex
	byHome map[string][]Epoch
	readAt time.Time
}

// NewValidator returns a validator over src.
func NewValidator(src EpochSource, topo Topology) *Validator {
	return &Validator{src: src, topo: topo}
}

// Verdict is what Check decided.
type Verdict struct {
	OK     bool
	Home   string
	Epoch  uint64 // the writer's epoch that contains the position (OK)
	Reason string // why not (not OK)
}

// Check decides whether origin wrote stream's event at position pos of its
// $all as the owner of the stream's home; seen is when the event was
// received (the cache must be at least that fresh to trust an open epoch).
// Errors are control-plane errors (the caller retries later, never accepts
// blindly).
func (v *Validator) Check(ctx context.Context, origin string, pos uint64, stream string, seen time.Time) (Verdict, error) {
	home := v.topo.HomeOf(stream)
	if vd, ok := v.check(origin, pos, home, seen); ok {
		return vd, nil
	}
	if err := v.Refresh(ctx); err != nil {
		return Verdict{}, err
	}
	vd, _ := v.check(origin, pos, home, time.Time{})
	return vd, nil
}

// check reports the verdict and whether the cache was enough to reach it.
func (v *Validator) check(origin string, pos uint64, home string, seen time.Time) (Verdict, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var last *Epoch
	for i := range v.byHome[home] {
		e := &v.byHome[home][i]
		if e.Owner != origin {
			continue
		}
		if e.Contains(pos) {
			return Verdict{OK: true, Home: home, Epoch: e.Epoch}, e.EndPos != nil || !v.readAt.Before(seen)
		}
		last = e
	}
	reason := fmt.Sprintf("%s never owned home %s", origin, home)
	if last != nil {
		reason = fmt.Sprintf("position %d of %s is outside its epochs of home %s (last: epoch %d, %s)", pos, origin, home, last.Epoch, interval(*last))
	}
	return Verdict{Home: home, Reason: reason}, !v.readAt.Before(seen) && !seen.IsZero()
}

func interval(e Epoch) string {
	s := "never started"
	if e.StartPos != nil {
		s = fmt.Sprintf("(%d, ", *e.StartPos)
		if e.EndPos != nil {
			s += fmt.Sprintf("%d]", *e.EndPos)
		} else {
			s += "open)"
		}
	}
	return s
}

// Refresh rereads the epochs.
func (v *Validator) Refresh(ctx context.Context) error {
	read := time.Now()
	eps, err := v.src.Epochs(ctx)
	if err != nil {
		return err
	}
	by := map[string][]Epoch{}
	for _, e := range eps {
		by[e.Home] = append(by[e.Home], e)
	}
	v.mu.Lock()
	if read.After(v.readAt) {
		v.byHome, v.readAt = by, read
	}
	v.mu.Unlock()
	return nil
}

// Epochs returns the cached epochs of home.
func (v *Validator) Epochs(home string) []Epoch {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]Epoch(nil), v.byHome[home]...)
}

// LogReader reads a store's $all.
type LogReader interface {
	event.AllReader
	event.HeadReader
}

// StaleTail is what FindStaleTail found in a region's own log: events it wrote
// that fall outside its epochs (beyond a cut), which the rest of the world
// rejected. After a forced failover these are exactly the events that were
// not replicated: the region's loss.
type StaleTail struct {
	Region string `json:"region"`
	Head   uint64 `json:"head"`
	// Cut is the lowest cut among the region's ended epochs; the scan
	// starts after it.
	Cut uint64 `json:"cut"`
	// FirstStale is the position of the first stale event (0: none). The
	// log is valid up to FirstStale-1.
	FirstStale uint64           `json:"first_stale"`
	Events     []event.Envelope `json:"events"`
}

// ErrCutPending: one of the region's epochs was taken away but its cut is
// not recorded yet (a forced failover is in progress): the region must not
// start publishing until it is.
var ErrCutPending = errors.New("a failover of this region is in progress: its cut is not recorded yet")

// FindStaleTail scans region's log (after the lowest cut of its ended
// epochs) for events the region wrote outside its epochs. Replicas (other
// regions' events) are never stale here: they were validated on the way in.
func FindStaleTail(ctx context.Context, v *Validator, region string, log LogReader) (StaleTail, error) {
	if err := v.Refresh(ctx); err != nil {
		return StaleTail{}, err
	}
	t := StaleTail{Region: region}
	head, err := log.Head(ctx)
	if err != nil {
		return StaleTail{}, err
	}
	t.Head = head
	v.mu.Lock()
	cut, ended := uint64(0), false
	for _, eps := range v.byHome {
		for i, e := range eps {
			if e.Owner != region || i == len(eps)-1 {
				continue // not ours, or current
			}
			if e.EndPos == nil {
				if e.StartPos != nil {
					v.mu.Unlock()
					return StaleTail{}, fmt.Errorf("home %s epoch %d: %w", e.Home, e.Epoch, ErrCutPending)
				}
				continue // never started: nothing written under it
			}
			if !ended || *e.EndPos < cut {
				cut, ended = *e.EndPos, true
			}
		}
	}
	v.mu.Unlock()
	if !ended {
		return t, nil
	}
	t.Cut = cut
	for next := cut + 1; next <= head; {
		batch, err := log.ReadAll(ctx, next, 5000)
		if err != nil {
			return StaleTail{}, err
		}
		if len(batch) == 0 {
			break
		}
		for i := range batch {
			e := &batch[i]
			next = e.Position + 1
			if e.Metadata.Region != region {
				continue
			}
			home := v.topo.HomeOf(e.StreamID)
			if vd, _ := v.check(region, e.Position, home, time.Time{}); !vd.OK {
				if t.FirstStale == 0 {
					t.FirstStale = e.Position
				}
				t.Events = append(t.Events, *e)
			}
		}
	}
	return t, nil
}
