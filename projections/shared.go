package projections

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/livecore/livecore/domain/event"
)

// Decoding is implemented by projections that decode the events they apply
// with an event.Registry (every read model and the journal). For them the
// runner decodes a batch's events before it opens the batch's transaction,
// and each event once for all of its projections: the decoded value is
// shared, so Apply must treat it as read-only. Apply gets it from
// Tx.Decode.
//
// Decoding before the transaction matters on SQLite, whose one writer
// connection is held for the whole transaction: one projection's decoding
// then runs beside another's writes instead of after them.
type Decoding interface {
	// Decodes returns the registry Apply decodes e with, or nil when Apply
	// skips e. It must be cheap and agree with Apply.
	Decodes(e *event.Envelope) *event.Registry
}

// Decode returns e decoded with reg: the runner's shared value when it has
// decoded e with reg already (for this or another projection), else a
// fresh decode, which is then shared. The value is shared between
// projections: never modify it.
func (t Tx) Decode(reg *event.Registry, e *event.Envelope) (event.Event, error) {
	return t.decoded.decode(reg, e, false)
}

// decodeCache holds the decoded events of the recent positions of $all: a
// ring indexed by position, each slot holding the event last decoded for a
// position with that index. Projections following the log near each other
// (catch-up runs them in step) find the events the first of them decoded;
// one further behind than the ring holds decodes again, which is only
// slower. A slot is trusted only for the same position, event ID, type and
// registry. Each event is decoded once: the goroutine that claims a slot
// decodes it, and others needing it wait for that (sync.Once), while
// others merely decoding ahead skip it, so two projections decoding the
// same batch ahead share the work between them.
//
// A slot is emptied as soon as every projection that decodes its event has
// applied it (release), so a product following the head keeps only the
// events between its slowest and fastest projection: the ring's full size
// is live heap only while projections catch up. That matters because the
// GC marks every decoded event it holds, and the marks of a live heap
// twice as large, run on the same two CPUs as the requests, were what made
// the API's tail (see docs/benchmarks.md, session 6).
type decodeCache struct {
	slots        []atomic.Pointer[decodedEvent]
	mask         uint64
	hits, misses atomic.Uint64
	// users counts the projections that will apply e decoded with reg;
	// nil keeps every event until its slot is reused.
	users func(reg *event.Registry, e *event.Envelope) int32
}

type decodedEvent struct {
	pos      uint64
	id, typ  string
	registry *event.Registry
	once     sync.Once
	ev       event.Event
	err      error
	left     atomic.Int32 // projections yet to apply it (see release)
}

func (d *decodedEvent) is(reg *event.Registry, e *event.Envelope) bool {
	return d != nil && d.pos == e.Position && d.registry == reg && d.id == e.ID && d.typ == e.Type
}

// newDecodeCache returns a cache of at least n positions (a power of two).
func newDecodeCache(n int) *decodeCache {
	size := 1
	for size < n {
		size <<= 1
	}
	return &decodeCache{slots: make([]atomic.Pointer[decodedEvent], size), mask: uint64(size - 1)}
}

// decode returns e decoded with reg. With ahead set it only makes sure
// the event is being decoded: it returns at once if another goroutine has
// claimed it.
func (c *decodeCache) decode(reg *event.Registry, e *event.Envelope, ahead bool) (event.Event, error) {
	if c == nil {
		return reg.Decode(e.Type, e.Data)
	}
	slot := &c.slots[e.Position&c.mask]
	d := slot.Load()
	if d.is(reg, e) {
		if ahead {
			return nil, nil
		}
		c.hits.Add(1)
	} else {
		nd := &decodedEvent{pos: e.Position, id: e.ID, typ: e.Type, registry: reg}
		if c.users != nil {
			nd.left.Store(c.users(reg, e))
		}
		if !slot.CompareAndSwap(d, nd) {
			if d = slot.Load(); !d.is(reg, e) { // the slot moved on: decode privately
				c.misses.Add(1)
				return reg.Decode(e.Type, e.Data)
			}
			if ahead {
				return nil, nil
			}
			c.hits.Add(1)
		} else {
			d = nd
		}
	}
	d.once.Do(func() {
		c.misses.Add(1)
		d.ev, d.err = reg.Decode(e.Type, e.Data)
	})
	return d.ev, d.err
}

