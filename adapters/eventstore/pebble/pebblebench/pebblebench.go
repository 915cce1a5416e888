// Package pebblebench measures the Pebble event store against this disk's
// own fsync rate, in one run, so the ratios mean something on a noisy
// machine. The same workloads back the go test benchmarks in
// adapters/eventstore/pebble and `livecore bench eventstore`.
//
// Workloads, each on a fresh store in its own subdirectory of dir:
//
//   - raw fsync: internal/fsyncbench (4 KiB write + fsync, serial).
//   - single writer: one goroutine appends one event at a time.
//   - 64 writers: 64 goroutines append one event at a time to 6,400
//     streams; events per fsync is counted twice, by the store's group
//     commits and by the WAL syncs seen at the file layer.
//   - $all read: 2,000 streams of 100 events (appends of 10, interleaved),
//     then the whole log read from position 1 in pages of 10,000, five
//     times: the first pass (blocks from the OS page cache, decompressed)
//     and the median of the other four (Pebble's block cache warm).
//   - stream load: ReadStream of 5,000 random whole 100-event streams of
//     that log (each spread over $all in ten runs); p50 and p99 latency.
//
// The read figures are then taken again with GOGC=400: Pebble keeps its
// cache and memtables off the Go heap, so a process doing little else
// has a heap of a few MB and collects every few milliseconds, and reads
// (which allocate their results) follow the GC pace.
//
// Raw fsync and the single writer alternate in 20 rounds of 250 operations
// each, so both see the same disk weather; the ratio is of their totals.
package pebblebench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/internal/fsyncbench"
)

// SyncCountingFS is vfs.Default counting the syncs of Pebble's WAL files.
type SyncCountingFS struct {
	vfs.FS
	walSyncs atomic.Int64
}

// NewSyncCountingFS wraps vfs.Default.
func NewSyncCountingFS() *SyncCountingFS { return &SyncCountingFS{FS: vfs.Default} }

// WALSyncs is the number of WAL syncs so far.
func (fs *SyncCountingFS) WALSyncs() int64 { return fs.walSyncs.Load() }

func (fs *SyncCountingFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &countingFile{File: f, n: &fs.walSyncs}, nil
}

