// Package projections turns the event log into SQL read models: named,
// versioned projections over $all whose every batch of changes commits in
// one transaction with the projection's checkpoint, so each event is applied
// exactly once however often the projector is killed. The same SQL runs on
// SQLite (embedded default, modernc.org/sqlite) and PostgreSQL/CockroachDB
// (pgx): $n placeholders, INSERT ... ON CONFLICT, BIGINT and TEXT only, and
// money as integer minor units (SQLite's NUMERIC is a float). Only the
// batch writes and key reads of Save and Load differ: multi-row VALUES and
// IN lists on SQLite, one unnest(...) and one = ANY(...) of array
// parameters on PostgreSQL.
package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // driver "sqlite"
)

// Dialect names the SQL engine behind a DB.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is a read-model database. Queries go through the embedded *sql.DB;
// projection writes go through InTx. On SQLite these are two pools over one
// file (WAL lets readers run beside the single writer).
type DB struct {
	*sql.DB
	Dialect Dialect
	w       *sql.DB
	stmts   *stmtCache // SQLite only (pgx caches prepared statements itself)
	// turn orders writers on SQLite's one writer connection first come,
	// first served (database/sql hands a freed connection to a random
	// waiter): projections catching up then take turns and stay in step,
	// so they share the batches they read and the events they decode.
	turn chan struct{}
	// retries counts transactions InTx tried again after a serialization
	// failure (PostgreSQL).
	retries atomic.Int64
	// unsynced is the marker and pacer of a SQLite writer without fsync
	// (SQLiteOptions.Unsynced), nil otherwise.
	unsynced *unsyncedGuard
}

// Retries is how many times InTx retried a transaction after a
// serialization failure since the DB was opened.
func (db *DB) Retries() int64 { return db.retries.Load() }

// OpenSQLite opens (creating) a SQLite file in WAL mode, synced:
// OpenSQLiteWith with no options.
func OpenSQLite(path string) (*DB, error) { return OpenSQLiteWith(path, SQLiteOptions{}) }

// OpenSQLiteWith opens (creating) a SQLite file in WAL mode. SQLite has
// one writer at a time, so the pool writes through one connection.
// Statement journals stay in memory (temp_store): a multi-row upsert keeps
// one to undo itself if it fails half-way, and in a file that cost two
// write system calls per page it changed, about a third of the live
// projector's work. See SQLiteOptions.Unsynced for the writer's fsyncs.
func OpenSQLiteWith(path string, o SQLiteOptions) (*DB, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := checkMarker(path, o, log); err != nil {
		return nil, err
	}
	var guard *unsyncedGuard
	if o.Unsynced {
		var err error
		if guard, err = startUnsynced(path); err != nil {
			return nil, err
		}
	}
	synchronous := "NORMAL"
	if guard != nil {
		synchronous = "OFF"
	}
	fail := func(err error) (*DB, error) {
		if guard != nil {
			_ = guard.close(err) // keeps the marker: SQLite may have written
		}
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(" + synchronous + ")&_pragma=temp_store(MEMORY)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fail(err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return fail(err)
	}
	r, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		db.Close()
		return fail(err)
	}
	r.SetMaxOpenConns(4)
	return &DB{DB: r, Dialect: SQLite, w: db, stmts: &stmtCache{ready: map[string]*sql.Stmt{}, wanted: map[string]bool{}}, turn: make(chan struct{}, 1), unsynced: guard}, nil
}

// OpenPostgres opens a PostgreSQL or CockroachDB database by DSN: a pool
// for readers and one for the projections' transactions.
//
// Sessions plan every statement for its parameters (plan_cache_mode =
// force_custom_plan): pgx prepares each statement once per connection, and
// PostgreSQL would otherwise settle on a generic plan after five runs. A
// read-model table is often empty then (a new generation), so the generic
// plan of a key lookup (col = ANY($1)) was a sequential scan comparing
// every row with every key, kept while the table grew: 15 ms a lookup
// instead of well under one.
//
// The writers' sessions also avoid sequential scans (enable_seqscan =
// off). Under SERIALIZABLE a sequential scan takes a predicate lock on the
// whole table; projections share one table, lc_checkpoints, whose few rows
// PostgreSQL would rather scan than look up. Each projection's checkpoint
// update then "read" every other projection's checkpoint, and concurrent
// projections failed each other with serialization failures in storms (a
// projection that lost 50 times in a row stopped the runner). With index
// lookups each reads only its own row.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	open := func(params map[string]string) (*sql.DB, error) {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		for k, v := range params {
			if _, set := cfg.RuntimeParams[k]; !set {
				cfg.RuntimeParams[k] = v
			}
		}
		db := stdlib.OpenDB(*cfg)
		db.SetMaxOpenConns(16)
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		return db, nil
	}
	r, err := open(map[string]string{"plan_cache_mode": "force_custom_plan"})
	if err != nil {
		return nil, err
	}
	w, err := open(map[string]string{"plan_cache_mode": "force_custom_plan", "enable_seqscan": "off"})
	if err != nil {
		r.Close()
		return nil, err
	}
	return &DB{DB: r, Dialect: Postgres, w: w}, nil
}

