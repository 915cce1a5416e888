package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/regions"
)

// reconcile makes this region's log agree with the control plane before
// anything publishes it: events the region wrote outside its epochs (after
// a cut: what a forced failover did not replicate) are moved out of the
// log. The store is rebuilt from its valid prefix, positions 1..FirstStale-1,
// which keeps positions and global hashes (so the bridge's checkpoint still
// matches); the old store is kept under quarantine-<time>/ with
// unreplicated.json listing the stale events (the loss report). Replicas
// that followed the first stale event are fetched again from Kafka (the
// replicator's offsets are reset). It waits while a failover of this
// region has not recorded its cut yet.
func reconcile(ctx context.Context, cfg *Config, v *regions.Validator, log *slog.Logger) (*pebble.Store, *Unreplicated, error) {
	dir := filepath.Join(cfg.DataDir, "events")
	open := func() (*pebble.Store, error) { return pebble.Open(pebble.Config{Dir: dir, Logger: log}) }
	store, err := open()
	if err != nil {
		return nil, nil, err
	}
	var tail regions.StaleTail
	for {
		tail, err = regions.FindStaleTail(ctx, v, cfg.Region, store)
		if err == nil {
			break
		}
		if !errors.Is(err, regions.ErrCutPending) {
			store.Close()
			return nil, nil, fmt.Errorf("reconcile: %w", err)
		}
		log.Warn("a failover of this region is in progress; waiting for its cut before starting", "err", err)
		select {
		case <-ctx.Done():
			store.Close()
			return nil, nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if tail.FirstStale == 0 {
		return store, loadUnreplicated(cfg.DataDir), nil
	}
	keep := tail.FirstStale - 1
	log.Warn("this region wrote events beyond its cut (not replicated before the failover): moving them out of the log",
		"cut", tail.Cut, "first_stale", tail.FirstStale, "head", tail.Head, "stale_events", len(tail.Events))

	stamp := time.Now().UTC().Format("20060102T150405.000000000")
	rebuild := filepath.Join(cfg.DataDir, "events.rebuild")
	os.RemoveAll(rebuild)
	fresh, err := pebble.Open(pebble.Config{Dir: rebuild, Logger: log})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	for next := uint64(1); next <= keep; {
		batch, err := store.ReadAll(ctx, next, int(min(keep-next+1, 5000)))
		if err == nil && len(batch) == 0 {
			err = fmt.Errorf("%w: $all ends before %d", event.ErrCorrupt, next)
		}
		if err == nil {
			_, err = fresh.AppendReplicated(ctx, batch)
		}
		if err != nil {
			fresh.Close()
			store.Close()
			return nil, nil, fmt.Errorf("reconcile: copy prefix at %d: %w", next, err)
		}
		next = batch[len(batch)-1].Position + 1
	}
	if h, _ := fresh.Head(ctx); h != keep {
		fresh.Close()
		store.Close()
		return nil, nil, fmt.Errorf("reconcile: rebuilt head %d, want %d", h, keep)
	}
	// The global chain of the copy must be the original's, position for
	// position: compare the last one.
	if keep > 0 {
		a, err1 := store.ReadAll(ctx, keep, 1)
		b, err2 := fresh.ReadAll(ctx, keep, 1)
		if err1 != nil || err2 != nil || a[0].GlobalHash != b[0].GlobalHash {
			fresh.Close()
			store.Close()
			return nil, nil, fmt.Errorf("reconcile: rebuilt prefix does not reproduce the global chain at %d", keep)
		}
	}
	fresh.Close()
	store.Close()
	q := filepath.Join(cfg.DataDir, "quarantine-"+stamp)
	if err := os.MkdirAll(q, 0o755); err != nil {
		return nil, nil, err
	}
	if err := os.Rename(dir, filepath.Join(q, "events")); err != nil {
		return nil, nil, err
	}
	if err := os.Rename(rebuild, dir); err != nil {
		return nil, nil, err
	}
	os.Remove(filepath.Join(cfg.DataDir, offsetsFile))
	u := &Unreplicated{Region: cfg.Region, At: time.Now().UTC(), Cut: tail.Cut, Head: tail.Head, FirstStale: tail.FirstStale, Quarantine: q}
	for _, e := range tail.Events {
		u.Events = append(u.Events, UnreplicatedEvent{ID: e.ID, Stream: e.StreamID, Version: e.Version, Type: e.Type, Position: e.Position, RecordedAt: e.RecordedAt, Hash: e.Hash})
	}
	b, _ := json.MarshalIndent(u, "", "  ")
	if err := os.WriteFile(filepath.Join(q, "unreplicated.json"), b, 0o644); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "unreplicated.json"), b, 0o644); err != nil {
		return nil, nil, err
	}
	store, err = open()
	if err != nil {
		return nil, nil, err
	}
	return store, u, nil
}

// Unreplicated is the loss report of a forced failover, written by the old
// owner when it comes back: the events it had written beyond its cut.
type Unreplicated struct {
	Region     string              `json:"region"`
	At         time.Time           `json:"at"`
	Cut        uint64              `json:"cut"`
	Head       uint64              `json:"head"`
	FirstStale uint64              `json:"first_stale"`
	Quarantine string              `json:"quarantine"`
	Events     []UnreplicatedEvent `json:"events"`
}

// UnreplicatedEvent is one event of the loss report.
type UnreplicatedEvent struct {
	ID         string     `json:"id"`
	Stream     string     `json:"stream"`
	Version    uint64     `json:"version"`
	Type       string     `json:"type"`
	Position   uint64     `json:"position"`
	RecordedAt time.Time  `json:"recorded_at"`
	Hash       event.Hash `json:"hash"`
}

func loadUnreplicated(dataDir string) *Unreplicated {
	b, err := os.ReadFile(filepath.Join(dataDir, "unreplicated.json"))
	if err != nil {
		return nil
	}
	var u Unreplicated
	if json.Unmarshal(b, &u) != nil {
		return nil
	}
	return &u
}
