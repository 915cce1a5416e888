// Package pebble is livecore's embedded, durable event store on
// CockroachDB's Pebble (github.com/cockroachdb/pebble/v2).
//
// Durability: an append is acknowledged only after the batch holding it is
// fsynced (Pebble WAL, Sync). Appends share fsyncs through group commit.
// Appends join one queue; one committer at a time (holding commitMu) takes
// every append queued while the previous fsync ran, checks idempotency and
// expected versions in queue order against the stream heads it keeps in
// memory, assigns versions and positions, seals the hash chains
// (event.Seal), writes the whole group as one Pebble batch with Sync, and
// only then makes the group visible to readers and acknowledges it. The
// committer is the appender itself when nobody else is committing (a lone
// writer pays no goroutine hand-off), otherwise the committer goroutine,
// which appenders wake. With one writer that is one fsync per append; with
// many, one fsync per group (see gather for how groups are kept whole).
//
// Fail-stop: the first failed write or fsync puts the store into a
// permanent read-only state. Every later Append returns event.ErrReadOnly;
// nothing is retried (after a failed fsync the kernel may have dropped the
// dirty pages, so a later successful fsync proves nothing). Reads keep
// working and never show the failed group. Restart the process to recover
// from what is on disk.
//
// Integrity: every stored value carries a CRC-32C over its key and payload
// (see codec.go), checked on every read: a torn or corrupt record returns
// event.ErrCorrupt and is never served.
package pebble

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/livecore/livecore/domain/event"
)

// Config configures a Store.
type Config struct {
	// Dir is the data directory, created if missing. Required.
	Dir string
	// Now stamps RecordedAt, once per group commit. Default time.Now.
	Now func() time.Time
	// FS is the file layer. Default vfs.Default; tests inject faults here.
	FS vfs.FS
	// CacheBytes is Pebble's block cache. Default 256 MiB; ScanCacheBytes
	// for a process that reads the log through once.
	CacheBytes int64
	// MemTableBytes is Pebble's memtable size. Default 32 MiB.
	MemTableBytes uint64
	// MaxGroupEvents and MaxGroupBytes bound one group commit; a single
	// larger append still commits alone. Defaults 4096 events, 4 MiB.
	MaxGroupEvents int
	MaxGroupBytes  int
	// HeadCacheSize bounds how many stream heads the committer keeps in
	// memory; others are read from disk on demand (one Pebble read; new
	// streams are ruled out by the key filter without one). Default
	// 1<<14: a head costs ~160 bytes of Go heap (with its stream name)
	// that the GC marks on every cycle; 1<<18 heads were a quarter of the
	// API's live heap after 300k orders, and every order is a new stream
	// (see headCache).
	HeadCacheSize int
	// Logger receives Pebble's messages (Info as Debug). Default slog.Default().
	Logger *slog.Logger
}

// ScanCacheBytes is the block cache for a process that reads the log
// through once (the audit commands). Every block a scan reads enters the
// cache, so until a cache is full each block takes fresh memory, and the
// page faults cost more than the cache saves: audit verify of ~1M events
// ran at 0.94-0.98M events per CPU-second with the default 256 MiB and at
// 1.05-1.10M with 16 MiB, whose blocks are recycled.
const ScanCacheBytes = 16 << 20

func (c *Config) setDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.FS == nil {
		c.FS = vfs.Default
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = 256 << 20
	}
	if c.MemTableBytes == 0 {
		c.MemTableBytes = 32 << 20
	}
	if c.MaxGroupEvents == 0 {
		c.MaxGroupEvents = 4096
	}
	if c.MaxGroupBytes == 0 {
		c.MaxGroupBytes = 4 << 20
	}
	if c.HeadCacheSize == 0 {
		c.HeadCacheSize = 1 << 14
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("pebble event store: Dir is required")
	case c.CacheBytes < 0 || c.MaxGroupEvents < 0 || c.MaxGroupBytes < 0 || c.HeadCacheSize < 0:
		return errors.New("pebble event store: sizes must not be negative")
	}
	return nil
}

// Stats counts what the store did since Open.
type Stats struct {
	Appends uint64 // acknowledged appends that stored events
	Events  uint64 // events stored
	Commits uint64 // group commits, each one synced Pebble batch (one WAL fsync)
	// CacheBytes is the block cache's configured size (Config.CacheBytes).
	CacheBytes int64
}

