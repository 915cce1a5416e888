package projections

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestPacerCoversBothFilesEachPass: in writebackSteps steps the pacer asks
// for the writeback of every byte of the database and of its WAL, and it
// follows a WAL that SQLite deleted and made again.
func TestPacerCoversBothFilesEachPass(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rm.db")
	write := func(name string, size int) {
		t.Helper()
		if err := os.WriteFile(name, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(path, 3<<20+123)
	write(path+"-wal", 1<<20)

	type span struct{ off, end int64 }
	var mu sync.Mutex
	asked := map[string][]span{} // file (as /proc names it) -> ranges
	old := startWriteback
	t.Cleanup(func() { startWriteback = old })
	startWriteback = func(fd int, off, n int64) error {
		name, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if err != nil {
			return err
		}
		mu.Lock()
		asked[name] = append(asked[name], span{off, off + n})
		mu.Unlock()
		return nil
	}
	covered := func(name string, size int64) bool {
		mu.Lock()
		defer mu.Unlock()
		s := slices.Clone(asked[name])
		slices.SortFunc(s, func(a, b span) int { return int(a.off - b.off) })
		end := int64(0)
		for _, r := range s {
			if r.off > end {
				return false
			}
			end = max(end, r.end)
		}
		return end >= size
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("%s: asked %v", what, asked)
			}
		}
	}

	g := &unsyncedGuard{path: path, step: time.Millisecond, stop: make(chan struct{})}
	g.done.Go(g.pace)
	defer func() { close(g.stop); g.done.Wait() }()
	wait("a pass over the database and the WAL", func() bool {
		return covered(path, 3<<20+123) && covered(path+"-wal", 1<<20)
	})

	// SQLite deletes the WAL and makes a new one: the next pass follows it.
	if err := os.Remove(path + "-wal"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	clear(asked)
	mu.Unlock()
	write(path+"-wal", 2<<20)
	// (The old one, still open, is named "... (deleted)" by /proc.)
	wait("a pass over the new WAL", func() bool { return covered(path+"-wal", 2<<20) })
}
