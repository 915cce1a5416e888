// Package sqlstore is an event.Store on PostgreSQL through pgx/v5 and
// cockroach-go/v2. CockroachDB is not supported yet: it has no LOCK TABLE
// (see below for what would replace it there).
//
// # Schema
//
// Migrate creates four tables in the connection's current schema (set
// search_path in the DSN to choose one):
//
//   - eventstore_events: one row per event, position is the primary key;
//     event_id is UNIQUE and (stream_id, version) is UNIQUE. Data is BYTEA,
//     stored and hashed byte for byte; recorded_at_ns keeps nanoseconds
//     (timestamptz keeps microseconds and the hash covers nanoseconds).
//   - eventstore_streams: per stream the head version and last stream hash.
//   - eventstore_head: a single row, the global head position and the
//     global hash of the event there.
//   - eventstore_append_lock: an empty table that is only ever locked.
//
// # Global positions readers never see out of order
//
// Every append runs in one SERIALIZABLE transaction that first takes
// LOCK TABLE eventstore_append_lock IN EXCLUSIVE MODE, then reads the
// single eventstore_head row, writes positions head+1..head+n and moves
// the head. The lock is held until COMMIT returns, so appends commit one
// after another in position order: the transaction that writes p+1 cannot
// read the head until the one that wrote p has committed (PostgreSQL makes a
// commit visible before it releases its locks). Positions are therefore
// gapless (an aborted append rolls the head back with its rows) and any
// snapshot that sees p+1 sees p: a reader's single SELECT ... ORDER BY
// position is always a prefix of the log, never a log with a hole.
//
// The lock is a liveness measure, not the correctness argument:
// SERIALIZABLE alone already rejects any interleaving that could reuse or
// reorder positions. Measured here without it (64 writers, PostgreSQL 15):
// reading the head row and inserting p+1 lets two appenders clash on the
// events primary key, which PostgreSQL reports as 23505 (not 40001, since
// neither read that key), so appends fail instead of retrying; locking the
// head row first (SELECT ... FOR UPDATE, the textbook method) turns every
// waiter into a 40001 when the holder commits, and under 64 independent
// writers some appends exhausted 50 whole-transaction retries. LOCK TABLE
// takes no snapshot, so a SERIALIZABLE transaction that begins with it sees
// everything committed before it got the lock and never fails on the head.
// The lock lives on a table nobody writes, so autovacuum never holds it;
// readers take no lock that conflicts with EXCLUSIVE. On CockroachDB the
// head-row method (SELECT ... FOR UPDATE first) is the one to use, as it
// refreshes a waiter's timestamp instead of failing it (not built or tested
// here).
//
// The price is one append transaction at a time per database: throughput is
// bounded by round trips plus one WAL flush per transaction. Two things
// recover most of it: a process runs at most two append transactions at once
// (one holding the lock, one queued with BEGIN done; more only add lock
// hand-overs), and with Config.GroupCommit one committer goroutine puts every
// append waiting in one transaction (one lock, one flush), each still
// decided and answered on its own. A sequence plus a "visible up to"
// watermark would let transactions commit concurrently, but publishing the
// watermark in order needs its own serialisation point, so it was not
// pursued.
//
// # Retries
//
// Each append is one whole transaction retried by crdb.ExecuteCtx around
// pgx.BeginTxFunc: a serialization failure (40001), including one raised at
// COMMIT, re-runs everything from BEGIN. Never use cockroach-go's savepoint
// helpers (crdbpgx.ExecuteTx) on PostgreSQL: they retry inside the same
// transaction and silently lose a write that fails at COMMIT. The closure
// does database work only. A connection failure while COMMIT was in flight
// leaves the outcome unknown; Append then retries the whole append, which
// is safe because a committed first try is recognised by its event IDs and
// returns the original result.
//
// Vendor errors never leave the package: they are translated to the
// event port errors or flattened into plain errors.
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/livecore/livecore/domain/event"
)

// Config configures a Store.
type Config struct {
	// DSN is a PostgreSQL connection string (URL or key=value). Required.
	// Put search_path in it to choose the schema.
	DSN string
	// MaxConns caps the connection pool. Default 16. Appends run one at a
	// time anyway (see the package doc); extra connections serve readers.
	MaxConns int32
	// Now stamps RecordedAt. Default time.Now.
	Now func() time.Time
	// PollInterval bounds how long WaitHead sleeps between head checks when
	// no notification arrives (LISTEN/NOTIFY normally wakes it at once).
	// Default 250ms.
	PollInterval time.Duration
	// MaxRetries caps whole-transaction retries after serialization
	// failures. Default 50.
	MaxRetries int
	// GroupCommit makes concurrent Appends share transactions: one
	// committer goroutine takes every append waiting and commits them
	// together (one lock, one WAL flush), each still checked and answered
	// on its own. Off, each Append is its own transaction.
	GroupCommit bool
	// MaxGroupEvents bounds the events of one group commit (a single larger
	// append still commits alone). Default 2000.
	MaxGroupEvents int
}

