package pebble_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/adapters/eventstore/replicatest"
	"github.com/livecore/livecore/domain/event"
)

func TestReplicaConformance(t *testing.T) {
	replicatest.Run(t, func(t *testing.T) replicatest.Store { return open(t, pebble.Config{}) })
}

// TestReplicasSurviveReopen: replicas are durable and the reopened store
// keeps chaining on them, locally and as a replica.
func TestReplicasSurviveReopen(t *testing.T) {
	ctx := context.Background()
	src := open(t, pebble.Config{})
	for i := range 20 {
		if _, err := src.Append(ctx, fmt.Sprintf("order-%d", i%3), event.Any, []event.Proposed{{
			ID: fmt.Sprintf("e%d", i), Type: "test.happened.v1", SchemaVersion: 1, Data: []byte(`{}`),
			Metadata: event.Metadata{Region: "a"},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := src.ReadAll(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, err := pebble.Open(pebble.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AppendReplicated(ctx, all[:10]); err != nil {
		t.Fatal(err)
	}
	r.Close()
	r = open(t, pebble.Config{Dir: dir})
	res, err := r.AppendReplicated(ctx, all)
	if err != nil || res.Appended != 10 || res.Skipped != 10 {
		t.Fatalf("after reopen: %+v, %v", res, err)
	}
	got, err := r.ReadAll(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i].ID != all[i].ID || got[i].Hash != all[i].Hash || got[i].GlobalHash != all[i].GlobalHash {
			t.Fatalf("position %d differs from the origin", i+1)
		}
	}
	t.Logf("20 replicated events (10 before, 10 after a reopen) have the origin's stream AND global hashes: same order, same chain")
}
