package pebble_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/domain/event"
)

// faultFS is vfs.Default whose file syncs start failing (EIO) once armed:
// after allow more successful syncs. It counts every sync.
type faultFS struct {
	vfs.FS
	armed  atomic.Bool
	allow  atomic.Int64 // successful syncs left once armed
	syncs  atomic.Int64 // syncs attempted
	failed atomic.Int64 // syncs failed
}

func newFaultFS() *faultFS { return &faultFS{FS: vfs.Default} }

// failAfter arms the FS: the next n syncs succeed, every later one fails.
func (fs *faultFS) failAfter(n int64) {
	fs.allow.Store(n)
	fs.armed.Store(true)
}

func (fs *faultFS) sync() error {
	fs.syncs.Add(1)
	if fs.armed.Load() && fs.allow.Add(-1) < 0 {
		fs.failed.Add(1)
		return fmt.Errorf("injected sync failure: %w", syscall.EIO)
	}
	return nil
}

func (fs *faultFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &faultFile{File: f, fs: fs}, nil
}

func (fs *faultFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs *faultFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.Open(name, opts...))
}

func (fs *faultFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

func (fs *faultFS) OpenDir(name string) (vfs.File, error) { return fs.wrap(fs.FS.OpenDir(name)) }

func (fs *faultFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(oldname, newname, c))
}

type faultFile struct {
	vfs.File
	fs *faultFS
}

