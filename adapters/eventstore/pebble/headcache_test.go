package pebble

import (
	"fmt"
	"runtime"
	"testing"
)

// TestHeadCache checks that the cache returns the latest head written for
// a stream, holds at most its size, keeps the newest heads when it drops
// old ones, and does not grow under the churn of a new stream per order.
func TestHeadCache(t *testing.T) {
	const size = 1024
	c := newHeadCache(size)
	name := func(i int) string { return fmt.Sprintf("order-acme-ord_%08d", i) }
	for i := range 100_000 {
		c.put(name(i), streamHead{version: 1, position: uint64(i)})
		if i%7 == 0 { // a second event on a recent stream
			c.put(name(i), streamHead{version: 2, position: uint64(i)})
		}
		if c.len() > size {
			t.Fatalf("after %d streams the cache holds %d heads, more than %d", i+1, c.len(), size)
		}
	}
	for i := 100_000 - size/2; i < 100_000; i++ {
		h, ok := c.get(name(i))
		want := uint64(1)
		if i%7 == 0 {
			want = 2
		}
		if !ok || h.version != want || h.position != uint64(i) {
			t.Fatalf("recent stream %d: %+v, %v; want version %d", i, h, ok, want)
		}
	}
	if _, ok := c.get(name(0)); ok {
		t.Fatal("the oldest stream is still cached")
	}
	// A stream written again while in prev moves to cur with its new head.
	var old string
	for k := range c.prev {
		if _, inCur := c.cur[k]; !inCur {
			old = k
			break
		}
	}
	if old == "" {
		t.Fatal("nothing in the older generation")
	}
	c.put(old, streamHead{version: 9})
	if h, _ := c.get(old); h.version != 9 {
		t.Fatalf("rewritten head: %+v", h)
	}

	// Churn: the heap it holds stays that of a cache of its size.
	heapOf := func(f func()) uint64 {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		f()
		runtime.GC()
		runtime.ReadMemStats(&b)
		return b.HeapAlloc - min(a.HeapAlloc, b.HeapAlloc)
	}
	var churned *headCache
	used := heapOf(func() {
		churned = newHeadCache(1 << 14)
		for i := range 1_000_000 {
			churned.put(name(i), streamHead{version: 1})
		}
	})
	var fresh *headCache
	want := heapOf(func() {
		fresh = newHeadCache(1 << 14)
		for i := range 1 << 14 {
			fresh.put(name(i), streamHead{version: 1})
		}
	})
	t.Logf("16,384 heads after 1M streams: %.1f MiB; 16,384 heads put once: %.1f MiB", float64(used)/(1<<20), float64(want)/(1<<20))
	if used > 2*want {
		t.Errorf("churned cache holds %d bytes, a fresh one %d", used, want)
	}
	runtime.KeepAlive(churned)
	runtime.KeepAlive(fresh)
}

// len is how many heads the cache holds (a stream in both generations
// counts twice).
func (c *headCache) len() int { return len(c.cur) + len(c.prev) }
