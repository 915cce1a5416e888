// Package failover moves homes between regions: planned (drain the old
// owner, hand over at its head: nothing is lost in either durability mode)
// and forced (the old owner is unreachable: wait out its lease, fence it,
// cut at what it had committed to Kafka, promote the new owner at that
// position). Failback is a planned move back to each home's preferred
// region. The steps and their timings are returned as a Report.
//
// The controller talks to the control plane, to Kafka (to fence the old
// owner's bridge and read its checkpoint) and to the regions' nodes over
// HTTP (regions/node). It holds no state of its own: a failover interrupted
// half-way is resumed by running it again (each step checks where the
// home stands).
package failover

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/livecore/livecore/adapters/kafka"
	"github.com/livecore/livecore/regions"
	"github.com/livecore/livecore/regions/node"
)

// Config configures a Controller.
type Config struct {
	ControlPlane   *regions.ControlPlane
	Topology       regions.Topology
	Brokers        []string
	KafkaNamespace string
	// CatchUpTimeout bounds the new owner's catch-up. Default 60 s.
	CatchUpTimeout time.Duration
	// LeaseTimeout bounds the wait for the new owner to take the lease.
	// Default 30 s.
	LeaseTimeout time.Duration
	HTTP         *http.Client
	Logger       *slog.Logger
	ClientOpts   []kgo.Opt
}

// Controller runs failovers. It is safe for concurrent use on different
// homes.
type Controller struct{ cfg Config }

// New returns a Controller.
func New(cfg Config) (*Controller, error) {
	if cfg.ControlPlane == nil || len(cfg.Brokers) == 0 {
		return nil, errors.New("failover: ControlPlane and Brokers are required")
	}
	if err := cfg.Topology.Validate(); err != nil {
		return nil, err
	}
	if cfg.CatchUpTimeout == 0 {
		cfg.CatchUpTimeout = 60 * time.Second
	}
	if cfg.LeaseTimeout == 0 {
		cfg.LeaseTimeout = 30 * time.Second
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 2 * time.Minute}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Controller{cfg: cfg}, nil
}

// Move is one home's handover.
type Move struct {
	Home      string `json:"home"`
	FromEpoch uint64 `json:"from_epoch"`
	ToEpoch   uint64 `json:"to_epoch"`
	// Cut is the last position of the old owner's $all that counts: its
	// head after draining (planned) or its bridge's final checkpoint
	// (forced).
	Cut uint64 `json:"cut"`
}

// Step is one timed step of a failover.
type Step struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Detail  string  `json:"detail,omitempty"`
}

