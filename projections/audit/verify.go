package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/livecore/livecore/domain/event"
)

// Source is what Verify reads: $all and its head. Every event store
// (Pebble, SQL, memory, KurrentDB) implements it.
type Source interface {
	event.AllReader
	event.HeadReader
}

// Scanner is what a Source implements to be read without a slice of
// envelopes (the Pebble store does); Verify uses it when present, decoding
// and hashing each event where it is read and keeping only what linking
// needs.
type Scanner interface {
	// ScanAll calls fn with each event of $all from fromPosition on, in
	// position order, up to limit events (0: to the head), checked as
	// ReadAll checks them: a damaged or missing record is
	// event.ErrCorrupt. The envelope and everything it points to are only
	// valid during the call. fn's error stops the scan and is returned.
	ScanAll(ctx context.Context, fromPosition uint64, limit int, fn func(e *event.Envelope) error) error
}

// Checkpoint is a trusted head: the global hash of the event at Position,
// recorded somewhere an attacker on the event-store host cannot rewrite (the
// finance team's records, the last report of a verification, the Kafka
// copy of $all). The global hash covers every event up to Position, so one
// checkpoint pins the whole prefix: any edit, deletion, reordering or
// truncation of it changes or removes that hash.
type Checkpoint struct {
	Position   uint64
	GlobalHash event.Hash
}

// String is "position:hexhash", the form ParseCheckpoint reads.
func (c Checkpoint) String() string {
	return strconv.FormatUint(c.Position, 10) + ":" + c.GlobalHash.String()
}

// IsZero reports whether c is the zero Checkpoint (an empty log).
func (c Checkpoint) IsZero() bool { return c.Position == 0 && c.GlobalHash.IsZero() }

// ParseCheckpoint reads "position:hexhash".
func ParseCheckpoint(s string) (Checkpoint, error) {
	pos, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Checkpoint{}, fmt.Errorf("checkpoint %q: want position:hash", s)
	}
	p, err := strconv.ParseUint(pos, 10, 64)
	if err != nil || p == 0 {
		return Checkpoint{}, fmt.Errorf("checkpoint %q: bad position", s)
	}
	h, err := event.ParseHash(hash)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %q: %w", s, err)
	}
	return Checkpoint{Position: p, GlobalHash: h}, nil
}

// ProblemKind classifies what Verify found. Closed set.
type ProblemKind struct{ name string }

// The kinds of problems.
var (
	// KindCorrupt: the store refused to serve the record (its checksum
	// failed, it is missing, or it sits under another position's key):
	// damage that did not even keep the storage format intact.
	KindCorrupt = ProblemKind{"corrupt"}
	// KindEdited: the event's content does not hash to its recorded hash.
	KindEdited = ProblemKind{"edited"}
	// KindMissing: positions or stream versions are skipped (a deletion).
	KindMissing = ProblemKind{"missing"}
	// KindReordered: positions or stream versions go backwards or repeat.
	KindReordered = ProblemKind{"reordered"}
	// KindBrokenLink: the event's recorded predecessor hash is not the
	// hash of its predecessor (an event was removed, inserted or replaced
	// with its hash recomputed).
	KindBrokenLink = ProblemKind{"broken_link"}
	// KindTruncated: the log ends before a trusted checkpoint or the
	// requested range.
	KindTruncated = ProblemKind{"truncated"}
	// KindDiverged: the chain is intact but its hash at a trusted
	// checkpoint differs: the history up to there was rewritten and
	// re-hashed wholesale.
	KindDiverged = ProblemKind{"diverged"}
)

func (k ProblemKind) String() string { return k.name }

// MarshalText encodes the kind's name.
func (k ProblemKind) MarshalText() ([]byte, error) { return []byte(k.name), nil }

// Problem is the first bad position Verify found and why.
type Problem struct {
	Position uint64
	Stream   string // "" when the record could not be read
	Version  uint64
	Kind     ProblemKind
	Reason   string
}

func (p *Problem) Error() string {
	where := fmt.Sprintf("position %d", p.Position)
	if p.Stream != "" {
		where += fmt.Sprintf(" (%s v%d)", p.Stream, p.Version)
	}
	return fmt.Sprintf("%s: %s: %s", where, p.Kind, p.Reason)
}

// Progress is reported after every batch.
type Progress struct {
	Done, Total uint64 // events checked, events in the range
	Position    uint64 // last position checked
	Elapsed     time.Duration
}

