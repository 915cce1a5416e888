package pebble

// headCache holds the stream heads the committer knows, at most size of
// them (newHeadCache), in two generations: new heads go into cur, and when cur is full it
// becomes prev and a fresh map takes its place, dropping the old prev. A
// head read from prev stays there (writes, not reads, keep a head in cur).
//
// Two maps rather than one map pruned in place: every order is a new
// stream, so the cache sees a new key per order, and a Go map that keeps
// deleting old keys and inserting new ones grows its tables well past its
// size (16,384 heads churned through 2M streams held 14 MiB, the same
// heads in a fresh map 5.4 MiB), all of it marked by every GC cycle.
type headCache struct {
	cur, prev map[string]streamHead
	half      int
}

func newHeadCache(size int) *headCache {
	half := max(size/2, 1)
	return &headCache{cur: make(map[string]streamHead, half), prev: map[string]streamHead{}, half: half}
}

func (c *headCache) get(stream string) (streamHead, bool) {
	if h, ok := c.cur[stream]; ok {
		return h, true
	}
	h, ok := c.prev[stream]
	return h, ok
}

func (c *headCache) put(stream string, h streamHead) {
	if _, ok := c.cur[stream]; !ok && len(c.cur) >= c.half {
		c.prev, c.cur = c.cur, make(map[string]streamHead, c.half)
	}
	c.cur[stream] = h
}
