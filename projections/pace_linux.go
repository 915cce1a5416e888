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
	names := [2]string{g.path, g.path + "-wal"}
	var files [2]*os.File
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	for step := int64(0); ; step = (step + 1) % writebackSteps {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		for i, f := range files {
			if step == 0 {
				// Open the files again once a pass: SQLite deletes the
				// WAL when its last connection closes and makes a new
				// one. One not there (yet) waits for the next pass.
				if f != nil {
					f.Close()
				}
				f, _ = os.Open(names[i])
				files[i] = f
			}
			if f == nil {
				continue
			}
			if st, err := f.Stat(); err == nil {
				slice := st.Size()/writebackSteps + 1
				_ = startWriteback(int(f.Fd()), step*slice, slice)
			}
		}
	}
}

// startWriteback starts writing back the dirty pages of [off, off+n) of
// fd's file and waits for nothing (tests replace it).
var startWriteback = func(fd int, off, n int64) error {
	return unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
}
