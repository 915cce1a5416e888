package event_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/livecore/livecore/domain/event"
)

// logReader is an AllReader over n events at positions 1..n; it counts
// the events it returns.
type logReader struct {
	events []event.Envelope
	served int
	err    error
}

func newLogReader(n int) *logReader {
	r := &logReader{}
	for i := 1; i <= n; i++ {
		r.events = append(r.events, event.Envelope{ID: fmt.Sprintf("ev-%d", i), StreamID: "s-1", Type: "t.happened.v1",
			SchemaVersion: 1, Data: []byte(fmt.Sprintf(`{"n":%d}`, i)), Position: uint64(i), Version: uint64(i)})
	}
	return r
}

func (r *logReader) ReadAll(_ context.Context, from uint64, max int) ([]event.Envelope, error) {
	if r.err != nil {
		return nil, r.err
	}
	from = max1(from)
	var out []event.Envelope
	for p := from; p <= uint64(len(r.events)) && (max <= 0 || len(out) < max); p++ {
		out = append(out, r.events[p-1])
	}
	r.served += len(out)
	return out, nil
}

func max1(p uint64) uint64 {
	if p == 0 {
		return 1
	}
	return p
}

func positions(evs []event.Envelope) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Position
	}
	return out
}

func sameEvents(t *testing.T, what string, got, want []event.Envelope) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events %v, want %d %v", what, len(got), positions(got), len(want), positions(want))
	}
	for i := range got {
		if got[i].Position != want[i].Position || got[i].ID != want[i].ID || string(got[i].Data) != string(want[i].Data) {
			t.Fatalf("%s: event %d is %s@%d, want %s@%d", what, i, got[i].ID, got[i].Position, want[i].ID, want[i].Position)
		}
	}
}

func TestAllCacheReturnsWhatTheSourceReturns(t *testing.T) {
	ctx := context.Background()
	src, ref := newLogReader(3000), newLogReader(3000)
	c := event.NewAllCache(src, 256)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		from := uint64(rng.IntN(3100))
		limit := 1 + rng.IntN(300)
		if i%50 == 0 {
			limit = 1000 // larger than the ring
		}
		got, err := c.ReadAll(ctx, from, limit)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ref.ReadAll(ctx, from, limit)
		sameEvents(t, fmt.Sprintf("read %d from %d max %d", i, from, limit), got, want)
	}
}

func TestAllCacheReadersFollowingTogetherReadTheSourceOnce(t *testing.T) {
	ctx := context.Background()
	src := newLogReader(5000)
	c := event.NewAllCache(src, 4096)
	const readers = 7
	next := make([]uint64, readers)
	for i := range next {
		next[i] = 1
	}
	// Readers take turns, each reading batches of its own size, as the
	// bridge and the projections do.
	for done := 0; done < readers; {
		done = 0
		for r := range next {
			if next[r] > 5000 {
				done++
				continue
			}
			batch, err := c.ReadAll(ctx, next[r], 50+r*37)
			if err != nil {
				t.Fatal(err)
			}
			if len(batch) == 0 || batch[0].Position != next[r] {
				t.Fatalf("reader %d at %d got %v", r, next[r], positions(batch))
			}
			for i := 1; i < len(batch); i++ {
				if batch[i].Position != batch[i-1].Position+1 {
					t.Fatalf("reader %d: gap in %v", r, positions(batch))
				}
			}
			next[r] = batch[len(batch)-1].Position + 1
		}
	}
	if src.served != 5000 {
		t.Errorf("the source served %d events to %d readers of 5,000: want each once", src.served, readers)
	}
	hits, misses := c.Stats()
	if hits != 6*5000 || misses != 5000 {
		t.Errorf("stats: %d hits, %d misses; want %d and 5000", hits, misses, 6*5000)
	}
}

func TestAllCacheReaderBehindTheRingReadsTheSource(t *testing.T) {
	ctx := context.Background()
	src := newLogReader(2000)
	c := event.NewAllCache(src, 64)
	if _, err := c.ReadAll(ctx, 1, 64); err != nil {
		t.Fatal(err)
	}
	// Positions 1,901-1,964 take the slots of 1-64 (mod 64 they collide).
	if _, err := c.ReadAll(ctx, 1901, 64); err != nil {
		t.Fatal(err)
	}
	before := src.served
	got, err := c.ReadAll(ctx, 10, 20)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := newLogReader(2000).ReadAll(ctx, 10, 20)
	sameEvents(t, "behind the ring", got, want)
	if src.served-before != 20 {
		t.Errorf("read %d events from the source for a range evicted from the cache, want 20", src.served-before)
	}
	// A cached prefix and the rest from the source: one contiguous batch.
	before = src.served
	got, err = c.ReadAll(ctx, 1950, 40)
	if err != nil {
		t.Fatal(err)
	}
	want, _ = newLogReader(2000).ReadAll(ctx, 1950, 40)
	sameEvents(t, "prefix cached", got, want)
	if src.served-before != 25 {
		t.Errorf("read %d events from the source, want 25 (1,965-1,989; 1,950-1,964 are cached)", src.served-before)
	}
}

func TestAllCachePassesSourceErrorsOn(t *testing.T) {
	boom := errors.New("disk on fire")
	src := newLogReader(10)
	c := event.NewAllCache(src, 16)
	src.err = boom
	if _, err := c.ReadAll(context.Background(), 1, 5); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the source's", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src.err = nil
	if _, err := c.ReadAll(ctx, 1, 5); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
	// Nothing was cached by the failed reads.
	if got, err := c.ReadAll(context.Background(), 1, 5); err != nil || len(got) != 5 || src.served != 5 {
		t.Fatalf("after errors: %v, %v events, source served %d", err, len(got), src.served)
	}
}

// headLog is a logReader that also reports its head, as stores do.
type headLog struct{ *logReader }

func (h headLog) Head(context.Context) (uint64, error) { return uint64(len(h.events)), nil }

func TestAllCacheWithAHeadSizesBatchesToIt(t *testing.T) {
	ctx := context.Background()
	src := headLog{newLogReader(100)}
	c := event.NewAllCache(src, 4096)
	first, err := c.ReadAll(ctx, 61, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ReadAll(ctx, 61, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := newLogReader(100).ReadAll(ctx, 61, 1000)
	sameEvents(t, "first read", first, want)
	sameEvents(t, "cached read", got, want)
	// A cached batch is as big as the events it holds, not as the
	// readers' 1,000-event limit (that would allocate 1,000 envelopes
	// for each reader's few dozen).
	if cap(got) != 40 {
		t.Errorf("cached batch: cap %d for 40 events", cap(got))
	}
	if got, err := c.ReadAll(ctx, 101, 1000); err != nil || len(got) != 0 {
		t.Errorf("past the head: %v, %v", positions(got), err)
	}
	if src.served != 40 {
		t.Errorf("the source served %d events, want 40", src.served)
	}
}
