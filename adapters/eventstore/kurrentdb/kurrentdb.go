// Package kurrentdb is an event.Store on KurrentDB / EventStoreDB through
// github.com/EventStore/EventStore-Client-Go/v4/esdb (never import
// KurrentDB-Client-Go next to it: the two clash at start-up).
//
// # Streams and versions
//
// A livecore stream is the ESDB stream Namespace+stream. Our 1-based
// Version v is ESDB revision v-1. Expectations map one to one (mapExpected):
// Any, NoStream, StreamExists, Exact(v) <-> Revision(v-1). Append checks the
// caller's expectation against the stream's last event and then sends ESDB
// the exact revision it read (NoStream for a new stream), never Any or
// StreamExists: each event's stream hash chains to its predecessor's, so the
// append must land exactly after the event whose hash it used. When ESDB
// answers WrongExpectedVersion, Append re-reads and retries only if the
// caller's expectation still holds (Any, StreamExists); otherwise it returns
// *event.ConcurrencyError with the actual version.
//
// # Metadata and hashes
//
// The ESDB event ID is the livecore event ID when that is a canonical UUID
// (event.DeriveID makes those), else a name-based UUID with the original ID
// in the metadata. The metadata JSON carries tenant, actor, region,
// "$correlationId", "$causationId", schema version, RecordedAt in
// nanoseconds, and the stream chain (prev_hash, hash). Data is written byte
// for byte (content type JSON when it is valid JSON).
//
// # Global positions
//
// ESDB's $all positions are commit/prepare byte offsets, not the contiguous
// 1-based counter event.Envelope.Position promises, and ESDB assigns the
// place in $all only at commit, so a position cannot be written into the
// event. The adapter therefore defines Position as the ordinal of the event
// among the livecore events of its Namespace in $all order: system events,
// other namespaces and other applications' events are skipped. $all order is
// ESDB's commit order, one append's events are adjacent in it, and it never
// changes (livecore never deletes or scavenges streams), so the ordinal is
// contiguous, gapless, the same in every process, and a reader never sees
// p+1 before p. The global hash chain is computed over that order from the
// stored stream hashes: GlobalHash(p) = GlobalChainHash(GlobalHash(p-1), p,
// Hash(p)). It cannot be stored (the position is unknown when the event is
// written), so it proves order and completeness relative to $all, while the
// stored stream hashes prove content.
//
// Each Store keeps an in-memory index of its namespace (per event: $all
// position, stream, version, global hash; and event ID -> position), built
// by reading $all forward from the start on first use and caught up before
// every Head, ReadAll and Append. Cost: one full $all scan at start-up and
// about 100 bytes of memory per event; past tens of millions of events the
// index should be persisted (not done).
//
// # Idempotency
//
// ESDB deduplicates a repeated append only within its own window and only
// per stream; the Appender contract needs more (the same IDs in another
// stream, partial overlaps, retries after the stream moved on). Append looks
// the proposed IDs up in the index first and answers retries and conflicts
// itself. After an ambiguous failure (unavailable, deadline, aborted) it
// resends the identical request (same IDs, same bytes, same expected
// revision), which ESDB treats as a no-op if the first one committed; if
// that retry reports WrongExpectedVersion, the read-back check (index caught
// up, IDs looked up) returns the original result when the IDs are there
// consecutively in the stream.
package kurrentdb

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/livecore/livecore/domain/event"
)

// Config configures a Store.
type Config struct {
	// URL is an ESDB connection string: "esdb://host:2113?tls=false", or
	// "esdb+discover://..." for a cluster. Required. Reading $all needs a
	// user allowed to (admin/ops by default), given in the URL.
	URL string
	// Namespace prefixes every stream name in ESDB, so several livecore
	// stores (environments, tests) share one database; positions count
	// only events in the namespace. Default "" (no prefix). Must not
	// start with "$".
	Namespace string
	// Now stamps RecordedAt. Default time.Now.
	Now func() time.Time
	// PollInterval is how often WaitHead re-reads $all when nothing was
	// appended through this Store. Default 100ms.
	PollInterval time.Duration
	// ReadBatch is the page size of $all and stream reads. Default 1000.
	ReadBatch int
	// MaxAppendTries caps the tries of one Append (re-reads after a
	// concurrent writer, resends after an ambiguous failure). Default 20.
	MaxAppendTries int
	// Deadline is the gRPC deadline of each request. Default 10s.
	Deadline time.Duration
}

func (c *Config) setDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PollInterval == 0 {
		c.PollInterval = 100 * time.Millisecond
	}
	if c.ReadBatch == 0 {
		c.ReadBatch = 1000
	}
	if c.MaxAppendTries == 0 {
		c.MaxAppendTries = 20
	}
	if c.Deadline == 0 {
		c.Deadline = 10 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("kurrentdb: URL is required")
	case len(c.Namespace) > 0 && c.Namespace[0] == '$':
		return fmt.Errorf("kurrentdb: namespace %q: $ is reserved for system streams", c.Namespace)
	case c.PollInterval < 0 || c.ReadBatch < 1 || c.MaxAppendTries < 1 || c.Deadline < 0:
		return fmt.Errorf("kurrentdb: PollInterval %s, ReadBatch %d, MaxAppendTries %d, Deadline %s: out of range",
			c.PollInterval, c.ReadBatch, c.MaxAppendTries, c.Deadline)
	}
	return nil
}

// Store is an event store on KurrentDB/EventStoreDB. It is safe for
// concurrent use.
type Store struct {
	cfg Config
	be  backend
	idx index

	closed    atomic.Bool
	done      chan struct{}
	closeOnce sync.Once
	moved     waker
}

var (
	_ event.Store      = (*Store)(nil)
	_ event.HeadWaiter = (*Store)(nil)
)

// Open returns a Store for cfg.URL. The client connects lazily: the first
// call that needs the server reports an unreachable one.
func Open(cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ecfg, err := esdb.ParseConnectionString(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: parse URL: %s", err.Error())
	}
	ecfg.Logger = esdb.NoopLogging() // failures reach callers as errors; no console noise
	client, err := esdb.NewClient(ecfg)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: client: %s", err.Error())
	}
	d := cfg.Deadline
	return newStore(cfg, &esdbBackend{client: client, deadline: &d}), nil
}

func newStore(cfg Config, be backend) *Store {
	return &Store{cfg: cfg, be: be, idx: newIndex(), done: make(chan struct{}), moved: newWaker()}
}

// Close closes the client. Later calls return event.ErrClosed; WaitHead and
// SubscribeAll in progress return event.ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		err = s.be.close()
	})
	return err
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return event.ErrClosed
	}
	return nil
}

// port turns a backend error into what callers may see.
func (s *Store) port(op string, err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", op, event.ErrClosed)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// waker lets any number of goroutines wait for the next "something moved".
type waker struct {
	mu sync.Mutex
	ch chan struct{}
}

func newWaker() waker { return waker{ch: make(chan struct{})} }

func (w *waker) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

func (w *waker) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.ch)
	w.ch = make(chan struct{})
}
