package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
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