// VerifyOptions says what to verify.
type VerifyOptions struct {
	// From and To bound the range of positions, inclusive. From 0 means 1;
	// To 0 means the head.
	From, To uint64
	// Trusted are checkpoints kept outside the store. Each is checked
	// whether or not it lies in the range; one beyond the head is a
	// truncation.
	Trusted []Checkpoint
	// Streams, when set, anchors streams whose earlier events lie before
	// From: the predecessor of each stream's first event in the range is
	// read to check the link. Without it those first links are taken as
	// recorded (Report.Unanchored counts them). From 1 needs no anchors.
	Streams event.StreamReader
	// BatchSize is events per read (default 8192).
	BatchSize int
	// Workers hash in parallel (default GOMAXPROCS).
	Workers int
	// Readers read batches in parallel (default 2; 1 on one CPU). From a
	// Scanner, each reader also hashes what it reads, and the default is
	// Workers.
	Readers int
	// Progress, if set, is called after every batch (for a progress bar).
	Progress func(Progress)
}

// Report is the outcome of Verify.
type Report struct {
	From, To   uint64 // the range checked (To: last position examined)
	Head       uint64 // the store's head when verification started
	Events     uint64 // events whose hashes were recomputed
	Streams    int    // distinct streams seen
	Unanchored int    // streams whose first link in the range was not checked
	// Problem is the first bad position; nil if everything verified.
	Problem *Problem
	// Last is the checkpoint at To when no problem was found: keep it
	// (outside the store) as a trusted checkpoint for the next run.
	Last    Checkpoint
	Elapsed time.Duration
	// CPU is the process CPU time spent (user+system, all threads), for an
	// events-per-core figure; 0 where the platform does not report it.
	CPU time.Duration
}

// OK reports whether no problem was found.
func (r Report) OK() bool { return r.Problem == nil }

// EventsPerSecond is the wall-clock rate.
func (r Report) EventsPerSecond() float64 { return rate(r.Events, r.Elapsed) }

// EventsPerCPUSecond is the rate per second of CPU: events per second per
// core.
func (r Report) EventsPerCPUSecond() float64 { return rate(r.Events, r.CPU) }

