package projections

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pace starts the writeback of the database's and the WAL's dirty pages a
// slice of each file at a time: every writebackPass/writebackSteps the next
// 1/writebackSteps of each file's length (sync_file_range, which starts the
// writes and waits for nothing, nor makes them durable).
//
// Why a slice at a time: left alone, the kernel writes dirty pages back 30
// s after they were dirtied, all together (stalls of 135 ms measured in the
// event store's fsyncs, which every request waits for); an fsync of both
// files every second wrote ~40 MB at once and stretched the API's p99. In
// slices the disk sees the same bytes as an even stream.
func (g *unsyncedGuard) pace() {
	t := time.NewTicker(g.step)
	defer t.Stop()
	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for step := int64(0); ; step = (step + 1) % writebackSteps {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		for _, name := range []string{g.path, g.path + "-wal"} {
			f := files[name]
			if step == 0 && f != nil {
				// Once a pass, open the files again: SQLite deletes the
				// WAL when its last connection closes and makes a new one.
				f.Close()
				f = nil
			}
			if f == nil {
				var err error
				if f, err = os.Open(name); err != nil {
					delete(files, name)
					continue // not there yet (or gone): the next pass
				}
				files[name] = f
			}
			st, err := f.Stat()
			if err != nil {
				continue
			}
			slice := st.Size()/writebackSteps + 1
			_ = startWriteback(int(f.Fd()), step*slice, slice)
		}
	}
}

// startWriteback starts writing back the dirty pages of [off, off+n) of
// fd's file and waits for nothing (tests replace it).
var startWriteback = func(fd int, off, n int64) error {
	return unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
}