func (c *Config) setDefaults() {
	if c.MaxConns == 0 {
		c.MaxConns = 16
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PollInterval == 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 50
	}
	if c.MaxGroupEvents == 0 {
		c.MaxGroupEvents = 2000
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.DSN == "":
		return errors.New("sqlstore: DSN is required")
	case c.MaxConns < 2:
		return fmt.Errorf("sqlstore: MaxConns %d: need at least 2", c.MaxConns)
	case c.PollInterval < 0:
		return fmt.Errorf("sqlstore: negative PollInterval %s", c.PollInterval)
	case c.MaxRetries < 0:
		return fmt.Errorf("sqlstore: negative MaxRetries %d", c.MaxRetries)
	case c.MaxGroupEvents < 1:
		return fmt.Errorf("sqlstore: MaxGroupEvents %d: need at least 1", c.MaxGroupEvents)
	}
	return nil
}

// Store is an event store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	cfg     Config
	pool    *pgxpool.Pool
	channel string // LISTEN/NOTIFY channel of this schema

	closed    atomic.Bool
	done      chan struct{}
	closeOnce sync.Once
	stop      context.CancelFunc
	listening sync.WaitGroup

	moved      waker
	appending  chan struct{}   // semaphore of in-flight append transactions
	queue      chan *appendReq // to the group committer (unbuffered)
	committing sync.WaitGroup
}

var (
	_ event.Store      = (*Store)(nil)
	_ event.HeadWaiter = (*Store)(nil)
)

// Open connects to PostgreSQL and returns a Store. It does not create the
// schema: call Migrate once (it is idempotent). ctx bounds the connection
// attempt only; the store's background listener lives until Close.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: parse DSN: %s", flatten(err))
	}
	pcfg.MaxConns = cfg.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open pool: %s", flatten(err))
	}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT coalesce(current_schema(), 'public')`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("sqlstore: connect: %s", flatten(err))
	}
	s := &Store{
		cfg:       cfg,
		pool:      pool,
		channel:   notifyChannel(schema),
		done:      make(chan struct{}),
		moved:     newWaker(),
		appending: make(chan struct{}, 2),
		queue:     make(chan *appendReq),
	}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	s.listening.Add(1)
	go s.listen(lctx, pcfg.ConnConfig.Copy())
	if cfg.GroupCommit {
		s.committing.Add(1)
		go s.committer(lctx)
	}
	return s, nil
}

// Close stops the listener and closes the pool, waiting for in-flight
// calls to release their connections. Later calls return event.ErrClosed;
// WaitHead and SubscribeAll in progress return event.ErrClosed. Close is
// idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.committing.Wait() // lets the group in flight commit and answer
		s.stop()
		s.listening.Wait()
		s.pool.Close()
	})
	return nil
}

func (s *Store) isClosed() bool { return s.closed.Load() }

const migration = `
CREATE TABLE IF NOT EXISTS eventstore_events (
	position         BIGINT PRIMARY KEY CHECK (position > 0),
	stream_id        TEXT   NOT NULL,
	version          BIGINT NOT NULL CHECK (version > 0),
	event_id         TEXT   NOT NULL UNIQUE,
	type             TEXT   NOT NULL,
	schema_version   INT    NOT NULL,
	data             BYTEA  NOT NULL,
	tenant           TEXT   NOT NULL,
	correlation_id   TEXT   NOT NULL,
	causation_id     TEXT   NOT NULL,
	actor            TEXT   NOT NULL,
	region           TEXT   NOT NULL,
	recorded_at_ns   BIGINT NOT NULL,
	prev_hash        BYTEA  NOT NULL,
	hash             BYTEA  NOT NULL,
	prev_global_hash BYTEA  NOT NULL,
	global_hash      BYTEA  NOT NULL,
	UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS eventstore_streams (
	stream_id TEXT   PRIMARY KEY,
	version   BIGINT NOT NULL,
	last_hash BYTEA  NOT NULL
);
CREATE TABLE IF NOT EXISTS eventstore_head (
	id          BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
	position    BIGINT  NOT NULL,
	global_hash BYTEA   NOT NULL
);
INSERT INTO eventstore_head (id, position, global_hash)
	VALUES (true, 0, '\x0000000000000000000000000000000000000000000000000000000000000000')
	ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS eventstore_append_lock ();
`

// Migrate creates the schema if it is missing. It is idempotent and safe to
// run from several processes at once (they serialise on an advisory lock).
func (s *Store) Migrate(ctx context.Context) error {
	if s.isClosed() {
		return event.ErrClosed
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7305871234501)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, migration)
		return err
	})
	return s.translate("migrate", err)
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