// Store is a durable event store. It is safe for concurrent use. Appends
// are serialised through the group committer; reads run concurrently and
// see only acknowledged (durable) appends.
type Store struct {
	cfg Config
	db  *pebble.DB
	log *slog.Logger

	// Queue of appends waiting for the committer.
	qmu     sync.Mutex
	queue   []*appendReq
	qclosed bool
	wake    chan struct{} // cap 1
	quit    chan struct{}
	stopped chan struct{} // closed when the committer has returned

	// Readers hold closeMu for reading while they touch db; Close takes it
	// for writing before closing db.
	closeMu   sync.RWMutex
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// Committed state, published after each durable group.
	head    atomic.Uint64 // position of the last durable event
	headMu  sync.Mutex
	moved   chan struct{} // closed and replaced when head moves or the store closes
	failure atomic.Pointer[error]

	appends, events, commits atomic.Uint64

	// filter holds every ID and head key written (nil: not loaded yet,
	// every lookup reads).
	filter *keyFilter

	// Held by whoever commits: the committer goroutine, or an appender
	// that found it idle (lead). It guards the fields below.
	commitMu   sync.Mutex
	globalHash event.Hash
	heads      *headCache
	group      []*appendReq
	tx         groupState
	active     float64       // recent concurrent appends (see gather)
	syncTime   time.Duration // moving average of a group's write+fsync
}

var (
	_ event.Store      = (*Store)(nil)
	_ event.HeadWaiter = (*Store)(nil)
)

type appendReq struct {
	ctx      context.Context
	stream   string
	expected event.ExpectedVersion
	events   []event.Proposed
	bytes    int
	done     chan appendResp
	replica  *replicaBatch // non-nil: an AppendReplicated (replica.go)
	replied  atomic.Bool
}

type appendResp struct {
	res event.AppendResult
	err error
}

func (r *appendReq) reply(res event.AppendResult, err error) {
	r.replied.Store(true)
	r.done <- appendResp{res, err}
}

// fatalError is what the Pebble logger's Fatalf panics with: Pebble calls
// Fatalf when a WAL write or sync fails and would otherwise exit the
// process. The committer recovers it and turns the store read-only; in
// Pebble's background goroutines it crashes the process (fail-stop).
type fatalError struct{ err error }

type pebbleLogger struct {
	log  *slog.Logger
	fail func(error)
}

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	err := fmt.Errorf("pebble: "+format, args...)
	l.log.Error(err.Error(), "component", "pebble", "fatal", true)
	l.fail(err)
	panic(fatalError{err})
}

// Open opens (or creates) the store in cfg.Dir and recovers the global head
// from the last stored event. It fails with event.ErrCorrupt if that event
// fails its checksum or disagrees with its stream's head. Stream heads are
// read from disk when first appended to, then cached.
func Open(cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:     cfg,
		log:     cfg.Logger,
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
		moved:   make(chan struct{}),
		heads:   newHeadCache(cfg.HeadCacheSize),
	}
	cache := pebble.NewCache(cfg.CacheBytes)
	defer cache.Unref() // Pebble holds its own reference
	opts := &pebble.Options{
		FS:                 cfg.FS,
		Cache:              cache,
		MemTableSize:       cfg.MemTableBytes,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{log: cfg.Logger, fail: s.fail},
	}
	for i := range opts.Levels {
		l := &opts.Levels[i]
		l.FilterPolicy = bloom.FilterPolicy(10)
		// MinLZ where it decodes faster than Snappy (amd64), else Snappy.
		l.Compression = func() *sstable.CompressionProfile { return sstable.FastestCompression }
		if i > 0 {
			// Below L0, 32 KiB data blocks: a scan of $all (audit
			// verify, catch-up) reads, allocates and caches 8x fewer
			// blocks per event, and they compress better; a point read
			// that misses the block cache decompresses 32 KiB instead of
			// 4. L0, the most recent data, keeps Pebble's 4 KiB. Tables
			// written before keep their blocks until compactions
			// rewrite them; every block says how it is compressed.
			l.BlockSize = 32 << 10
		}
	}
	if err := cfg.FS.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("open event store %s: %w", cfg.Dir, err)
	}
	db, err := pebble.Open(cfg.Dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open event store %s: %w", cfg.Dir, portErr(err))
	}
	s.db = db
	if s.filter, err = loadKeyFilter(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open event store %s: %w", cfg.Dir, portErr(err))
	}
	if err := s.recover(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open event store %s: %w", cfg.Dir, portErr(err))
	}
	go s.commitLoop()
	return s, nil
}