// pgMaxAttempts bounds how often InTx tries a transaction that keeps
// failing with serialization failures (cockroach-go's default is 50, tried
// back to back).
const pgMaxAttempts = 1000

// InTx runs fn in a serializable transaction and commits it. On PostgreSQL a
// serialization failure (SQLSTATE 40001), including one raised at COMMIT,
// retries the WHOLE transaction (crdb.ExecuteCtx around a fresh BEGIN); it
// never uses cockroach-go's savepoint helpers, which on PostgreSQL retry
// inside the failed snapshot and swallow a commit-time failure. Retries
// wait a little, growing and jittered, so that a long transaction is not
// starved by short ones. fn must do database work only: it may run several
// times.
func (db *DB) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if db.Dialect == SQLite {
		return db.sqliteTx(ctx, fn)
	}
	attempt := 0
	return crdb.ExecuteCtx(crdb.WithMaxRetries(ctx, pgMaxAttempts), func(ctx context.Context, _ ...any) error {
		if attempt > 0 {
			db.retries.Add(1)
			wait := time.Duration(rand.Int64N(int64(min(attempt, 20)) * int64(time.Millisecond)))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		attempt++
		tx, err := db.w.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// sqliteTx runs fn once; a busy database (another process holding the write
// lock past busy_timeout) is retried a few times.
func (db *DB) sqliteTx(ctx context.Context, fn func(*sql.Tx) error) error {
	select { // blocked senders are served in FIFO order
	case db.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-db.turn }()
	db.stmts.prepareWanted(ctx, db.w)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var tx *sql.Tx
		if tx, err = db.w.BeginTx(ctx, nil); err == nil {
			if err = fn(tx); err == nil {
				err = tx.Commit()
				if err == nil {
					return nil
				}
			} else {
				_ = tx.Rollback()
			}
		}
		if !isSQLiteBusy(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		}
	}
	return err
}

func isSQLiteBusy(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked"))
}

// Close closes both pools. An unsynced writer's database is then synced
// and its marker removed (SQLiteOptions.Unsynced).
func (db *DB) Close() error {
	db.stmts.close()
	err := db.DB.Close()
	if db.w != db.DB {
		err = errors.Join(err, db.w.Close())
	}
	if db.unsynced != nil {
		err = errors.Join(err, db.unsynced.close(err))
	}
	return err
}

// ErrNotFound is returned by read-model queries for a missing row.
var ErrNotFound = errors.New("not found")

// stmtCache keeps the statements projection batches run on SQLite
// prepared on its one writer connection, so a batch does not parse its
// (multi-row) statements again: parsing was a fifth of the time the writer
// connection was busy. A statement is prepared outside any transaction
// (preparing on the pool inside one would wait for the connection the
// transaction holds): the first transaction to run a text runs it
// unprepared and notes it; the next one prepares it before it begins.
// database/sql then reuses the prepared statement in every transaction on
// the connection (Tx.StmtContext). Texts repeat because Save and Load use
// statements of power-of-two row counts.
type stmtCache struct {
	mu     sync.Mutex
	ready  map[string]*sql.Stmt
	wanted map[string]bool
}

// maxStmts bounds the cache (a generation's tables have a few hundred texts).
const maxStmts = 2048

// get returns query's prepared statement, or nil after noting it.
func (c *stmtCache) get(query string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.ready[query]; s != nil {
		return s
	}
	if len(c.ready)+len(c.wanted) < maxStmts {
		c.wanted[query] = true
	}
	return nil
}

// prepareWanted prepares the noted statements. One that fails to prepare
// (its table was dropped since) is forgotten: it runs unprepared if ever
// run again.
func (c *stmtCache) prepareWanted(ctx context.Context, db *sql.DB) {
	if c == nil {
		return
	}
	c.mu.Lock()
	var todo []string
	for q := range c.wanted {
		todo = append(todo, q)
	}
	clear(c.wanted)
	c.mu.Unlock()
	for _, q := range todo {
		s, err := db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if c.ready[q] == nil {
			c.ready[q], s = s, nil
		}
		c.mu.Unlock()
		if s != nil {
			s.Close()
		}
	}
}

func (c *stmtCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, s := range c.ready {
		s.Close()
		delete(c.ready, q)
	}
}