// predecode decodes the events of batch that p decodes, before the batch's
// transaction. Errors are kept for Apply to meet and report as before.
func (c *decodeCache) predecode(p Projection, batch []event.Envelope) {
	d, ok := p.(Decoding)
	if !ok || c == nil {
		return
	}
	for i := range batch {
		if reg := d.Decodes(&batch[i]); reg != nil {
			_, _ = c.decode(reg, &batch[i], true)
		}
	}
}

// release records that p has applied batch: a slot whose event every
// projection decoding it has now applied is emptied, and its decoded value
// left to the GC once Apply's references are gone. A projection applying
// an event again (a rebuild, a retried batch) after that decodes it
// privately, which is only slower.
func (c *decodeCache) release(p Projection, batch []event.Envelope) {
	d, ok := p.(Decoding)
	if !ok || c == nil || c.users == nil {
		return
	}
	for i := range batch {
		e := &batch[i]
		reg := d.Decodes(e)
		if reg == nil {
			continue
		}
		slot := &c.slots[e.Position&c.mask]
		if s := slot.Load(); s.is(reg, e) && s.left.Add(-1) == 0 {
			slot.CompareAndSwap(s, nil)
		}
	}
}

// projectionUsers returns decodeCache.users for a runner of ps: how many
// of them decode e with reg.
func projectionUsers(ps []Projection) func(*event.Registry, *event.Envelope) int32 {
	var ds []Decoding
	for _, p := range ps {
		if d, ok := p.(Decoding); ok {
			ds = append(ds, d)
		}
	}
	return func(reg *event.Registry, e *event.Envelope) int32 {
		n := int32(0)
		for _, d := range ds {
			if d.Decodes(e) == reg {
				n++
			}
		}
		return n
	}
}

// SharingStats counts the work the runner's projections shared.
type SharingStats struct {
	Decoded       uint64 // events decoded
	DecodesShared uint64 // times a projection found an event decoded already
	BatchesShared uint64 // batches of $all served from another projection's read
}

// Sharing reports the work the projections shared so far.
func (r *Runner) Sharing() SharingStats {
	var s SharingStats
	if r.decoded != nil {
		s.Decoded, s.DecodesShared = r.decoded.misses.Load(), r.decoded.hits.Load()
	}
	if r.reads != nil {
		s.BatchesShared = r.reads.hits.Load()
	}
	return s
}

// readCache serves the full batches of $all that one projection read to
// the others: catching up together, every projection reads the same
// batches (from its checkpoint, BatchSize at a time), and reading and
// copying them out of the store once instead of once per projection saves
// a tenth of the runner's CPU. A batch being read is waited for, not read
// again. Only full batches (limit events) are kept: the log below the head
// never changes, so they are final. Readers share the envelopes (copying
// them for each was a tenth of all allocation): Apply must not modify its
// batch. The last few batches are kept, first in first out.
type readCache struct {
	src     event.AllReader
	mu      sync.Mutex
	batches map[uint64]*sharedBatch // by first position
	order   []uint64
	max     int
	hits    atomic.Uint64
}

type sharedBatch struct {
	limit int
	done  chan struct{} // closed when events is set (nil: not a full batch)
	evs   []event.Envelope
}

func newReadCache(src event.AllReader, max int) *readCache {
	return &readCache{src: src, batches: map[uint64]*sharedBatch{}, max: max}
}

// ReadAll implements event.AllReader.
func (c *readCache) ReadAll(ctx context.Context, from uint64, limit int) ([]event.Envelope, error) {
	if limit <= 0 {
		return c.src.ReadAll(ctx, from, limit)
	}
	c.mu.Lock()
	b := c.batches[from]
	if b == nil || b.limit != limit {
		b = &sharedBatch{limit: limit, done: make(chan struct{})}
		c.batches[from] = b
		c.mu.Unlock()
		out, err := c.src.ReadAll(ctx, from, limit)
		final := err == nil && len(out) == limit && out[0].Position == from && out[limit-1].Position == from+uint64(limit)-1
		c.mu.Lock()
		switch {
		case !final:
			if c.batches[from] == b {
				delete(c.batches, from) // read again next time
			}
		default:
			b.evs = out
			c.order = append(c.order, from)
			if len(c.order) > c.max {
				if old := c.order[0]; c.batches[old] != b {
					delete(c.batches, old)
				}
				c.order = slices.Delete(c.order, 0, 1)
			}
		}
		c.mu.Unlock()
		close(b.done)
		return out, err
	}
	c.mu.Unlock()
	select {
	case <-b.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if b.evs == nil {
		return c.src.ReadAll(ctx, from, limit)
	}
	c.hits.Add(1)
	return b.evs, nil
}
