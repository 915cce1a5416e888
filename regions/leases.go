package regions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// LeaseStore is the part of the control plane the lease keeper uses.
type LeaseStore interface {
	Owners(ctx context.Context) ([]Ownership, error)
	Acquire(ctx context.Context, home string, epoch uint64, region, holder string, startPos uint64, ttl time.Duration) (int64, error)
	Renew(ctx context.Context, region, holder string, leases map[string]uint64, ttl time.Duration) (map[string]bool, error)
	Release(ctx context.Context, home string, epoch uint64, region, holder string, endPos uint64) error
}

var _ LeaseStore = (*ControlPlane)(nil)

// LeasesConfig configures a lease keeper.
type LeasesConfig struct {
	Store  LeaseStore
	Region string
	// Holder identifies this process (a new one per start); a lease held
	// by another holder of the same region is waited out, never shared.
	// Default: random.
	Holder string
	// Head returns the local store's $all head; it is recorded as an
	// epoch's start when the lease is first taken. Required.
	Head func(ctx context.Context) (uint64, error)
	// TTL is the lease's lifetime in the control plane. Default 3 s.
	// A forced failover waits at most this long after the owner's last
	// renewal, so it bounds the RTO from below.
	TTL time.Duration
	// Margin is how long before its control-plane expiry the holder stops
	// trusting its lease (clock-rate drift, scheduling delays). Default
	// TTL/5.
	Margin time.Duration
	// Poll is how often the keeper reads the ownership table (and renews
	// when a renewal is due: every TTL/3). Default 250 ms.
	Poll time.Duration
	// OnLost is called (from the keeper's goroutine) when a home held here
	// was taken away without this process releasing it: this process is
	// fenced for that home. Optional.
	OnLost func(home string, epoch uint64, now Ownership)
	Logger *slog.Logger
	// Now is the clock; its monotonic reading is what validity uses.
	// Default time.Now.
	Now func() time.Time
}

func (c *LeasesConfig) setDefaults() {
	if c.Holder == "" {
		var b [8]byte
		rand.Read(b[:])
		c.Holder = c.Region + "-" + hex.EncodeToString(b[:])
	}
	if c.TTL == 0 {
		c.TTL = 3 * time.Second
	}
	if c.Margin == 0 {
		c.Margin = c.TTL / 5
	}
	if c.Poll == 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports a configuration that cannot work.
func (c LeasesConfig) Validate() error {
	switch {
	case c.Store == nil || c.Head == nil:
		return errors.New("leases: Store and Head are required")
	case c.Region == "":
		return errors.New("leases: Region is required")
	case c.Margin <= 0 || c.Margin >= c.TTL/2:
		return fmt.Errorf("leases: margin %v must be in (0, TTL/2 = %v)", c.Margin, c.TTL/2)
	case c.Poll <= 0 || c.Poll > c.TTL/3:
		return fmt.Errorf("leases: poll %v must be in (0, TTL/3 = %v]", c.Poll, c.TTL/3)
	}
	return nil
}

// Leases keeps this region's leases: it takes the lease of every active
// home the control plane says this region owns, renews it every TTL/3,
// and gates writes (Enter) on the lease being known-valid on the local
// monotonic clock. It is safe for concurrent use.
type Leases struct {
	cfg LeasesConfig
	log *slog.Logger

	mu      sync.Mutex
	homes   map[string]*lease
	owners  []Ownership // last ownership table read
	readAt  time.Time
	fenced  bool          // a home was taken away while held: acquire nothing more
	changed chan struct{} // closed and replaced when owners or leases change
}

type lease struct {
	epoch      uint64
	held       bool
	validUntil time.Time // local monotonic: renewal send time + TTL - Margin
	renewedAt  time.Time // send time of the last successful renewal
	draining   bool      // Drain closed the gate: no new writes
	inflight   int
	idle       chan struct{} // closed when inflight drops to 0 while draining
	lost       bool          // taken away while held: fenced
}

// NewLeases returns a keeper; call Run to start it.
func NewLeases(cfg LeasesConfig) (*Leases, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Leases{cfg: cfg, log: cfg.Logger.With("component", "leases", "region", cfg.Region), homes: map[string]*lease{}, changed: make(chan struct{})}, nil
}

// Holder returns this process's holder ID.
func (l *Leases) Holder() string { return l.cfg.Holder }

// ErrNotOwner: this region may not write the stream's home now: another
// region owns it, or this region's lease is not known-valid (not taken
// yet, expiring, draining, or lost). Returned as *NotOwnerError.
var ErrNotOwner = errors.New("this region does not hold the stream's home")

// NotOwnerError says who owns the home, as far as this region knows.
type NotOwnerError struct {
	Home   string
	Owner  string // "" when unknown
	Epoch  uint64
	Reason string
}

func (e *NotOwnerError) Error() string {
	return fmt.Sprintf("%v: home %s is owned by %q at epoch %d (%s)", ErrNotOwner, e.Home, e.Owner, e.Epoch, e.Reason)
}

// Is makes errors.Is(err, ErrNotOwner) true.
func (e *NotOwnerError) Is(target error) bool { return target == ErrNotOwner }

// Guard is a write admitted by Enter; Exit must be called once.
type Guard struct {
	l     *Leases
	home  string
	epoch uint64
	once  sync.Once
}

// Epoch is the epoch the write was admitted under.
func (g *Guard) Epoch() uint64 { return g.epoch }

// Valid reports whether the lease the write was admitted under is still
// known-valid now (same epoch, not lost, not past its local validity).
func (g *Guard) Valid() bool {
	g.l.mu.Lock()
	defer g.l.mu.Unlock()
	h := g.l.homes[g.home]
	return h != nil && h.held && !h.lost && h.epoch == g.epoch && g.l.cfg.Now().Before(h.validUntil)
}

// Exit ends the write.
func (g *Guard) Exit() {
	g.once.Do(func() {
		g.l.mu.Lock()
		defer g.l.mu.Unlock()
		if h := g.l.homes[g.home]; h != nil {
			h.inflight--
			if h.inflight == 0 && h.idle != nil {
				close(h.idle)
				h.idle = nil
			}
		}
	})
}

// Enter admits a write to home if this region holds a known-valid lease
// on it; otherwise *NotOwnerError.
func (l *Leases) Enter(home string) (*Guard, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.homes[home]
	now := l.cfg.Now()
	reason := ""
	switch {
	case h == nil || !h.held:
		reason = "lease not held here"
	case h.lost:
		reason = "lease lost (fenced)"
	case h.draining:
		reason = "draining for a handover"
	case !now.Before(h.validUntil):
		reason = fmt.Sprintf("lease not known-valid for %v", now.Sub(h.validUntil).Round(time.Millisecond))
	default:
		h.inflight++
		return &Guard{l: l, home: home, epoch: h.epoch}, nil
	}
	e := &NotOwnerError{Home: home, Reason: reason}
	for _, o := range l.owners {
		if o.Home == home {
			e.Owner, e.Epoch = o.Owner, o.Epoch
		}
	}
	return nil, e
}

// Owners returns the ownership table as last read (at most Poll old while
// the control plane answers) and when it was read.
func (l *Leases) Owners() ([]Ownership, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Ownership(nil), l.owners...), l.readAt
}