// Report is what a failover did.
type Report struct {
	Kind     string    `json:"kind"` // planned | forced
	From     string    `json:"from"`
	To       string    `json:"to"`
	Moves    []Move    `json:"moves"`
	Steps    []Step    `json:"steps"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Seconds  float64   `json:"seconds"`
	// Forced only: the old owner's bridge checkpoint after fencing (the
	// cut) and when it was written: every event the old owner wrote after
	// that instant is not replicated. How many there are is known when the
	// old owner comes back (its loss report, node.Unreplicated); in sync
	// mode none of them was acknowledged.
	Checkpoint          uint64    `json:"checkpoint,omitempty"`
	CheckpointWrittenAt time.Time `json:"checkpoint_written_at,omitzero"`
	Unreplicated        string    `json:"unreplicated,omitempty"`
}

func (r *Report) step(name string, start time.Time, detail string) {
	r.Steps = append(r.Steps, Step{Name: name, Seconds: time.Since(start).Seconds(), Detail: detail})
}

// homesOf returns the homes owned by region now (or the given ones,
// checked).
func (c *Controller) homesOf(ctx context.Context, region string, only []string) ([]regions.Ownership, error) {
	owners, err := c.cfg.ControlPlane.Owners(ctx)
	if err != nil {
		return nil, err
	}
	var out []regions.Ownership
	for _, o := range owners {
		if len(only) > 0 && !slices.Contains(only, o.Home) {
			continue
		}
		if o.Owner != region {
			if len(only) > 0 {
				return nil, fmt.Errorf("failover: home %s is owned by %s, not %s", o.Home, o.Owner, region)
			}
			continue
		}
		out = append(out, o)
	}
	return out, nil
}

func (c *Controller) check(from, to string) error {
	if from == to {
		return fmt.Errorf("failover: from and to are both %s", from)
	}
	for _, r := range []string{from, to} {
		if _, err := c.cfg.Topology.Region(r); err != nil {
			return err
		}
	}
	return nil
}

// Planned hands homes (default: all owned by from) from a live region to
// another: from drains them (no new writes, writes in flight finish), waits
// until its bridge has committed its head to Kafka and releases them with
// that head as the cut; the epoch moves to `to`; `to` applies everything
// from published; then it takes the leases. Nothing acknowledged is lost in
// either durability mode. Writes are refused (421/503, clients retry) from
// the drain until `to` holds the lease.
func (c *Controller) Planned(ctx context.Context, from, to string, homes []string) (*Report, error) {
	if err := c.check(from, to); err != nil {
		return nil, err
	}
	rep := &Report{Kind: "planned", From: from, To: to, Started: time.Now()}
	defer func() { rep.Finished = time.Now(); rep.Seconds = rep.Finished.Sub(rep.Started).Seconds() }()
	own, err := c.homesOf(ctx, from, homes)
	if err != nil {
		return rep, err
	}
	for _, o := range own {
		t := time.Now()
		var dr node.DrainResponse
		if o.State == regions.StateActive {
			if err := c.post(ctx, from, "/v1/dr/drain", node.DrainRequest{Home: o.Home}, &dr); err != nil {
				return rep, fmt.Errorf("drain %s at %s: %w", o.Home, from, err)
			}
			rep.step("drain+publish+release "+o.Home, t, fmt.Sprintf("epoch %d cut at %s's position %d", dr.Epoch, from, dr.Cut))
		} else {
			dr = node.DrainResponse{Home: o.Home, Epoch: o.Epoch}
		}
		t = time.Now()
		newEpoch, err := c.cfg.ControlPlane.Transfer(ctx, o.Home, o.Epoch, to, false, fmt.Sprintf("planned failover %s -> %s", from, to))
		if err != nil {
			return rep, err
		}
		rep.step("transfer "+o.Home, t, fmt.Sprintf("epoch %d -> %d owned by %s (pending)", o.Epoch, newEpoch, to))
		rep.Moves = append(rep.Moves, Move{Home: o.Home, FromEpoch: o.Epoch, ToEpoch: newEpoch, Cut: dr.Cut})
	}
	if err := c.promote(ctx, rep, from, to); err != nil {
		return rep, err
	}
	return rep, nil
}

// Forced moves every home of an unreachable region (or the given homes) to
// `to`:
//
//  1. wait until the old owner's lease has expired in the control plane
//     (at most the lease TTL after its last renewal), then move the epoch
//     to `to` (pending): the old owner's renewals fail from now on;
//  2. fence the old owner's bridge in Kafka (initialise a producer with its
//     transactional ID: its open transaction is settled, it can never
//     commit again);
//  3. read its final checkpoint P and record it as the cut of the old
//     epochs: events it wrote beyond P are rejected everywhere;
//  4. `to` applies everything the old owner published (up to P);
//  5. activate: `to` takes the leases and serves.
//
// Events the old owner wrote after its checkpoint are lost to the rest of
// the world; in sync mode none of them was acknowledged.
func (c *Controller) Forced(ctx context.Context, from, to string, homes []string) (*Report, error) {
	if err := c.check(from, to); err != nil {
		return nil, err
	}
	rep := &Report{Kind: "forced", From: from, To: to, Started: time.Now()}
	defer func() { rep.Finished = time.Now(); rep.Seconds = rep.Finished.Sub(rep.Started).Seconds() }()
	own, err := c.homesOf(ctx, from, homes)
	if err != nil {
		return rep, err
	}
	for _, o := range own {
		t := time.Now()
		var newEpoch uint64
		for {
			cur, err := c.cfg.ControlPlane.Owner(ctx, o.Home)
			if err != nil {
				return rep, err
			}
			if cur.Owner != from || cur.Epoch != o.Epoch {
				return rep, fmt.Errorf("failover: %s moved meanwhile: %+v", o.Home, cur)
			}
			newEpoch, err = c.cfg.ControlPlane.Transfer(ctx, o.Home, o.Epoch, to, true, fmt.Sprintf("forced failover %s -> %s", from, to))
			if err == nil {
				break
			}
			if !errors.Is(err, regions.ErrLeaseHeld) {
				return rep, err
			}
			wait := time.Duration(max(cur.LeaseExpiresMs-cur.NowMs, 0)+20) * time.Millisecond
			select {
			case <-ctx.Done():
				return rep, ctx.Err()
			case <-time.After(wait):
			}
		}
		rep.step("lease expiry + transfer "+o.Home, t, fmt.Sprintf("epoch %d -> %d owned by %s (pending)", o.Epoch, newEpoch, to))
		rep.Moves = append(rep.Moves, Move{Home: o.Home, FromEpoch: o.Epoch, ToEpoch: newEpoch})
	}
	t := time.Now()
	if err := c.fenceBridge(ctx, from); err != nil {
		return rep, err
	}
	rep.step("fence "+from+"'s bridge", t, "producer epoch bumped; its open transaction settled")
	t = time.Now()
	bc := node.BridgeConfig(c.cfg.KafkaNamespace, from, c.cfg.Brokers, 0)
	bc.ClientOpts = c.cfg.ClientOpts
	cp, err := kafka.ReadCheckpoint(ctx, bc)
	if err != nil {
		return rep, err
	}
	rep.Checkpoint, rep.CheckpointWrittenAt = cp.Position, cp.WrittenAt
	for i := range rep.Moves {
		m := &rep.Moves[i]
		if err := c.cfg.ControlPlane.SetCut(ctx, m.Home, m.FromEpoch, cp.Position); err != nil {
			return rep, err
		}
		m.Cut = cp.Position
	}
	rep.step("cut", t, fmt.Sprintf("%s's final checkpoint: position %d (written %s)", from, cp.Position, cp.WrittenAt.Format(time.RFC3339Nano)))
	rep.Unreplicated = fmt.Sprintf("events %s wrote after position %d (its loss report when it comes back)", from, cp.Position)
	if err := c.promote(ctx, rep, from, to); err != nil {
		return rep, err
	}
	return rep, nil
}

// promote makes `to` catch up with `from` and take the moved homes.
func (c *Controller) promote(ctx context.Context, rep *Report, from, to string) error {
	if len(rep.Moves) == 0 {
		return nil
	}
	t := time.Now()
	var cu node.CatchUpResponse
	if err := c.post(ctx, to, "/v1/dr/catchup", node.CatchUpRequest{Peer: from, Timeout: c.cfg.CatchUpTimeout.Seconds()}, &cu); err != nil {
		return fmt.Errorf("catch up %s with %s: %w", to, from, err)
	}
	rep.step("catch up "+to, t, fmt.Sprintf("%s applied everything %s published (head %d)", to, from, cu.Head))
	t = time.Now()
	for _, m := range rep.Moves {
		if err := c.cfg.ControlPlane.Activate(ctx, m.Home, m.ToEpoch); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(c.cfg.LeaseTimeout)
	for _, m := range rep.Moves {
		for {
			o, err := c.cfg.ControlPlane.Owner(ctx, m.Home)
			if err != nil {
				return err
			}
			if o.Epoch != m.ToEpoch || o.Owner != to {
				return fmt.Errorf("failover: %s moved meanwhile: %+v", m.Home, o)
			}
			if o.Holder != "" && !o.LeaseExpired() {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("failover: %s did not take the lease of %s within %v", to, m.Home, c.cfg.LeaseTimeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(25 * time.Millisecond):
			}
		}
	}
	rep.step("activate + lease taken by "+to, t, "")
	return nil
}

// fenceBridge initialises a transactional producer with region's bridge
// transactional ID: the broker completes or aborts its open transaction
// and bumps the producer epoch, so the old bridge cannot commit again.
func (c *Controller) fenceBridge(ctx context.Context, region string) error {
	id := node.BridgeName(c.cfg.KafkaNamespace, region)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.cfg.Brokers...), kgo.TransactionalID(id)}, c.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("fence %s: %w", id, err)
	}
	defer cl.Close()
	for {
		_, _, err := cl.ProducerID(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("fence %s: %w", id, err)
		}
		c.cfg.Logger.Warn("fence bridge: retrying", "transactional_id", id, "err", err)
		time.Sleep(200 * time.Millisecond)
	}
}

// Failback moves every home that is not on its preferred region back there
// (planned), from whichever region owns it now.
func (c *Controller) Failback(ctx context.Context) ([]*Report, error) {
	owners, err := c.cfg.ControlPlane.Owners(ctx)
	if err != nil {
		return nil, err
	}
	byMove := map[[2]string][]string{}
	var order [][2]string
	for _, o := range owners {
		h, ok := c.cfg.Topology.Home(o.Home)
		if !ok || h.Region == o.Owner {
			continue
		}
		k := [2]string{o.Owner, h.Region}
		if _, seen := byMove[k]; !seen {
			order = append(order, k)
		}
		byMove[k] = append(byMove[k], o.Home)
	}
	var out []*Report
	for _, k := range order {
		rep, err := c.Planned(ctx, k[0], k[1], byMove[k])
		out = append(out, rep)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func (c *Controller) url(region string) (string, error) {
	r, err := c.cfg.Topology.Region(region)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(r.URL, "/"), nil
}

func (c *Controller) post(ctx context.Context, region, path string, in, out any) error {
	base, err := c.url(region)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s%s: %d: %s", base, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}
