package ports

import (
	"net"
	"strconv"
	"testing"
)

// TestBlock: ports are distinct, below the ephemeral range, free, never
// handed out twice by one process, and a block with a taken port is
// skipped.
func TestBlock(t *testing.T) {
	seen := map[int]bool{}
	for range 5 {
		ps, err := Block("127.0.0.1", 9)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 9 {
			t.Fatalf("%d ports", len(ps))
		}
		for _, p := range ps {
			if p < low || p >= high || seen[p] {
				t.Fatalf("port %d: outside [%d,%d) or handed out twice (%v)", p, low, high, ps)
			}
			seen[p] = true
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				t.Fatalf("port %d handed out but not free: %v", p, err)
			}
			l.Close()
		}
	}
	// Occupy the first port of the next block: Block must skip that block.
	mu.Lock()
	base := low + next*blockSize
	mu.Unlock()
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base))
	if err != nil {
		t.Skipf("port %d busy already, cannot set the test up: %v", base, err)
	}
	defer l.Close()
	ps, err := Block("127.0.0.1", 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p >= base && p < base+blockSize {
			t.Fatalf("Block returned %v from the block whose port %d is taken", ps, base)
		}
	}
	if _, err := Block("127.0.0.1", 17); err == nil {
		t.Fatal("a block of 17 ports was accepted")
	}
}