// LeaseState is one home's lease as this process sees it.
type LeaseState struct {
	Home       string        `json:"home"`
	Epoch      uint64        `json:"epoch"`
	Held       bool          `json:"held"`
	Valid      bool          `json:"valid"`
	ValidFor   time.Duration `json:"valid_for_ns"`
	Draining   bool          `json:"draining,omitempty"`
	Lost       bool          `json:"lost,omitempty"`
	InFlight   int           `json:"in_flight"`
	RenewedAgo time.Duration `json:"renewed_ago_ns"`
}

// States returns this process's leases, by home.
func (l *Leases) States() []LeaseState {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	out := make([]LeaseState, 0, len(l.homes))
	for name, h := range l.homes {
		out = append(out, LeaseState{
			Home: name, Epoch: h.epoch, Held: h.held, Valid: h.held && !h.lost && !h.draining && now.Before(h.validUntil),
			ValidFor: h.validUntil.Sub(now), Draining: h.draining, Lost: h.lost, InFlight: h.inflight, RenewedAgo: now.Sub(h.renewedAt),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Home < out[j].Home })
	return out
}

// Holds reports whether this process holds a known-valid lease on home
// now (held, not lost, not draining, within its local validity): whether
// it may act for the home's streams (write, start sagas, move money).
func (l *Leases) Holds(home string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.homes[home]
	return h != nil && h.held && !h.lost && !h.draining && l.cfg.Now().Before(h.validUntil)
}

// Changed returns a channel closed at the next change of ownership or
// leases seen by this keeper.
func (l *Leases) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *Leases) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Run keeps the leases until ctx ends. Errors talking to the control plane
// are logged and retried at the next poll; meanwhile leases simply run out
// locally (writes stop at validUntil), which is the safe direction.
func (l *Leases) Run(ctx context.Context) error {
	t := time.NewTicker(l.cfg.Poll)
	defer t.Stop()
	for {
		l.tick(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Refresh runs one poll now (read owners, acquire, renew what is due).
func (l *Leases) Refresh(ctx context.Context) { l.tick(ctx) }

func (l *Leases) tick(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, l.cfg.TTL/2)
	defer cancel()
	owners, err := l.cfg.Store.Owners(cctx)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("read ownership", "err", err)
		}
		return
	}
	l.mu.Lock()
	l.owners, l.readAt = owners, l.cfg.Now()
	var acquire []Ownership
	renew := map[string]uint64{}
	now := l.cfg.Now()
	changed := false
	for _, o := range owners {
		h := l.homes[o.Home]
		mine := o.Owner == l.cfg.Region && o.State == StateActive
		if h != nil && h.held && (!mine || o.Epoch != h.epoch || o.Holder != l.cfg.Holder) {
			// Taken away without our release: fenced.
			if !h.lost && !h.draining {
				h.lost, l.fenced = true, true
				l.log.Error("lease lost: home taken away (this process is fenced for it)", "home", o.Home, "epoch", h.epoch, "now", o)
				if l.cfg.OnLost != nil {
					defer l.cfg.OnLost(o.Home, h.epoch, o)
				}
			}
			h.held = false
			changed = true
		}
		if !mine {
			continue
		}
		if h == nil || h.epoch != o.Epoch || (!h.held && !h.draining) {
			if h == nil || h.epoch != o.Epoch {
				h = &lease{epoch: o.Epoch}
				l.homes[o.Home] = h
			}
			if !l.fenced && (o.Holder == l.cfg.Holder || o.LeaseExpired() || o.Holder == "") {
				acquire = append(acquire, o)
			}
			continue
		}
		if h.held && now.Sub(h.renewedAt) >= l.cfg.TTL/3 {
			renew[o.Home] = h.epoch
		}
	}
	if changed {
		l.notifyLocked()
	}
	l.mu.Unlock()

	for _, o := range acquire {
		l.acquire(cctx, o)
	}
	if len(renew) > 0 {
		sent := l.cfg.Now()
		got, err := l.cfg.Store.Renew(cctx, l.cfg.Region, l.cfg.Holder, renew, l.cfg.TTL)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("renew leases", "err", err)
			}
			return
		}
		l.mu.Lock()
		for home, ok := range got {
			h := l.homes[home]
			if h == nil || h.epoch != renew[home] {
				continue
			}
			if ok {
				h.renewedAt, h.validUntil = sent, sent.Add(l.cfg.TTL-l.cfg.Margin)
			} else if h.held {
				h.held, h.lost, l.fenced = false, true, true
				l.log.Error("lease renewal refused (this process is fenced for the home)", "home", home, "epoch", h.epoch)
				l.notifyLocked()
			}
		}
		l.mu.Unlock()
	}
}

