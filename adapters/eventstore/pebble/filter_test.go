package pebble

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/livecore/livecore/domain/event"
)

func proposed(ids ...string) []event.Proposed {
	out := make([]event.Proposed, len(ids))
	for i, id := range ids {
		out[i] = event.Proposed{ID: id, Type: "test.happened.v1", SchemaVersion: 1, Data: []byte(`{"n":1}`)}
	}
	return out
}

// TestKeyFilterAfterReopen: the filter is rebuilt from disk, so after a
// restart a retried append is still recognised, a reused ID still refused
// and an existing stream still found.
func TestKeyFilterAfterReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Append(ctx, "order-1", event.NoStream, proposed("id-1", "id-2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "order-2", event.NoStream, proposed("id-3")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range [][]byte{idKey(nil, "id-1"), idKey(nil, "id-2"), idKey(nil, "id-3"), headKey(nil, "order-1"), headKey(nil, "order-2")} {
		if !s.filter.mayHave(k) {
			t.Errorf("filter lost %q across a reopen", k)
		}
	}
	again, err := s.Append(ctx, "order-1", event.NoStream, proposed("id-1", "id-2"))
	if err != nil || again != first {
		t.Errorf("retried append after reopen: %+v, %v; want the original %+v", again, err, first)
	}
	if _, err := s.Append(ctx, "order-3", event.NoStream, proposed("id-3")); !errors.Is(err, event.ErrIdempotencyConflict) {
		t.Errorf("an ID of order-2 reused on order-3 after reopen: %v, want ErrIdempotencyConflict", err)
	}
	if _, err := s.Append(ctx, "order-2", event.NoStream, proposed("id-4")); !errors.Is(err, event.ErrWrongExpectedVersion) {
		t.Errorf("no-stream append to the existing order-2 after reopen: %v, want ErrWrongExpectedVersion", err)
	}
	if envs, err := s.ReadStream(ctx, "order-1", 1, 0); err != nil || len(envs) != 2 {
		t.Errorf("order-1 after reopen: %d events, %v", len(envs), err)
	}
}

// TestKeyFilter: no false negatives; few false positives.
func TestKeyFilter(t *testing.T) {
	f := newKeyFilter(0)
	const n = 200_000
	for i := range n {
		f.add(idKey(nil, fmt.Sprint("in-", i)))
	}
	for i := range n {
		if !f.mayHave(idKey(nil, fmt.Sprint("in-", i))) {
			t.Fatalf("false negative for key %d", i)
		}
	}
	fp := 0
	for i := range n {
		if f.mayHave(idKey(nil, fmt.Sprint("out-", i))) {
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.01 {
		t.Errorf("false positive rate %.4f", rate)
	}
	var nilFilter *keyFilter
	if !nilFilter.mayHave([]byte("x")) {
		t.Errorf("a nil filter must send every lookup to disk")
	}
}
