package pebble

import (
	"context"
	"fmt"
	"testing"

	"github.com/livecore/livecore/domain/event"
)

// TestCompact: after Compact nothing is left in memtables or L0, and
// every event still reads back, in order, from $all and its stream.
func TestCompact(t *testing.T) {
	ctx := context.Background()
	s, err := Open(Config{Dir: t.TempDir(), MemTableBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const streams, per = 50, 40
	for v := range per {
		for i := range streams {
			ev := proposed(fmt.Sprintf("s%d-e%d", i, v))
			ev[0].Data = []byte(fmt.Sprintf(`{"pad":"%0400d"}`, v))
			exp := event.NoStream
			if v > 0 {
				exp = event.Exact(uint64(v))
			}
			if _, err := s.Append(ctx, fmt.Sprintf("order-%d", i), exp, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	m := s.db.Metrics()
	if n := m.Levels[0].TablesCount; n != 0 {
		t.Fatalf("%d tables left in L0 after Compact", n)
	}
	var bottom int64
	for _, l := range m.Levels {
		bottom += l.TablesCount
	}
	if bottom == 0 {
		t.Fatal("no tables at all after Compact: the events were not flushed")
	}
	all, err := s.ReadAll(ctx, 1, 0)
	if err != nil || len(all) != streams*per {
		t.Fatalf("$all after Compact: %d events, %v", len(all), err)
	}
	for i, e := range all {
		if e.Position != uint64(i+1) {
			t.Fatalf("event %d at position %d", i, e.Position)
		}
	}
	got, err := s.ReadStream(ctx, "order-7", 1, 0)
	if err != nil || len(got) != per || got[per-1].Version != per {
		t.Fatalf("stream after Compact: %d events, %v", len(got), err)
	}
	t.Logf("%d events in %d tables below L0 after Compact", len(all), bottom)
}
