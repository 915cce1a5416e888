package event

import (
	"context"
	"sync"
	"sync/atomic"
)

// AllCache is an AllReader that keeps the envelopes it read last, so that
// readers following $all close behind each other read each event from the
// store once between them. In livecore dev the Kafka bridge and the six
// projections all follow the head: without the cache each of them read,
// checked and copied every event itself (the store's ReadAll was 17% of
// the memory an order allocated).
//
// It is a ring indexed by position: a read takes the run of cached
// positions at its start and reads the rest from the source (then
// caches it). Positions of $all never change once written, so a slot
// holding the position asked for holds its event. Readers behind the ring
// read from the source, as they would without it.
//
// The envelopes returned share their strings and Data with the cache and
// with every other reader: treat them as read-only (Envelope's contract
// for any store: consumers copy what they change).
type AllCache struct {
	src AllReader

	mu    sync.Mutex
	slots []Envelope
	mask  uint64

	hits, misses atomic.Uint64
}

// NewAllCache returns a cache of at least size positions (a power of two)
// in front of src.
func NewAllCache(src AllReader, size int) *AllCache {
	n := 1
	for n < size {
		n <<= 1
	}
	return &AllCache{src: src, slots: make([]Envelope, n), mask: uint64(n - 1)}
}

// ReadAll implements AllReader: the same events src would return.
func (c *AllCache) ReadAll(ctx context.Context, fromPosition uint64, max int) ([]Envelope, error) {
	from := fromPosition
	if from == 0 {
		from = 1
	}
	if max <= 0 || uint64(max) > c.mask+1 {
		// Larger than the ring: nothing to share.
		return c.src.ReadAll(ctx, fromPosition, max)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The batch's size: up to the head, if the source tells it (readers
	// ask for up to 1,000 events and usually get a few dozen).
	want := max
	if h, ok := c.src.(HeadReader); ok {
		head, err := h.Head(ctx)
		if err != nil {
			return nil, err
		}
		if head < from {
			return nil, nil
		}
		want = int(min(uint64(max), head-from+1))
	}
	var out []Envelope
	c.mu.Lock()
	k := 0
	for k < want && c.slots[(from+uint64(k))&c.mask].Position == from+uint64(k) {
		k++
	}
	if k > 0 {
		out = make([]Envelope, k, want)
		for i := range out {
			out[i] = c.slots[(from+uint64(i))&c.mask]
		}
	}
	c.mu.Unlock()
	c.hits.Add(uint64(k))
	if k == max {
		return out, nil
	}
	rest, err := c.src.ReadAll(ctx, from+uint64(k), max-k)
	if err != nil {
		return nil, err
	}
	c.misses.Add(uint64(len(rest)))
	if len(rest) > 0 {
		c.mu.Lock()
		for i := range rest {
			c.slots[rest[i].Position&c.mask] = rest[i]
		}
		c.mu.Unlock()
	}
	if out == nil {
		return rest, nil
	}
	return append(out, rest...), nil
}

// Stats returns how many events reads found in the cache (hits) and how
// many they read from the source (misses).
func (c *AllCache) Stats() (hits, misses uint64) {
	return c.hits.Load(), c.misses.Load()
}
