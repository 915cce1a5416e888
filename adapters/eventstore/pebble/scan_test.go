package pebble_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

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