// recover checks the format and loads the global head and hash.
func (s *Store) recover() error {
	val, closer, err := s.db.Get(formatKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set(formatKey, seal([]byte{storeFormat}, 0, formatKey), pebble.Sync); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		p, err := unseal(formatKey, val)
		closer.Close()
		if err != nil {
			return err
		}
		if len(p) != 1 || p[0] != storeFormat {
			return fmt.Errorf("unsupported store format %v", p)
		}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindEvent}, UpperBound: []byte{kindEvent + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	if !it.Last() {
		return it.Error()
	}
	var e event.Envelope
	if err := decodeRecord(&e, it.Key(), it.Value()); err != nil {
		return err
	}
	h, found, err := s.loadHead(e.StreamID)
	if err != nil {
		return err
	}
	if !found || h.version != e.Version || h.position != e.Position || h.hash != e.Hash {
		return fmt.Errorf("%w: last event %d (%s v%d) is not its stream's head %+v", event.ErrCorrupt, e.Position, e.StreamID, e.Version, h)
	}
	s.head.Store(e.Position)
	s.globalHash = e.GlobalHash
	s.heads.put(e.StreamID, h)
	return nil
}

func (s *Store) loadHead(stream string) (streamHead, bool, error) {
	key := headKey(nil, stream)
	if !s.filter.mayHave(key) {
		return streamHead{}, false, nil
	}
	val, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return streamHead{}, false, nil
	}
	if err != nil {
		return streamHead{}, false, portErr(err)
	}
	defer closer.Close()
	h, err := decodeHead(key, val)
	return h, err == nil, err
}

func (s *Store) lookupID(key []byte) (idLoc, bool, error) {
	if !s.filter.mayHave(key) {
		return idLoc{}, false, nil
	}
	val, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return idLoc{}, false, nil
	}
	if err != nil {
		return idLoc{}, false, portErr(err)
	}
	defer closer.Close()
	l, err := decodeIDLoc(key, val)
	return l, err == nil, err
}

// fail makes the store read-only for good; the first cause is kept.
func (s *Store) fail(err error) {
	s.failure.CompareAndSwap(nil, &err)
}

func (s *Store) readOnly() error {
	if p := s.failure.Load(); p != nil {
		return fmt.Errorf("%w: %v", event.ErrReadOnly, *p)
	}
	return nil
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{Appends: s.appends.Load(), Events: s.events.Load(), Commits: s.commits.Load(), CacheBytes: s.cfg.CacheBytes}
}

