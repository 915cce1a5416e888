package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
)

// TestBenchAPI runs `livecore bench api --rate 300 --duration 2s` against
// the product in this process: every order must be accepted, and the
// event store must then hold exactly one placed order per request.
func TestBenchAPI(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := runBenchAPI(context.Background(), benchAPIConfig{dataDir: dir, rate: 300, duration: 2 * time.Second, maxP99: 100 * time.Millisecond}, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`accepted +\d+/s +\(600/600, failed 0, dropped 0\)`).MatchString(out.String()) {
		t.Fatalf("not every order accepted")
	}
	store, err := pebble.Open(pebble.Config{Dir: filepath.Join(dir, "events")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	evs, err := store.ReadAll(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	placed := 0
	for _, e := range evs {
		if e.Type == "order.placed.v2" {
			placed++
		}
	}
	if placed != 600 {
		t.Fatalf("%d orders placed in the event store for 600 requests", placed)
	}
}

// TestSoftMemoryLimit checks the GC settings dev and bench api run with:
// the soft limit and GOGC devGCPercent by default, and the environment's
// GOMEMLIMIT or GOGC left alone.
func TestSoftMemoryLimit(t *testing.T) {
	gcPercent, limit := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(gcPercent)
	t.Cleanup(func() { debug.SetGCPercent(gcPercent); debug.SetMemoryLimit(limit) })
	check := func(wantGC int, wantLimit int64) {
		t.Helper()
		if got := debug.SetGCPercent(-1); got != wantGC {
			t.Errorf("GOGC %d, want %d", got, wantGC)
		}
		debug.SetGCPercent(gcPercent)
		if got := debug.SetMemoryLimit(-1); got != wantLimit {
			t.Errorf("memory limit %d, want %d", got, wantLimit)
		}
		debug.SetMemoryLimit(limit)
	}
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")
	softMemoryLimit()
	check(devGCPercent, devMemoryLimit)

	t.Setenv("GOGC", "150")
	softMemoryLimit()
	check(gcPercent, devMemoryLimit)

	t.Setenv("GOMEMLIMIT", "2GiB")
	softMemoryLimit()
	check(gcPercent, limit)
}
