package pebble_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/domain/event"
)

// own copies e so it no longer points into memory ScanAll reuses.
func own(e *event.Envelope) event.Envelope {
	c := *e
	for _, s := range []*string{&c.ID, &c.StreamID, &c.Type, &c.Metadata.Tenant, &c.Metadata.CorrelationID,
		&c.Metadata.CausationID, &c.Metadata.Actor, &c.Metadata.Region} {
		*s = strings.Clone(*s)
	}
	c.Data = bytes.Clone(c.Data)
	return c
}

func scan(t *testing.T, s *pebble.Store, from uint64, limit int) ([]event.Envelope, error) {
	t.Helper()
	var out []event.Envelope
	err := s.ScanAll(t.Context(), from, limit, func(e *event.Envelope) error {
		out = append(out, own(e))
		return nil
	})
	return out, err
}

// TestScanAllMatchesReadAll: ScanAll hands over exactly the envelopes
// ReadAll returns, field for field, for any range; empty metadata and
// payloads of many sizes included.
func TestScanAllMatchesReadAll(t *testing.T) {
	s := open(t, pebble.Config{})
	ctx := t.Context()
	for i := range 60 {
		evs := proposed(fmt.Sprintf("scan-%d", i), 1+i%4)
		for j := range evs {
			switch (i + j) % 3 {
			case 0:
				evs[j].Data = []byte(`{}`)
			case 1:
				evs[j].Metadata = event.Metadata{Tenant: "t1", CorrelationID: "corr", CausationID: "cause", Actor: "user:" + strings.Repeat("x", i), Region: "eu"}
				evs[j].Data = fmt.Appendf(nil, `{"pad":%q}`, strings.Repeat("7", 10*i))
			}
		}
		if _, err := s.Append(ctx, fmt.Sprintf("scan-%d", i%7), event.Any, evs); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ReadAll(ctx, 1, 0)
	if err != nil || len(all) < 100 {
		t.Fatalf("read all: %d events, %v", len(all), err)
	}
	n := uint64(len(all))
	for _, r := range []struct {
		from  uint64
		limit int
	}{{0, 0}, {1, 0}, {1, 1}, {2, 7}, {n / 2, 0}, {n, 0}, {n, 5}, {n + 1, 0}, {n - 3, 100}} {
		want, err := s.ReadAll(ctx, r.from, r.limit)
		if err != nil {
			t.Fatal(err)
		}
		got, err := scan(t, s, r.from, r.limit)
		if err != nil {
			t.Fatalf("scan from %d limit %d: %v", r.from, r.limit, err)
		}
		if len(got) != len(want) {
			t.Fatalf("scan from %d limit %d: %d events, ReadAll %d", r.from, r.limit, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("scan from %d limit %d, event %d:\n got  %+v\n want %+v", r.from, r.limit, i, got[i], want[i])
			}
		}
	}
}

// TestScanAllReportsCorruptRecords: a damaged or missing record stops the
// scan with event.ErrCorrupt after handing over the intact events before
// it, never the damaged one or any after it.
func TestScanAllReportsCorruptRecords(t *testing.T) {
	cases := []struct {
		name string
		bad  uint64
		edit func(t *testing.T, db *pdb.DB)
	}{
		{"flipped bit in data", 5, func(t *testing.T, db *pdb.DB) {
			v := get(t, db, eventKey(5))
			v[len(v)-10] ^= 0x01
			set(t, db, eventKey(5), v)
		}},
		{"flipped bit in a hash", 4, func(t *testing.T, db *pdb.DB) {
			v := get(t, db, eventKey(4))
			v[len(v)-60] ^= 0x80
			set(t, db, eventKey(4), v)
		}},
		{"torn record", 6, func(t *testing.T, db *pdb.DB) {
			v := get(t, db, eventKey(6))
			set(t, db, eventKey(6), v[:len(v)/2])
		}},
		{"record under the wrong key", 7, func(t *testing.T, db *pdb.DB) {
			set(t, db, eventKey(7), get(t, db, eventKey(8)))
		}},
		{"empty record", 3, func(t *testing.T, db *pdb.DB) {
			set(t, db, eventKey(3), nil)
		}},
		{"missing record", 5, func(t *testing.T, db *pdb.DB) {
			if err := db.Delete(eventKey(5), pdb.Sync); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, pebble.Config{Dir: dir})
			for i := range 5 {
				if _, err := s.Append(t.Context(), "dmg-1", event.Any, proposed(tc.name+string(rune('a'+i)), 2)); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			tamper(t, dir, func(db *pdb.DB) { tc.edit(t, db) })
			s = open(t, pebble.Config{Dir: dir})

			if got, err := scan(t, s, 1, int(tc.bad-1)); err != nil || len(got) != int(tc.bad-1) {
				t.Fatalf("intact prefix: %d events, %v", len(got), err)
			}
			got, err := scan(t, s, 1, 0)
			if !errors.Is(err, event.ErrCorrupt) {
				t.Fatalf("scan over the damage: %v, want ErrCorrupt", err)
			}
			if len(got) != int(tc.bad-1) {
				t.Fatalf("scan over the damage handed over %d events, want the %d before it", len(got), tc.bad-1)
			}
			for i, e := range got {
				if e.Position != uint64(i+1) {
					t.Fatalf("event %d has position %d", i, e.Position)
				}
			}
			if got, err := scan(t, s, tc.bad, 1); !errors.Is(err, event.ErrCorrupt) || len(got) != 0 {
				t.Fatalf("scan the damaged position: %d events, %v; want none, ErrCorrupt", len(got), err)
			}
		})
	}
}

// TestScanAllStops: fn's error, a done context and a closed store end the
// scan.
func TestScanAllStops(t *testing.T) {
	s := open(t, pebble.Config{})
	if _, err := s.Append(t.Context(), "stop-1", event.NoStream, proposed("stop", 10)); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("enough")
	calls := 0
	err := s.ScanAll(t.Context(), 1, 0, func(e *event.Envelope) error {
		calls++
		if e.Position == 4 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 4 {
		t.Fatalf("fn's error: %v after %d calls, want it after 4", err, calls)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.ScanAll(ctx, 1, 0, func(*event.Envelope) error { t.Fatal("called"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("done context: %v", err)
	}
	s.Close()
	if err := s.ScanAll(t.Context(), 1, 0, func(*event.Envelope) error { t.Fatal("called"); return nil }); !errors.Is(err, event.ErrClosed) {
		t.Fatalf("closed store: %v, want ErrClosed", err)
	}
}

// TestScanAllDoesNotAllocatePerEvent: ScanAll's cost does not grow with
// allocations per event (ReadAll allocates at least one per event).
func TestScanAllDoesNotAllocatePerEvent(t *testing.T) {
	s := open(t, pebble.Config{})
	for i := range 20 {
		if _, err := s.Append(t.Context(), fmt.Sprintf("alloc-%d", i), event.NoStream, proposed(fmt.Sprintf("alloc-%d", i), 50)); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	fn := func(*event.Envelope) error { n++; return nil }
	allocs := testing.AllocsPerRun(10, func() {
		if err := s.ScanAll(t.Context(), 1, 0, fn); err != nil {
			t.Fatal(err)
		}
	})
	if n != 11*1000 { // AllocsPerRun runs once more to warm up
		t.Fatalf("%d events handed over, want %d", n, 11*1000)
	}
	if allocs > 100 {
		t.Fatalf("ScanAll of 1,000 events: %.0f allocations", allocs)
	}
	t.Logf("ScanAll of 1,000 events: %.0f allocations", allocs)
}