// Append implements event.Appender: atomic, only if expected holds, and
// acknowledged only after an fsync. Errors: event.ErrInvalidAppend,
// *event.ConcurrencyError (errors.Is event.ErrWrongExpectedVersion),
// event.ErrIdempotencyConflict, event.ErrReadOnly (this or an earlier write
// failed; for the append whose write failed the outcome is unknown),
// event.ErrCorrupt, event.ErrClosed. A retry of a stored append returns the
// original result whatever expected says. If ctx ends while the append is
// queued or being written, Append returns ctx's error and the append may
// or may not be stored: retry with the same event IDs to find out.
func (s *Store) Append(ctx context.Context, stream string, expected event.ExpectedVersion, events []event.Proposed) (event.AppendResult, error) {
	if err := event.ValidateAppend(stream, events); err != nil {
		return event.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return event.AppendResult{}, err
	}
	if err := s.readOnly(); err != nil {
		return event.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	r := &appendReq{ctx: ctx, stream: stream, expected: expected, events: events, done: make(chan appendResp, 1)}
	for _, e := range events {
		r.bytes += len(e.Data) + 256
	}
	s.qmu.Lock()
	if s.qclosed {
		s.qmu.Unlock()
		return event.AppendResult{}, event.ErrClosed
	}
	s.queue = append(s.queue, r)
	s.qmu.Unlock()
	if s.commitMu.TryLock() {
		s.lead(r)
	} else {
		s.signal()
	}
	select {
	case resp := <-r.done:
		return resp.res, resp.err
	case <-ctx.Done():
		return event.AppendResult{}, fmt.Errorf("append %s: outcome unknown: %w", stream, ctx.Err())
	}
}

func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// lead runs group commits on the appender's own goroutine, holding
// commitMu, until r is decided; then it hands whatever is still queued to
// the committer goroutine. A lone writer thus commits without waking
// anyone: its only hand-offs are Pebble's own (to the WAL syncer and back).
func (s *Store) lead(r *appendReq) {
	for !r.replied.Load() {
		if s.closed.Load() { // Close ran while we waited for commitMu
			s.rejectQueued()
			break
		}
		s.gather()
		if !s.takeGroup() {
			break
		}
		s.commit()
	}
	s.commitMu.Unlock()
	if s.queued() > 0 {
		s.signal()
	}
}

// commitLoop is the committer goroutine: woken by appenders that found
// another goroutine committing, it commits everything queued.
func (s *Store) commitLoop() {
	defer close(s.stopped)
	for {
		select {
		case <-s.wake:
		case <-s.quit:
			return
		}
		s.commitMu.Lock()
		for {
			select {
			case <-s.quit:
				s.commitMu.Unlock()
				return
			default:
			}
			s.gather()
			if !s.takeGroup() {
				break
			}
			s.commit()
		}
		s.commitMu.Unlock()
	}
}

// rejectQueued fails every queued append with event.ErrClosed.
func (s *Store) rejectQueued() {
	s.qmu.Lock()
	rest := s.queue
	s.queue = nil
	s.qmu.Unlock()
	for _, r := range rest {
		r.reply(event.AppendResult{}, event.ErrClosed)
	}
}

// gather waits briefly for more appends before a group is taken, when
// fewer are queued than recently were active. Without it, 64 writers
// settle into two cohorts that alternate fsyncs (one fills the queue
// while the other's group syncs), halving the events per fsync. It waits
// at most half the recent fsync time (and never more than 1 ms), and not
// at all when few writers are active, so a lone writer pays nothing.
func (s *Store) gather() {
	if s.active < 4 {
		return
	}
	wait := min(s.syncTime/2, time.Millisecond)
	if wait <= 0 {
		return
	}
	var timer *time.Timer
	deadline := time.Now().Add(wait)
	for {
		queued := s.queued()
		if queued == 0 || float64(queued) >= 0.75*s.active {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		if timer == nil {
			timer = time.NewTimer(left)
			defer timer.Stop()
		} else {
			timer.Reset(left)
		}
		select {
		case <-s.wake:
		case <-timer.C:
			return
		case <-s.quit:
			return
		}
	}
}

func (s *Store) queued() int {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return len(s.queue)
}

// takeGroup moves the queued appends that fit in one group into s.group.
func (s *Store) takeGroup() bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	n, evs, bytes := 0, 0, 0
	for _, r := range s.queue {
		if n > 0 && (evs+len(r.events) > s.cfg.MaxGroupEvents || bytes+r.bytes > s.cfg.MaxGroupBytes) {
			break
		}
		n, evs, bytes = n+1, evs+len(r.events), bytes+r.bytes
	}
	s.group = append(s.group[:0], s.queue[:n]...)
	rest := copy(s.queue, s.queue[n:])
	clear(s.queue[rest:])
	s.queue = s.queue[:rest]
	return n > 0
}

// groupState is what one group commit has decided but not yet made
// durable: heads, positions and IDs of its appends.
type groupState struct {
	pos        uint64
	globalHash event.Hash
	now        time.Time
	heads      map[string]streamHead
	ids        map[string]idLoc
	waiting    []waiting
	buf, key   []byte
	events     uint64
	appends    uint64
}

type waiting struct {
	r   *appendReq
	res event.AppendResult
}

// commit decides, writes, syncs and acknowledges s.group.
func (s *Store) commit() {
	group := s.group
	defer clear(group)
	if err := s.readOnly(); err != nil {
		for _, r := range group {
			r.reply(event.AppendResult{}, fmt.Errorf("append %s: %w", r.stream, err))
		}
		return
	}
	tx := &s.tx
	tx.pos, tx.globalHash, tx.now = s.head.Load(), s.globalHash, s.cfg.Now().UTC().Round(0)
	if tx.heads == nil {
		tx.heads, tx.ids = map[string]streamHead{}, map[string]idLoc{}
	}
	clear(tx.heads)
	clear(tx.ids)
	tx.waiting, tx.events, tx.appends = tx.waiting[:0], 0, 0
	b := s.db.NewBatch()
	defer b.Close()
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.reply(event.AppendResult{}, err)
			continue
		}
		res, pending, err := s.prepare(b, tx, r)
		if err != nil || !pending {
			r.reply(res, err)
			continue
		}
		tx.waiting = append(tx.waiting, waiting{r, res})
	}
	if len(tx.waiting) == 0 {
		return
	}
	started := time.Now()
	err := s.apply(b)
	s.syncTime = (9*s.syncTime + time.Since(started)) / 10
	if err != nil {
		s.fail(err)
		for _, w := range tx.waiting {
			w.r.reply(event.AppendResult{}, fmt.Errorf("append %s: %w: write failed, the append may or may not be durable: %v", w.r.stream, event.ErrReadOnly, err))
		}
		return
	}
	for stream, h := range tx.heads {
		s.heads.put(stream, h)
	}
	s.globalHash = tx.globalHash
	s.appends.Add(tx.appends)
	s.events.Add(tx.events)
	s.commits.Add(1)
	s.publishHead(tx.pos)
	// Writers active now: those in this group and those that queued while
	// it synced. The estimate decays so gather stops waiting for writers
	// that left.
	s.active = max(float64(len(tx.waiting)+s.queued()), s.active*0.97)
	for _, w := range tx.waiting {
		w.r.reply(w.res, nil)
	}
	clear(tx.waiting)
}