func (f *faultFile) Sync() error {
	if err := f.fs.sync(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) SyncData() error {
	if err := f.fs.sync(); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *faultFile) SyncTo(length int64) (bool, error) {
	if err := f.fs.sync(); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}

func proposed(cmd string, n int) []event.Proposed {
	out := make([]event.Proposed, n)
	for i := range out {
		out[i] = event.Proposed{
			ID:            event.DeriveID(cmd, i),
			Type:          "test.happened.v1",
			SchemaVersion: 1,
			Data:          fmt.Appendf(nil, `{"cmd":%q,"i":%d}`, cmd, i),
		}
	}
	return out
}

// TestFsyncFailureMakesStoreReadOnly: 16 writers append while the WAL's
// fsync starts failing after a few successful ones. No append may be
// acknowledged once a sync failed; every later append returns ErrReadOnly;
// reads serve exactly the acknowledged events; a reopen keeps all of them.
func TestFsyncFailureMakesStoreReadOnly(t *testing.T) {
	for _, allow := range []int64{0, 1, 25} {
		t.Run(fmt.Sprintf("fail after %d syncs", allow), func(t *testing.T) {
			dir := t.TempDir()
			fs := newFaultFS()
			s, err := pebble.Open(pebble.Config{Dir: dir, FS: fs})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := t.Context()
			if _, err := s.Append(ctx, "pre-1", event.NoStream, proposed("pre", 3)); err != nil {
				t.Fatal(err)
			}
			fs.failAfter(allow)

			const writers = 16
			var (
				mu         sync.Mutex
				acked      = map[string]bool{} // event IDs
				ackedAfter int                 // acks of appends begun after a sync had failed
				readOnly   int
				otherErrs  []error
				wg         sync.WaitGroup
				stopAt     = time.Now().Add(10 * time.Second)
			)
			for w := range writers {
				wg.Go(func() {
					for i := 0; time.Now().Before(stopAt); i++ {
						failedBefore := fs.failed.Load() > 0
						evs := proposed(fmt.Sprintf("w%d-%d", w, i), 1+i%3)
						_, err := s.Append(ctx, fmt.Sprintf("s-%d", (w+i)%5), event.Any, evs)
						mu.Lock()
						switch {
						case err == nil:
							for _, e := range evs {
								acked[e.ID] = true
							}
							if failedBefore {
								ackedAfter++
							}
						case errors.Is(err, event.ErrReadOnly):
							readOnly++
						default:
							otherErrs = append(otherErrs, err)
						}
						mu.Unlock()
						if err != nil {
							// Knock once more: it must be refused.
							if _, err := s.Append(ctx, "late-1", event.Any, proposed(fmt.Sprintf("late-%d-%d", w, i), 1)); !errors.Is(err, event.ErrReadOnly) {
								mu.Lock()
								otherErrs = append(otherErrs, fmt.Errorf("append after failure: %v", err))
								mu.Unlock()
							}
							return
						}
					}
				})
			}
			wg.Wait()
			if len(otherErrs) > 0 {
				t.Fatalf("unexpected errors: %v", otherErrs)
			}
			if readOnly == 0 || fs.failed.Load() == 0 {
				t.Fatalf("no failure seen: %d read-only errors, %d failed syncs", readOnly, fs.failed.Load())
			}
			// Reads still work and serve exactly what was acknowledged.
			all, err := s.ReadAll(ctx, 1, 0)
			if err != nil {
				t.Fatalf("read after failure: %v", err)
			}
			served := map[string]bool{}
			for _, e := range all {
				served[e.ID] = true
			}
			missing := 0
			for id := range acked {
				if !served[id] {
					missing++
				}
			}
			unacked := len(all) - 3 - len(acked)
			t.Logf("syncs %d (failed %d); acknowledged %d events, %d acks after the failure, %d ErrReadOnly; $all serves %d acknowledged + %d unacknowledged, %d missing",
				fs.syncs.Load(), fs.failed.Load(), len(acked), ackedAfter, readOnly, len(all)-3-unacked, unacked, missing)
			if ackedAfter != 0 || missing != 0 || unacked != 0 {
				t.Fatalf("%d acks after the failure, %d acknowledged events missing, %d unacknowledged served", ackedAfter, missing, unacked)
			}
			if err := s.Close(); err != nil {
				t.Logf("close after failure: %v", err)
			}

			// A restart on a healthy disk keeps every acknowledged event.
			s2 := open(t, pebble.Config{Dir: dir})
			all, err = s2.ReadAll(ctx, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			verify(t, all)
			served = map[string]bool{}
			for _, e := range all {
				served[e.ID] = true
			}
			for id := range acked {
				if !served[id] {
					t.Fatalf("acknowledged event %s lost across the restart", id)
				}
			}
			if _, err := s2.Append(ctx, "post-1", event.NoStream, proposed("post", 1)); err != nil {
				t.Fatalf("append after restart: %v", err)
			}
			t.Logf("after restart: %d events (%d acknowledged before the failure), appends work again", len(all), len(acked)+3)
		})
	}
}

// verify checks every hash chain of all, the whole log from position 1.
func verify(t testing.TB, all []event.Envelope) {
	t.Helper()
	type link struct {
		v uint64
		h event.Hash
	}
	streams := map[string]link{}
	var prev event.Hash
	for i := range all {
		e := &all[i]
		if err := event.VerifyGlobalLink(prev, uint64(i), e); err != nil {
			t.Fatal(err)
		}
		prev = e.GlobalHash
		l := streams[e.StreamID]
		if err := event.VerifyStreamLink(l.h, l.v, e); err != nil {
			t.Fatal(err)
		}
		streams[e.StreamID] = link{e.Version, e.Hash}
	}
}

// TestReopenRecoversHeads: after a reopen, versions, positions and both
// hash chains continue where they stopped, and retries are still
// recognised.
func TestReopenRecoversHeads(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s := open(t, pebble.Config{Dir: dir})
	for i := range 20 {
		if _, err := s.Append(ctx, fmt.Sprintf("acct-%d", i%3), event.Any, proposed(fmt.Sprintf("a-%d", i), 2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, pebble.Config{Dir: dir})
	if h, err := s.Head(ctx); err != nil || h != 40 {
		t.Fatalf("head after reopen %d, %v; want 40", h, err)
	}
	r, err := s.Append(ctx, "acct-0", event.Any, proposed("a-0", 2))
	if err != nil || r.FirstVersion != 1 || r.FirstPosition != 1 {
		t.Fatalf("retry after reopen: %+v, %v; want the original result", r, err)
	}
	if _, err := s.Append(ctx, "acct-1", event.Exact(14), proposed("b", 1)); err != nil {
		t.Fatalf("append at acct-1's recovered version: %v", err)
	}
	all, err := s.ReadAll(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 41 {
		t.Fatalf("%d events, want 41", len(all))
	}
	verify(t, all)
}