// acquire takes the lease of o.Home for o.Epoch, recording the local head
// as the epoch's start. No write of the home can be in flight here: the
// gate is closed while the lease is not held.
func (l *Leases) acquire(ctx context.Context, o Ownership) {
	head, err := l.cfg.Head(ctx)
	if err != nil {
		l.log.Warn("acquire: read head", "home", o.Home, "err", err)
		return
	}
	sent := l.cfg.Now()
	if _, err := l.cfg.Store.Acquire(ctx, o.Home, o.Epoch, l.cfg.Region, l.cfg.Holder, head, l.cfg.TTL); err != nil {
		if !errors.Is(err, ErrStale) && ctx.Err() == nil {
			l.log.Warn("acquire lease", "home", o.Home, "epoch", o.Epoch, "err", err)
		}
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.homes[o.Home]
	if h == nil || h.epoch != o.Epoch {
		return
	}
	h.held, h.lost, h.draining = true, false, false
	h.renewedAt, h.validUntil = sent, sent.Add(l.cfg.TTL-l.cfg.Margin)
	l.log.Info("lease taken", "home", o.Home, "epoch", o.Epoch, "start_position", head)
	l.notifyLocked()
}

// Drain closes home's gate (new writes get ErrNotOwner), waits until the
// writes in flight have ended, and returns the epoch it held. The lease is
// still held (and renewed) until Release. Errors: *NotOwnerError when the
// lease is not held, ctx's error (the gate stays closed; Reopen to undo).
func (l *Leases) Drain(ctx context.Context, home string) (uint64, error) {
	l.mu.Lock()
	h := l.homes[home]
	if h == nil || !h.held || h.lost {
		l.mu.Unlock()
		return 0, &NotOwnerError{Home: home, Reason: "drain: lease not held here"}
	}
	h.draining = true
	var idle chan struct{}
	if h.inflight > 0 {
		if h.idle == nil {
			h.idle = make(chan struct{})
		}
		idle = h.idle
	}
	epoch := h.epoch
	l.notifyLocked()
	l.mu.Unlock()
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return epoch, nil
}

// Reopen undoes a Drain that will not be followed by a Release.
func (l *Leases) Reopen(home string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.homes[home]; h != nil && h.draining {
		h.draining = false
		l.notifyLocked()
	}
}

// Release gives up a drained home for a planned handover with cut endPos
// (the local head after the drain, once published).
func (l *Leases) Release(ctx context.Context, home string, epoch, endPos uint64) error {
	if err := l.cfg.Store.Release(ctx, home, epoch, l.cfg.Region, l.cfg.Holder, endPos); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.homes[home]; h != nil && h.epoch == epoch {
		h.held = false
		l.notifyLocked()
	}
	return nil
}

// Fenced reports whether a home was taken away from this process while it
// held it. A fenced process takes no lease again: it must restart, which
// reconciles its log with the cut (FindStaleTail, regions/node), to rejoin.
func (l *Leases) Fenced() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fenced
}
