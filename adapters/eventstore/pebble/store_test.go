package pebble_test

import (
	"testing"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/adapters/eventstore/storetest"
	"github.com/livecore/livecore/domain/event"
)

func open(t testing.TB, cfg pebble.Config) *pebble.Store {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := pebble.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) event.Store { return open(t, pebble.Config{}) })
}

// TestConformanceTinyLimits runs the suite with a two-entry head cache and
// groups of at most three events, so heads are evicted and reloaded from
// disk all the time and groups split mid-queue.
func TestConformanceTinyLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	storetest.Run(t, func(t *testing.T) event.Store {
		return open(t, pebble.Config{HeadCacheSize: 2, MaxGroupEvents: 3, MaxGroupBytes: 4096})
	})
}