// Create implements vfs.FS.
func (fs *SyncCountingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

// OpenReadWrite implements vfs.FS.
func (fs *SyncCountingFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return fs.wrap(name, f, err)
}

// ReuseForWrite implements vfs.FS (Pebble recycles WAL files).
func (fs *SyncCountingFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return fs.wrap(newname, f, err)
}

type countingFile struct {
	vfs.File
	n *atomic.Int64
}

func (f *countingFile) Sync() error     { f.n.Add(1); return f.File.Sync() }
func (f *countingFile) SyncData() error { f.n.Add(1); return f.File.SyncData() }
func (f *countingFile) SyncTo(length int64) (bool, error) {
	f.n.Add(1)
	return f.File.SyncTo(length)
}

// Proposed returns one event of about size bytes of JSON with an ID
// derived from cmd.
func Proposed(cmd string, size int) event.Proposed {
	pad := strings.Repeat("x", max(size-40, 0))
	return event.Proposed{
		ID:            event.DeriveID(cmd, 0),
		Type:          "bench.happened.v1",
		SchemaVersion: 1,
		Data:          fmt.Appendf(nil, `{"cmd":%q,"pad":%q}`, cmd, pad),
		Metadata:      event.Metadata{Tenant: "bench", CorrelationID: cmd},
	}
}

func openIn(dir, name string, fs vfs.FS) (*pebble.Store, error) {
	cfg := pebble.Config{Dir: filepath.Join(dir, name)}
	if fs != nil {
		cfg.FS = fs
	}
	return pebble.Open(cfg)
}

// AppendResult is the outcome of an append workload.
type AppendResult struct {
	Appends, Events int
	Elapsed         time.Duration
	Commits         uint64 // the store's group commits
	WALSyncs        int64  // syncs of WAL files at the file layer
}

// PerSecond is events per second.
func (r AppendResult) PerSecond() float64 { return float64(r.Events) / r.Elapsed.Seconds() }

// EventsPerCommit is events per group commit (one fsync each).
func (r AppendResult) EventsPerCommit() float64 {
	return float64(r.Events) / float64(max(r.Commits, 1))
}

// EventsPerWALSync is events per WAL sync counted at the file layer.
func (r AppendResult) EventsPerWALSync() float64 {
	return float64(r.Events) / float64(max(r.WALSyncs, 1))
}

// Appends runs writers goroutines appending one event (of size bytes) per
// append, round-robin over streams streams each, until n appends are done
// (n > 0) or for d. It opens a fresh store in dir/name.
func Appends(ctx context.Context, dir, name string, writers, streams, n int, d time.Duration, size int) (AppendResult, error) {
	fs := NewSyncCountingFS()
	s, err := openIn(dir, name, fs)
	if err != nil {
		return AppendResult{}, err
	}
	defer s.Close()
	syncs0 := fs.WALSyncs()
	var done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				if n > 0 {
					if done.Add(1) > int64(n) {
						return
					}
				} else if i%16 == 0 && time.Now().After(deadline) {
					return
				}
				stream := fmt.Sprintf("bench-%d-%d", w, i%streams)
				if _, err := s.Append(ctx, stream, event.Any, []event.Proposed{Proposed(fmt.Sprintf("%s-%d-%d", name, w, i), size)}); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				if n <= 0 {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return AppendResult{}, firstErr
	}
	st := s.Stats()
	return AppendResult{
		Appends: int(st.Appends), Events: int(st.Events), Elapsed: elapsed,
		Commits: st.Commits, WALSyncs: fs.WALSyncs() - syncs0,
	}, nil
}

// SideBySide is a single-writer run interleaved with raw fsync runs.
type SideBySide struct {
	RawPerSecond    float64 // serial 4 KiB write+fsync
	AppendPerSecond float64 // single-writer appends of one event
}

// Ratio is appends per second over raw fsyncs per second.
func (r SideBySide) Ratio() float64 { return r.AppendPerSecond / r.RawPerSecond }

// SingleWriter alternates rounds chunks of chunk raw fsyncs
// (internal/fsyncbench, in dir) and chunk single-writer appends (one event
// of size bytes each, to a fresh store in dir/name), so both see the same
// disk weather, and returns both rates over all rounds.
func SingleWriter(ctx context.Context, dir, name string, rounds, chunk, size int) (SideBySide, error) {
	s, err := openIn(dir, name, nil)
	if err != nil {
		return SideBySide{}, err
	}
	defer s.Close()
	var rawTime, appendTime time.Duration
	for round := range rounds {
		raw, err := fsyncbench.Measure(dir, chunk)
		if err != nil {
			return SideBySide{}, err
		}
		rawTime += raw.Elapsed
		start := time.Now()
		for i := range chunk {
			stream := fmt.Sprintf("single-%d", (round*chunk+i)/100)
			if _, err := s.Append(ctx, stream, event.Any, []event.Proposed{Proposed(fmt.Sprintf("%s-%d-%d", name, round, i), size)}); err != nil {
				return SideBySide{}, err
			}
		}
		appendTime += time.Since(start)
	}
	n := float64(rounds * chunk)
	return SideBySide{RawPerSecond: n / rawTime.Seconds(), AppendPerSecond: n / appendTime.Seconds()}, nil
}

// Fill opens a fresh store in dir/name and appends streams streams of
// perStream events each (of size bytes), perAppend events per append. 32
// goroutines append concurrently, each stream in rounds, so one stream's
// events are spread over $all. It returns the open store; the caller
// closes it.
func Fill(ctx context.Context, dir, name string, streams, perStream, perAppend, size int) (*pebble.Store, error) {
	return FillConfig(ctx, pebble.Config{Dir: filepath.Join(dir, name)}, streams, perStream, perAppend, size)
}

// FillConfig is Fill with a whole store configuration.
func FillConfig(ctx context.Context, cfg pebble.Config, streams, perStream, perAppend, size int) (*pebble.Store, error) {
	s, err := pebble.Open(cfg)
	if err != nil {
		return nil, err
	}
	const fillers = 32
	errs := make([]error, fillers)
	var wg sync.WaitGroup
	for f := range fillers {
		wg.Go(func() {
			for round := 0; round*perAppend < perStream; round++ {
				for st := f; st < streams; st += fillers {
					evs := make([]event.Proposed, min(perAppend, perStream-round*perAppend))
					for i := range evs {
						evs[i] = Proposed(fmt.Sprintf("fill-%d-%d-%d", st, round, i), size)
					}
					if _, err := s.Append(ctx, fmt.Sprintf("load-%d", st), event.Any, evs); err != nil {
						errs[f] = err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// ReadAll reads s's whole $all once, in pages of page events, and returns
// events per second.
func ReadAll(ctx context.Context, s *pebble.Store, page int) (float64, error) {
	total, next := 0, uint64(1)
	start := time.Now()
	for {
		batch, err := s.ReadAll(ctx, next, page)
		if err != nil {
			return 0, err
		}
		if len(batch) == 0 {
			break
		}
		total += len(batch)
		next = batch[len(batch)-1].Position + 1
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// StreamLoad reads n random whole streams "load-0".."load-<streams-1>" and
// returns the sorted latencies.
func StreamLoad(ctx context.Context, s *pebble.Store, streams, n int, want int) ([]time.Duration, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, n)
	for i := range lat {
		stream := fmt.Sprintf("load-%d", rng.IntN(streams))
		t := time.Now()
		evs, err := s.ReadStream(ctx, stream, 1, 0)
		lat[i] = time.Since(t)
		if err != nil {
			return nil, err
		}
		if len(evs) != want {
			return nil, fmt.Errorf("%s has %d events, want %d", stream, len(evs), want)
		}
	}
	slices.Sort(lat)
	return lat, nil
}

// Percentile of sorted latencies, p in [0, 100].
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(float64(len(sorted))*p/100), len(sorted)-1)]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// Run runs every workload in a temporary directory under dir (removed
// afterwards) and prints a table to out. It takes about 30 s.
func Run(ctx context.Context, dir string, out io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, "pebblebench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	single, err := SingleWriter(ctx, tmp, "single", 20, 250, 200)
	if err != nil {
		return err
	}
	many, err := Appends(ctx, tmp, "many", 64, 100, 0, 5*time.Second, 200)
	if err != nil {
		return err
	}
	s, err := Fill(ctx, tmp, "read", 2000, 100, 10, 200)
	if err != nil {
		return err
	}
	defer s.Close()
	passes := func(n int) ([]float64, error) {
		var rates []float64
		for range n {
			r, err := ReadAll(ctx, s, 10_000)
			if err != nil {
				return nil, err
			}
			rates = append(rates, r)
		}
		return rates, nil
	}
	reads, err := passes(5)
	if err != nil {
		return err
	}
	lat, err := StreamLoad(ctx, s, 2000, 5000, 100)
	if err != nil {
		return err
	}
	// Pebble keeps its cache and memtables off the Go heap, so a process
	// doing little else has a heap of a few MB and collects every few ms;
	// read figures follow the GC pace. Measure again with GOGC=400 to show
	// the lever, then restore the setting.
	old := debug.SetGCPercent(400)
	readsGC, err := passes(4)
	var latGC []time.Duration
	if err == nil {
		latGC, err = StreamLoad(ctx, s, 2000, 5000, 100)
	}
	debug.SetGCPercent(old)
	if err != nil {
		return err
	}

	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workload\tfigure\ttarget\t\n")
	fmt.Fprintf(tw, "raw fsync (4 KiB write+fsync)\t%.0f/s\t\t\n", single.RawPerSecond)
	fmt.Fprintf(tw, "single writer, 1 event/append\t%.0f appends/s\t\t\n", single.AppendPerSecond)
	fmt.Fprintf(tw, "single writer / raw fsync (20 interleaved rounds of 250)\t%.0f%%\t>= 80%%\t\n", 100*single.Ratio())
	fmt.Fprintf(tw, "64 writers, 1 event/append\t%.0f events/s\t\t\n", many.PerSecond())
	fmt.Fprintf(tw, "64 writers: events per group commit\t%.1f\t>= 20\t\n", many.EventsPerCommit())
	fmt.Fprintf(tw, "64 writers: events per WAL sync (file layer)\t%.1f\t>= 20\t\n", many.EventsPerWALSync())
	fmt.Fprintf(tw, "$all read, first pass (200k events, pages of 10k)\t%.0f events/s\t\t\n", reads[0])
	fmt.Fprintf(tw, "$all read, block cache warm (median of 4)\t%.0f events/s\t>= 1,000,000\t\n", median(reads[1:]))
	fmt.Fprintf(tw, "$all read, block cache warm, GOGC=400 (median of 4)\t%.0f events/s\t>= 1,000,000\t\n", median(readsGC))
	fmt.Fprintf(tw, "stream load, 100 events: p50 / p99\t%v / %v\tp99 < 1ms\t\n",
		Percentile(lat, 50).Round(time.Microsecond), Percentile(lat, 99).Round(time.Microsecond))
	fmt.Fprintf(tw, "stream load, 100 events, GOGC=400: p50 / p99\t%v / %v\tp99 < 1ms\t\n",
		Percentile(latGC, 50).Round(time.Microsecond), Percentile(latGC, 99).Round(time.Microsecond))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "events of ~200 B JSON; every append fsynced before its acknowledgement; dir %s\n", dir)
	return nil
}