// apply writes b with Sync, turning Pebble's fatal-error panic into an error.
func (s *Store) apply(b *pebble.Batch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = f.err
		}
	}()
	if err := s.db.Apply(b, pebble.Sync); err != nil {
		return err
	}
	// Pebble may have reported a fatal error without failing this call.
	if p := s.failure.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *Store) publishHead(pos uint64) {
	s.headMu.Lock()
	s.head.Store(pos)
	close(s.moved)
	s.moved = make(chan struct{})
	s.headMu.Unlock()
}

// prepare decides one append of the group and adds it to b. pending says
// whether its outcome waits for b's sync (false: res/err are final now).
func (s *Store) prepare(b *pebble.Batch, tx *groupState, r *appendReq) (res event.AppendResult, pending bool, err error) {
	if r.replica != nil {
		return s.prepareReplicas(b, tx, r)
	}
	res, retry, pending, err := s.retried(tx, r)
	if err != nil || retry {
		return res, pending, err
	}
	h, err := s.streamHead(tx, r.stream)
	if err != nil {
		return event.AppendResult{}, false, fmt.Errorf("append %s: %w", r.stream, err)
	}
	if !r.expected.Holds(h.version) {
		return event.AppendResult{}, false, &event.ConcurrencyError{Stream: r.stream, Expected: r.expected, Actual: h.version}
	}
	res = event.AppendResult{FirstVersion: h.version + 1, FirstPosition: tx.pos + 1}
	for _, p := range r.events {
		tx.pos++
		e := event.Envelope{
			ID:            p.ID,
			StreamID:      r.stream,
			Type:          p.Type,
			SchemaVersion: p.SchemaVersion,
			Data:          p.Data,
			Metadata:      p.Metadata,
			RecordedAt:    tx.now,
			Version:       h.version + 1,
			Position:      tx.pos,
		}
		event.Seal(&e, h.hash, tx.globalHash)
		h = streamHead{version: e.Version, position: e.Position, hash: e.Hash}
		tx.globalHash = e.GlobalHash

		tx.key = eventKey(tx.key[:0], e.Position)
		tx.buf = appendRecord(tx.buf[:0], tx.key, &e)
		if err := b.Set(tx.key, tx.buf, nil); err != nil {
			return event.AppendResult{}, false, err
		}
		tx.key = streamKey(tx.key[:0], r.stream, e.Version)
		tx.buf = appendPosition(tx.buf[:0], tx.key, e.Position)
		if err := b.Set(tx.key, tx.buf, nil); err != nil {
			return event.AppendResult{}, false, err
		}
		loc := idLoc{position: e.Position, version: e.Version, stream: r.stream}
		tx.key = idKey(tx.key[:0], e.ID)
		tx.buf = appendIDLoc(tx.buf[:0], tx.key, loc)
		if err := b.Set(tx.key, tx.buf, nil); err != nil {
			return event.AppendResult{}, false, err
		}
		s.filter.add(tx.key)
		tx.ids[e.ID] = loc
	}
	tx.key = headKey(tx.key[:0], r.stream)
	tx.buf = appendHead(tx.buf[:0], tx.key, h)
	if err := b.Set(tx.key, tx.buf, nil); err != nil {
		return event.AppendResult{}, false, err
	}
	s.filter.add(tx.key)
	tx.heads[r.stream] = h
	tx.appends++
	tx.events += uint64(len(r.events))
	res.LastVersion, res.LastPosition = h.version, h.position
	return res, true, nil
}