func rate(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

type link struct {
	version uint64
	hash    event.Hash
}

// content-check flags per event, set by the hashing workers.
const (
	badStream uint8 = 1 << iota // StreamHash(PrevHash, e) != e.Hash
	badGlobal                   // GlobalChainHash(PrevGlobalHash, Position, Hash) != GlobalHash
)

// checked is what linking needs of one event, its hashes recomputed. It
// holds no pointers (the stream ID is a span of its batch's names), so
// batches cost the garbage collector nothing.
type checked struct {
	position, version  uint64
	prevHash, hash     event.Hash
	prevGlobal, global event.Hash
	name               [2]int // the stream ID is names[name[0]:name[1]]
	flags              uint8
}

// batch is one chunk of the range, checked and ready to link. Batches are
// reused: strings from stream are only valid until the batch is.
type batch struct {
	from  uint64
	evs   []checked
	names []byte
	err   error
}

// reset empties b for n events from position from.
func (b *batch) reset(from uint64, n int) {
	b.from, b.evs, b.names, b.err = from, slices.Grow(b.evs[:0], n), b.names[:0], nil
}

// add checks e's hashes and appends what linking needs.
func (b *batch) add(h *hasher, e *event.Envelope) {
	b.evs = append(b.evs, checked{})
	h.check(&b.evs[len(b.evs)-1], e)
	b.name(len(b.evs)-1, e.StreamID)
}

// name stores evs[i]'s stream ID.
func (b *batch) name(i int, stream string) {
	n := len(b.names)
	b.names = append(b.names, stream...)
	b.evs[i].name = [2]int{n, len(b.names)}
}

// stream is c's stream ID, pointing into b.names: clone it to keep it.
func (b *batch) stream(c *checked) string {
	if c.name[0] == c.name[1] {
		return ""
	}
	return unsafe.String(&b.names[c.name[0]], c.name[1]-c.name[0])
}

// Verify recomputes the per-stream and the global hash chains over a range
// of $all and reports the first bad position: an edited payload or
// metadata, a deleted, inserted or reordered event, a record the store
// refuses as corrupt (reported at its position, not as an error), and a
// truncated tail or rewritten prefix against opts.Trusted checkpoints.
//
// The error is for failures to run (ctx done, store closed), never for
// what was found; a found problem is Report.Problem. Readers read chunks
// in parallel and hash them (on opts.Workers goroutines each, or as they
// scan a Scanner) while this goroutine links them in position order;
// nothing is allocated per event (see hasher and checked). Verify holds
// one small entry per stream in memory.
func Verify(ctx context.Context, src Source, opts VerifyOptions) (rep Report, err error) {
	start, cpu0 := time.Now(), cpuTime()
	if opts.BatchSize <= 0 {
		opts.BatchSize = 8192
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	scanner, _ := src.(Scanner)
	if opts.Readers <= 0 {
		opts.Readers = min(2, runtime.GOMAXPROCS(0))
		if scanner != nil {
			opts.Readers = opts.Workers
		}
	}
	head, err := src.Head(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("verify: head: %w", err)
	}
	rep = Report{From: max(opts.From, 1), To: opts.To, Head: head}
	if rep.To == 0 || rep.To > head {
		rep.To = head
	}
	v := &verifier{src: src, scanner: scanner, opts: opts, rep: &rep, index: map[string]uint32{}}
	defer func() {
		rep.Elapsed, rep.CPU = time.Since(start), cpuTime()-cpu0
	}()

	// Problems outside the main pass: the range or a trusted checkpoint
	// beyond the head, a trusted hash that differs. The first bad
	// position wins, so they are collected and compared at the end.
	var found []*Problem
	if opts.To > head {
		found = append(found, &Problem{Position: head + 1, Kind: KindTruncated,
			Reason: fmt.Sprintf("the range ends at %d but the log ends at %d", opts.To, head)})
	}
	for _, cp := range opts.Trusted {
		p, err := v.checkTrusted(ctx, cp)
		if err != nil {
			return rep, err
		}
		if p != nil {
			found = append(found, p)
		}
	}
	if rep.From <= rep.To {
		if err := v.run(ctx); err != nil {
			return rep, err
		}
	}
	if v.problem != nil {
		found = append(found, v.problem)
	}
	for _, p := range found {
		if rep.Problem == nil || p.Position < rep.Problem.Position {
			rep.Problem = p
		}
	}
	rep.Streams = len(v.index)
	if rep.Problem == nil && rep.To > 0 {
		rep.Last = Checkpoint{Position: rep.To, GlobalHash: v.prevGlobal}
	}
	return rep, nil
}

type verifier struct {
	src     Source
	scanner Scanner // src, if it is one
	opts    VerifyOptions
	rep     *Report
	problem *Problem

	// The last link of every stream seen: index maps the stream ID to
	// its entry in links. Entries are updated in place, so a key is
	// stored once, as a copy (IDs from a batch point into reused memory).
	index map[string]uint32
	links []link

	prevPos    uint64
	prevGlobal event.Hash
}

// checkTrusted compares a trusted checkpoint with the store.
func (v *verifier) checkTrusted(ctx context.Context, cp Checkpoint) (*Problem, error) {
	if cp.Position == 0 {
		return nil, nil
	}
	if cp.Position > v.rep.Head {
		return &Problem{Position: v.rep.Head + 1, Kind: KindTruncated,
			Reason: fmt.Sprintf("trusted checkpoint %s is beyond the log's end at %d: events %d-%d are gone", cp, v.rep.Head, v.rep.Head+1, cp.Position)}, nil
	}
	evs, err := v.src.ReadAll(ctx, cp.Position, 1)
	if err != nil {
		if errors.Is(err, event.ErrCorrupt) {
			return &Problem{Position: cp.Position, Kind: KindCorrupt, Reason: fmt.Sprintf("the event at trusted checkpoint %s cannot be read: %v", cp, err)}, nil
		}
		return nil, fmt.Errorf("verify: read trusted checkpoint %d: %w", cp.Position, err)
	}
	if len(evs) != 1 || evs[0].Position != cp.Position {
		return &Problem{Position: cp.Position, Kind: KindMissing, Reason: fmt.Sprintf("no event at trusted checkpoint %s", cp)}, nil
	}
	if e := evs[0]; e.GlobalHash != cp.GlobalHash {
		return &Problem{Position: cp.Position, Stream: e.StreamID, Version: e.Version, Kind: KindDiverged,
			Reason: fmt.Sprintf("global hash %s differs from the trusted checkpoint's %s: history up to here was rewritten", e.GlobalHash, cp.GlobalHash)}, nil
	}
	return nil, nil
}

// run reads and hashes the range in chunks on opts.Readers goroutines
// while this one links the chunks in position order.
func (v *verifier) run(ctx context.Context) error {
	if err := v.anchorGlobal(ctx); err != nil || v.problem != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Readers take turns: chunk k (BatchSize positions) is read by reader
	// k mod Readers and handed over on that reader's channel, so chunks
	// are linked in position order while several are read at once.
	// Linked batches go back to free for reuse.
	size := uint64(v.opts.BatchSize)
	chunks := (v.rep.To-v.rep.From)/size + 1
	readers := uint64(max(1, v.opts.Readers))
	chans := make([]chan *batch, readers)
	free := make(chan *batch, 2*readers+1)
	for i := range chans {
		chans[i] = make(chan *batch, 1)
		go func(i uint64) {
			defer close(chans[i])
			var h hasher
			hs := make([]hasher, v.opts.Workers)
			for k := i; k < chunks; k += readers {
				var b *batch
				select {
				case b = <-free:
				default:
					b = new(batch)
				}
				from := v.rep.From + k*size
				n := min(size, v.rep.To-from+1)
				b.reset(from, int(n))
				if v.scanner != nil {
					b.err = v.scanner.ScanAll(ctx, from, int(n), func(e *event.Envelope) error {
						b.add(&h, e)
						return nil
					})
				} else {
					var evs []event.Envelope
					if evs, b.err = v.src.ReadAll(ctx, from, int(n)); b.err == nil {
						hashAll(hs, b, evs)
					}
				}
				// b belongs to the linker once sent.
				last := b.err != nil || uint64(len(b.evs)) < n
				select {
				case chans[i] <- b:
				case <-ctx.Done():
					return
				}
				if last {
					return
				}
			}
		}(uint64(i))
	}
	total := v.rep.To - v.rep.From + 1
	start := time.Now()
	next := v.rep.From
	for k := uint64(0); k < chunks; k++ {
		b, ok := <-chans[k%readers]
		if !ok {
			break // the reader stopped after a short or failed chunk
		}
		if b.err != nil {
			if errors.Is(b.err, event.ErrCorrupt) {
				return v.locateCorrupt(ctx, b.from, min(uint64(v.opts.BatchSize), v.rep.To-b.from+1), b.err)
			}
			return fmt.Errorf("verify: read from %d: %w", b.from, b.err)
		}
		if len(b.evs) == 0 {
			v.problem = &Problem{Position: next, Kind: KindTruncated, Reason: fmt.Sprintf("the log ends at %d, before the head %d it reported", next-1, v.rep.To)}
			return nil
		}
		if err := v.link(ctx, b); err != nil || v.problem != nil {
			return err
		}
		next = b.evs[len(b.evs)-1].position + 1
		if v.opts.Progress != nil {
			v.opts.Progress(Progress{Done: v.rep.Events, Total: total, Position: next - 1, Elapsed: time.Since(start)})
		}
		if next <= v.rep.To && uint64(len(b.evs)) < min(uint64(v.opts.BatchSize), v.rep.To-b.from+1) {
			v.problem = &Problem{Position: next, Kind: KindTruncated, Reason: fmt.Sprintf("the log ends at %d, before the head %d it reported", next-1, v.rep.To)}
			return nil
		}
		select {
		case free <- b:
		default:
		}
	}
	return ctx.Err()
}

// anchorGlobal loads the global hash before From.
func (v *verifier) anchorGlobal(ctx context.Context) error {
	v.prevPos = v.rep.From - 1
	if v.prevPos == 0 {
		return nil
	}
	evs, err := v.src.ReadAll(ctx, v.prevPos, 1)
	if errors.Is(err, event.ErrCorrupt) {
		v.problem = &Problem{Position: v.prevPos, Kind: KindCorrupt, Reason: fmt.Sprintf("the event before the range cannot be read: %v", err)}
		return nil
	}
	if err != nil {
		return fmt.Errorf("verify: read %d: %w", v.prevPos, err)
	}
	if len(evs) != 1 {
		v.problem = &Problem{Position: v.prevPos, Kind: KindMissing, Reason: "the event before the range is missing"}
		return nil
	}
	v.prevGlobal = evs[0].GlobalHash
	return nil
}

// hashAll checks the hashes of evs into b, on up to len(hs) goroutines.
func hashAll(hs []hasher, b *batch, evs []event.Envelope) {
	b.evs = slices.Grow(b.evs, len(evs))[:len(evs)]
	w := min(len(hs), max(1, len(evs)/256))
	per := (len(evs) + w - 1) / w
	var wg sync.WaitGroup
	for i := range w {
		lo, hi := i*per, min((i+1)*per, len(evs))
		if lo >= hi {
			break
		}
		wg.Go(func() {
			for j := lo; j < hi; j++ {
				hs[i].check(&b.evs[j], &evs[j])
			}
		})
	}
	wg.Wait()
	for j := range evs {
		b.name(j, evs[j].StreamID)
	}
}

// link checks, in position order, what the readers could not: that each
// event follows its predecessor in $all and in its stream.
func (v *verifier) link(ctx context.Context, b *batch) error {
	for i := range b.evs {
		c := &b.evs[i]
		stream := b.stream(c)
		switch want := v.prevPos + 1; {
		case c.position > want:
			v.problem = &Problem{Position: want, Kind: KindMissing, Reason: fmt.Sprintf("position %d is followed by %d", v.prevPos, c.position)}
			return nil
		case c.position < want:
			return v.bad(c, stream, KindReordered, "position %d follows %d", c.position, v.prevPos)
		}
		var prev link
		at, seen := v.index[stream]
		if seen {
			prev = v.links[at]
		} else if c.version > 1 && v.rep.From > 1 {
			if v.opts.Streams == nil {
				// Unanchored: take the recorded link as the predecessor.
				prev = link{version: c.version - 1, hash: c.prevHash}
				v.rep.Unanchored++
			} else {
				var err error
				if prev, err = v.anchorStream(ctx, c, stream); err != nil || v.problem != nil {
					return err
				}
			}
		}
		switch {
		case c.version == prev.version+1:
		case c.version > prev.version+1:
			return v.bad(c, stream, KindMissing, "stream version %d follows %d", c.version, prev.version)
		default:
			return v.bad(c, stream, KindReordered, "stream version %d follows %d", c.version, prev.version)
		}
		switch {
		case c.prevHash != prev.hash:
			return v.bad(c, stream, KindBrokenLink, "recorded previous stream hash %s is not the hash %s of %s v%d", short(c.prevHash), short(prev.hash), stream, prev.version)
		case c.flags&badStream != 0:
			return v.bad(c, stream, KindEdited, "content does not match its hash %s", short(c.hash))
		case c.prevGlobal != v.prevGlobal:
			return v.bad(c, stream, KindBrokenLink, "recorded previous global hash %s is not the global hash %s of position %d", short(c.prevGlobal), short(v.prevGlobal), v.prevPos)
		case c.flags&badGlobal != 0:
			return v.bad(c, stream, KindEdited, "global hash %s does not match its position and stream hash", short(c.global))
		}
		if seen {
			v.links[at] = link{version: c.version, hash: c.hash}
		} else {
			v.index[strings.Clone(stream)] = uint32(len(v.links))
			v.links = append(v.links, link{version: c.version, hash: c.hash})
		}
		v.prevPos, v.prevGlobal = c.position, c.global
		v.rep.Events++
	}
	return nil
}

// bad records the problem found at c.
func (v *verifier) bad(c *checked, stream string, k ProblemKind, format string, args ...any) error {
	v.problem = &Problem{Position: c.position, Stream: strings.Clone(stream), Version: c.version, Kind: k, Reason: fmt.Sprintf(format, args...)}
	return nil
}

// anchorStream reads the predecessor of c in its stream when the range
// starts after position 1. A missing predecessor yields the zero link, so
// the caller reports the gap.
func (v *verifier) anchorStream(ctx context.Context, c *checked, stream string) (link, error) {
	evs, err := v.opts.Streams.ReadStream(ctx, stream, c.version-1, 1)
	switch {
	case errors.Is(err, event.ErrCorrupt):
		return link{}, v.bad(c, stream, KindCorrupt, "its predecessor %s v%d cannot be read: %v", stream, c.version-1, err)
	case err != nil:
		return link{}, fmt.Errorf("verify: anchor %s v%d: %w", stream, c.version-1, err)
	case len(evs) != 1 || evs[0].Version != c.version-1:
		return link{}, nil
	}
	return link{version: evs[0].Version, hash: evs[0].Hash}, nil
}

// locateCorrupt finds the first position of [from, from+n) that the store
// refuses to serve, reading one event at a time.
func (v *verifier) locateCorrupt(ctx context.Context, from, n uint64, cause error) error {
	hs := make([]hasher, 1)
	var b batch
	for p := from; p < from+n; p++ {
		evs, err := v.src.ReadAll(ctx, p, 1)
		switch {
		case errors.Is(err, event.ErrCorrupt):
			v.problem = &Problem{Position: p, Kind: KindCorrupt, Reason: err.Error()}
			return nil
		case err != nil:
			return fmt.Errorf("verify: read %d: %w", p, err)
		case len(evs) != 1:
			v.problem = &Problem{Position: p, Kind: KindMissing, Reason: "the store serves no event here"}
			return nil
		}
		// A readable event before the damage is checked as usual, so an
		// earlier chain problem is still found first.
		b.reset(p, 1)
		hashAll(hs, &b, evs)
		if err := v.link(ctx, &b); err != nil || v.problem != nil {
			return err
		}
	}
	v.problem = &Problem{Position: from, Kind: KindCorrupt, Reason: cause.Error()}
	return nil
}

func short(h event.Hash) string { return h.String()[:16] }