// retried checks r's event IDs against the store and the group so far.
// retry: all were stored consecutively in r's stream (res is where);
// pending: some of them are in this group, not yet durable.
func (s *Store) retried(tx *groupState, r *appendReq) (res event.AppendResult, retry, pending bool, err error) {
	found := 0
	var first idLoc
	for i, p := range r.events {
		loc, ok := tx.ids[p.ID]
		if ok {
			pending = true
		} else {
			tx.key = idKey(tx.key[:0], p.ID)
			if loc, ok, err = s.lookupID(tx.key); err != nil {
				return event.AppendResult{}, false, false, fmt.Errorf("append %s: %w", r.stream, err)
			}
		}
		if !ok {
			if found > 0 {
				break
			}
			continue
		}
		found++
		if i == 0 {
			first = loc
			res.FirstVersion, res.FirstPosition = loc.version, loc.position
		}
		if found != i+1 || loc.stream != r.stream || loc.version != first.version+uint64(i) {
			return event.AppendResult{}, false, false, fmt.Errorf("append %s: %w: event %s is stored in %s at version %d",
				r.stream, event.ErrIdempotencyConflict, p.ID, loc.stream, loc.version)
		}
		res.LastVersion, res.LastPosition = loc.version, loc.position
	}
	switch {
	case found == 0:
		return event.AppendResult{}, false, false, nil
	case found < len(r.events):
		return event.AppendResult{}, false, false, fmt.Errorf("append %s: %w: %d of %d event IDs are stored",
			r.stream, event.ErrIdempotencyConflict, found, len(r.events))
	}
	return res, true, pending, nil
}

// streamHead returns stream's head as this group sees it.
func (s *Store) streamHead(tx *groupState, stream string) (streamHead, error) {
	if h, ok := tx.heads[stream]; ok {
		return h, nil
	}
	if h, ok := s.heads.get(stream); ok {
		return h, nil
	}
	h, _, err := s.loadHead(stream)
	if err != nil {
		return streamHead{}, err
	}
	if h.position > s.head.Load() {
		return streamHead{}, fmt.Errorf("%w: head of %s at position %d beyond the log's head %d", event.ErrCorrupt, stream, h.position, s.head.Load())
	}
	return h, nil
}

// Compact flushes and compacts the whole store, and returns when it is
// done: the layout a long-lived store settles into, without the
// compaction debt a bulk load leaves behind (which Pebble would otherwise
// work off beside whatever runs next). For benchmarks and tools; a
// running store compacts by itself.
func (s *Store) Compact(ctx context.Context) error {
	return s.reading(ctx, func() error {
		if err := s.db.Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
			return fmt.Errorf("compact event store: %w", err)
		}
		return nil
	})
}

// Close lets the group being written finish (its appends are acknowledged
// or fail as usual), fails appends still queued with event.ErrClosed, waits
// for reads in flight and closes Pebble. Every later call returns
// event.ErrClosed; Close is idempotent and returns the first close error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.qmu.Lock()
		s.qclosed = true
		s.qmu.Unlock()
		close(s.quit)
		<-s.stopped
		s.commitMu.Lock() // wait for a leading appender's group
		s.rejectQueued()

		s.closeMu.Lock()
		s.closed.Store(true)
		s.closeErr = s.closeDB()
		s.closeMu.Unlock()
		s.commitMu.Unlock()

		s.headMu.Lock()
		close(s.moved)
		s.headMu.Unlock()
	})
	return s.closeErr
}

func (s *Store) closeDB() (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = f.err
		}
	}()
	err = s.db.Close()
	if err != nil && s.failure.Load() != nil {
		// Closing a store that already failed reports the same failure
		// again (the WAL cannot be synced); the caller knows.
		return nil
	}
	if err != nil {
		return fmt.Errorf("close event store: %w", err)
	}
	return nil
}
