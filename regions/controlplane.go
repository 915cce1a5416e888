package regions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"
)

// The control plane is a small SQL database every region reaches:
// CockroachDB in production (multi-region, serializable), PostgreSQL in
// tests, a SQLite file for a single machine (the drill's default). It holds
// two tables:
//
//	lc_region_homes   one row per home: current epoch, owner, state, and the
//	                  lease (holder, expiry in the database's clock)
//	lc_region_epochs  one row per (home, epoch): owner, start and end (cut)
//	                  positions in the owner's $all, why it began, when
//
// Every change runs in one serializable transaction retried whole on a
// serialization failure (crdb.ExecuteCtx around BeginTx/Commit: never
// cockroach-go's savepoint helpers, which lose writes on PostgreSQL). Times
// are the database's clock in Unix milliseconds, so nodes' clocks never
// decide who owns what.

// Home states.
const (
	// StateActive: the owner may take and renew the lease.
	StateActive = "active"
	// StateReleased: the owner drained and released the home (planned
	// failover); it may not take the lease again; the epoch ends.
	StateReleased = "released"
	// StatePending: a new epoch was assigned to a new owner, which may not
	// take the lease until the failover activates it (after the cut is set
	// and the new owner has caught up).
	StatePending = "pending"
)

// Errors of the control plane.
var (
	// ErrStale: a compare-and-set found another epoch, owner, holder or
	// state than expected (someone else moved first). The current row is in
	// the message.
	ErrStale = errors.New("ownership changed")
	// ErrLeaseHeld: a forced transfer found the owner's lease still valid.
	ErrLeaseHeld = errors.New("owner's lease has not expired")
	// ErrUnknownHome: no such home in the control plane.
	ErrUnknownHome = errors.New("unknown home")
)

// Ownership is one home's row.
type Ownership struct {
	Home   string `json:"home"`
	Epoch  uint64 `json:"epoch"`
	Owner  string `json:"owner"`
	State  string `json:"state"`
	Holder string `json:"holder,omitempty"`
	// LeaseExpiresMs is the lease's expiry in the database's clock (Unix
	// ms); 0: not held.
	LeaseExpiresMs int64 `json:"lease_expires_ms"`
	// NowMs is the database's clock when the row was read.
	NowMs int64 `json:"now_ms"`
}

// LeaseExpired reports whether the lease had expired when the row was read.
func (o Ownership) LeaseExpired() bool { return o.LeaseExpiresMs < o.NowMs }

// Epoch is one ownership epoch of a home: the interval of the owner's $all
// in which it wrote the home's streams as owner: positions in
// (StartPos, EndPos].
type Epoch struct {
	Home  string `json:"home"`
	Epoch uint64 `json:"epoch"`
	Owner string `json:"owner"`
	// StartPos is the owner's head when it first took the lease (nil: not
	// taken yet, so it wrote nothing).
	StartPos *uint64 `json:"start_pos,omitempty"`
	// EndPos is the cut (nil: open). Events the owner wrote beyond it are
	// rejected everywhere.
	EndPos    *uint64 `json:"end_pos,omitempty"`
	Reason    string  `json:"reason"`
	CreatedMs int64   `json:"created_ms"`
	StartedMs int64   `json:"started_ms,omitempty"`
	EndedMs   int64   `json:"ended_ms,omitempty"`
}

// Contains reports whether position p of the owner's $all lies in the
// epoch's interval. An epoch whose lease was never taken contains nothing.
func (e Epoch) Contains(p uint64) bool {
	return e.StartPos != nil && p > *e.StartPos && (e.EndPos == nil || p <= *e.EndPos)
}

// ControlPlane is the ownership store. It is safe for concurrent use.
type ControlPlane struct {
	db      *sql.DB
	dialect string // "pgx" or "sqlite"
	now     string // SQL expression: the database clock in Unix ms
}

// DB is the control plane's database. Region nodes keep what every
// region must see in it besides ownership (the API's keys, payment tokens
// and drop terms, in their own tables).
func (c *ControlPlane) DB() *sql.DB { return c.db }

// OpenControlPlane opens the database named by dsn: "postgres://..." or
// "postgresql://..." (PostgreSQL, CockroachDB; driver pgx), or
// "sqlite:PATH" / a path ending in ".db" (SQLite, opened with WAL, a busy
// timeout and immediate transactions so several processes on one machine
// share it). It creates the tables if needed; Bootstrap seeds the homes.
func OpenControlPlane(ctx context.Context, dsn string) (*ControlPlane, error) {
	c := &ControlPlane{}
	var err error
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		c.dialect = "pgx"
		c.now = "(extract(epoch from clock_timestamp())*1000)::bigint"
		c.db, err = sql.Open("pgx", dsn)
	case strings.HasPrefix(dsn, "sqlite:"), strings.HasSuffix(dsn, ".db"):
		c.dialect = "sqlite"
		c.now = "CAST((julianday('now') - 2440587.5)*86400000.0 AS INTEGER)"
		path := strings.TrimPrefix(dsn, "sqlite:")
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_txlock", "immediate")
		c.db, err = sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err == nil {
			c.db.SetMaxOpenConns(1)
		}
	default:
		return nil, fmt.Errorf("control plane: dsn %q: want postgres://..., postgresql://... or sqlite:PATH", redactDSN(dsn))
	}
	if err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	if err := c.migrate(ctx); err != nil {
		c.db.Close()
		return nil, err
	}
	return c, nil
}

func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		return u.String()
	}
	return dsn
}

// Close closes the database.
func (c *ControlPlane) Close() error { return c.db.Close() }

func (c *ControlPlane) migrate(ctx context.Context) error {
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS lc_region_homes (
			home             TEXT PRIMARY KEY,
			epoch            BIGINT NOT NULL,
			owner            TEXT NOT NULL,
			state            TEXT NOT NULL,
			holder           TEXT NOT NULL DEFAULT '',
			lease_expires_ms BIGINT NOT NULL DEFAULT 0,
			updated_ms       BIGINT NOT NULL
		)`,
		`CREATE TABLE IF NOT EXISTS lc_region_epochs (
			home       TEXT NOT NULL,
			epoch      BIGINT NOT NULL,
			owner      TEXT NOT NULL,
			start_pos  BIGINT,
			end_pos    BIGINT,
			reason     TEXT NOT NULL,
			created_ms BIGINT NOT NULL,
			started_ms BIGINT,
			ended_ms   BIGINT,
			PRIMARY KEY (home, epoch)
		)`,
	}
	return c.tx(ctx, func(tx *sql.Tx) error {
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("control plane: migrate: %w", err)
			}
		}
		return nil
	})
}

// tx runs fn in one transaction (serializable on PostgreSQL/CockroachDB,
// immediate on SQLite), retrying the whole transaction on a serialization
// failure, including one raised at COMMIT. fn must do database work only.
func (c *ControlPlane) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var opts *sql.TxOptions
	if c.dialect == "pgx" {
		opts = &sql.TxOptions{Isolation: sql.LevelSerializable}
	}
	return crdb.ExecuteCtx(ctx, func(ctx context.Context, _ ...any) error {
		tx, err := c.db.BeginTx(ctx, opts)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// Bootstrap seeds every home of topo that the control plane does not know
// yet: epoch 1, owned by its preferred region, active. Known homes are left
// as they are (their owner may have moved).
func (c *ControlPlane) Bootstrap(ctx context.Context, topo Topology) error {
	if err := topo.Validate(); err != nil {
		return err
	}
	return c.tx(ctx, func(tx *sql.Tx) error {
		for _, h := range topo.Homes {
			res, err := tx.ExecContext(ctx, `INSERT INTO lc_region_homes (home, epoch, owner, state, updated_ms)
				VALUES ($1, 1, $2, 'active', `+c.now+`) ON CONFLICT (home) DO NOTHING`, h.Name, h.Region)
			if err != nil {
				return fmt.Errorf("bootstrap %s: %w", h.Name, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO lc_region_epochs (home, epoch, owner, reason, created_ms)
				VALUES ($1, 1, $2, 'bootstrap', `+c.now+`)`, h.Name, h.Region); err != nil {
				return fmt.Errorf("bootstrap %s: %w", h.Name, err)
			}
		}
		return nil
	})
}

const ownershipCols = `home, epoch, owner, state, holder, lease_expires_ms`

// Owners returns every home's row with the database's clock.
func (c *ControlPlane) Owners(ctx context.Context) ([]Ownership, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+ownershipCols+`, `+c.now+` FROM lc_region_homes ORDER BY home`)
	if err != nil {
		return nil, fmt.Errorf("control plane: owners: %w", err)
	}
	defer rows.Close()
	var out []Ownership
	for rows.Next() {
		var o Ownership
		if err := rows.Scan(&o.Home, &o.Epoch, &o.Owner, &o.State, &o.Holder, &o.LeaseExpiresMs, &o.NowMs); err != nil {
			return nil, fmt.Errorf("control plane: owners: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("control plane: owners: %w", err)
	}
	return out, nil
}

// Owner returns one home's row.
func (c *ControlPlane) Owner(ctx context.Context, home string) (Ownership, error) {
	var o Ownership
	err := c.db.QueryRowContext(ctx, `SELECT `+ownershipCols+`, `+c.now+` FROM lc_region_homes WHERE home = $1`, home).
		Scan(&o.Home, &o.Epoch, &o.Owner, &o.State, &o.Holder, &o.LeaseExpiresMs, &o.NowMs)
	if errors.Is(err, sql.ErrNoRows) {
		return Ownership{}, fmt.Errorf("%w: %q", ErrUnknownHome, home)
	}
	if err != nil {
		return Ownership{}, fmt.Errorf("control plane: owner %s: %w", home, err)
	}
	return o, nil
}

func (c *ControlPlane) ownerTx(ctx context.Context, tx *sql.Tx, home string) (Ownership, error) {
	var o Ownership
	err := tx.QueryRowContext(ctx, `SELECT `+ownershipCols+`, `+c.now+` FROM lc_region_homes WHERE home = $1`, home).
		Scan(&o.Home, &o.Epoch, &o.Owner, &o.State, &o.Holder, &o.LeaseExpiresMs, &o.NowMs)
	if errors.Is(err, sql.ErrNoRows) {
		return Ownership{}, fmt.Errorf("%w: %q", ErrUnknownHome, home)
	}
	return o, err
}

// Acquire takes (or re-takes) the lease of home at epoch for region's
// holder: only if region owns the home at that epoch, the home is active,
// and the lease is free (expired) or already the holder's. The first
// acquisition of an epoch records startPos (the owner's $all head, taken
// before this call with the home's writes gated) as the epoch's start.
// It returns the lease's expiry in the database's clock; ErrStale when the
// conditions do not hold.
func (c *ControlPlane) Acquire(ctx context.Context, home string, epoch uint64, region, holder string, startPos uint64, ttl time.Duration) (expiresMs int64, err error) {
	err = c.tx(ctx, func(tx *sql.Tx) error {
		o, err := c.ownerTx(ctx, tx, home)
		if err != nil {
			return err
		}
		if o.Epoch != epoch || o.Owner != region || o.State != StateActive || (o.Holder != holder && !o.LeaseExpired()) {
			return fmt.Errorf("%w: acquire %s epoch %d for %s/%s: %+v", ErrStale, home, epoch, region, holder, o)
		}
		expiresMs = o.NowMs + ttl.Milliseconds()
		if _, err := tx.ExecContext(ctx, `UPDATE lc_region_homes SET holder = $1, lease_expires_ms = $2, updated_ms = $3
			WHERE home = $4 AND epoch = $5`, holder, expiresMs, o.NowMs, home, int64(epoch)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE lc_region_epochs SET start_pos = $1, started_ms = $2
			WHERE home = $3 AND epoch = $4 AND start_pos IS NULL`, int64(startPos), o.NowMs, home, int64(epoch))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("control plane: %w", err)
	}
	return expiresMs, nil
}

// Renew extends the leases of the given homes (home -> epoch) held by
// holder, in one transaction, and reports which were renewed: a home is not
// renewed when its epoch, owner or holder changed or it is no longer
// active (the caller has lost it).
func (c *ControlPlane) Renew(ctx context.Context, region, holder string, leases map[string]uint64, ttl time.Duration) (map[string]bool, error) {
	out := make(map[string]bool, len(leases))
	err := c.tx(ctx, func(tx *sql.Tx) error {
		clear(out)
		for home, epoch := range leases {
			res, err := tx.ExecContext(ctx, `UPDATE lc_region_homes SET lease_expires_ms = `+c.now+` + $1
				WHERE home = $2 AND epoch = $3 AND owner = $4 AND holder = $5 AND state = 'active'`,
				ttl.Milliseconds(), home, int64(epoch), region, holder)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			out[home] = n == 1
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("control plane: renew: %w", err)
	}
	return out, nil
}

// Release ends region's ownership of home at epoch for a planned handover:
// the lease is dropped, the home becomes released (no one may take it until
// a Transfer), and the epoch's cut is endPos (the owner's head after it
// drained the home's writes). ErrStale if the owner, epoch or holder moved.
func (c *ControlPlane) Release(ctx context.Context, home string, epoch uint64, region, holder string, endPos uint64) error {
	err := c.tx(ctx, func(tx *sql.Tx) error {
		o, err := c.ownerTx(ctx, tx, home)
		if err != nil {
			return err
		}
		if o.Epoch != epoch || o.Owner != region || (o.State == StateActive && o.Holder != holder && !o.LeaseExpired()) {
			return fmt.Errorf("%w: release %s epoch %d by %s/%s: %+v", ErrStale, home, epoch, region, holder, o)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE lc_region_homes SET state = 'released', holder = '', lease_expires_ms = 0, updated_ms = $1
			WHERE home = $2 AND epoch = $3`, o.NowMs, home, int64(epoch)); err != nil {
			return err
		}
		return c.setCut(ctx, tx, home, epoch, endPos, o.NowMs)
	})
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	return nil
}

// setCut records the end of an epoch once; a different second value is an
// error (the cut is final: replicators have acted on it).
func (c *ControlPlane) setCut(ctx context.Context, tx *sql.Tx, home string, epoch, endPos uint64, nowMs int64) error {
	var cur sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT end_pos FROM lc_region_epochs WHERE home = $1 AND epoch = $2`, home, int64(epoch)).Scan(&cur); err != nil {
		return fmt.Errorf("epoch %s/%d: %w", home, epoch, err)
	}
	if cur.Valid {
		if uint64(cur.Int64) != endPos {
			return fmt.Errorf("%w: epoch %s/%d already ends at %d, not %d", ErrStale, home, epoch, cur.Int64, endPos)
		}
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE lc_region_epochs SET end_pos = $1, ended_ms = $2 WHERE home = $3 AND epoch = $4`,
		int64(endPos), nowMs, home, int64(epoch))
	return err
}

// Transfer moves home from epoch fromEpoch to a new epoch owned by to, in
// state pending (the new owner may not take the lease yet). Planned
// (forced=false): the home must be released. Forced: the owner's lease
// must have expired in the database's clock (ErrLeaseHeld otherwise); the
// old epoch's cut is set later with SetCut, once the old owner's bridge is
// fenced. After Transfer the old owner's renewals fail.
func (c *ControlPlane) Transfer(ctx context.Context, home string, fromEpoch uint64, to string, forced bool, reason string) (newEpoch uint64, err error) {
	err = c.tx(ctx, func(tx *sql.Tx) error {
		o, err := c.ownerTx(ctx, tx, home)
		if err != nil {
			return err
		}
		switch {
		case o.Epoch != fromEpoch:
			return fmt.Errorf("%w: transfer %s from epoch %d: %+v", ErrStale, home, fromEpoch, o)
		case !forced && o.State != StateReleased:
			return fmt.Errorf("%w: planned transfer of %s needs it released first: %+v", ErrStale, home, o)
		case forced && o.State == StateActive && o.Holder != "" && !o.LeaseExpired():
			return fmt.Errorf("%w: %s held by %s/%s for %d ms more", ErrLeaseHeld, home, o.Owner, o.Holder, o.LeaseExpiresMs-o.NowMs)
		}
		newEpoch = fromEpoch + 1
		if _, err := tx.ExecContext(ctx, `UPDATE lc_region_homes SET epoch = $1, owner = $2, state = 'pending', holder = '', lease_expires_ms = 0, updated_ms = $3
			WHERE home = $4 AND epoch = $5`, int64(newEpoch), to, o.NowMs, home, int64(fromEpoch)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE lc_region_epochs SET ended_ms = $1 WHERE home = $2 AND epoch = $3 AND ended_ms IS NULL`,
			o.NowMs, home, int64(fromEpoch)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO lc_region_epochs (home, epoch, owner, reason, created_ms) VALUES ($1, $2, $3, $4, $5)`,
			home, int64(newEpoch), to, reason, o.NowMs)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("control plane: %w", err)
	}
	return newEpoch, nil
}

// SetCut records the end position of an epoch that a forced Transfer
// closed. It is final: setting another value fails with ErrStale.
func (c *ControlPlane) SetCut(ctx context.Context, home string, epoch, endPos uint64) error {
	err := c.tx(ctx, func(tx *sql.Tx) error {
		o, err := c.ownerTx(ctx, tx, home)
		if err != nil {
			return err
		}
		if o.Epoch <= epoch {
			return fmt.Errorf("%w: cut of %s epoch %d while it is still current: %+v", ErrStale, home, epoch, o)
		}
		return c.setCut(ctx, tx, home, epoch, endPos, o.NowMs)
	})
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	return nil
}

// Activate lets the pending owner of home at epoch take the lease.
func (c *ControlPlane) Activate(ctx context.Context, home string, epoch uint64) error {
	err := c.tx(ctx, func(tx *sql.Tx) error {
		o, err := c.ownerTx(ctx, tx, home)
		if err != nil {
			return err
		}
		if o.Epoch != epoch || (o.State != StatePending && o.State != StateActive) {
			return fmt.Errorf("%w: activate %s epoch %d: %+v", ErrStale, home, epoch, o)
		}
		_, err = tx.ExecContext(ctx, `UPDATE lc_region_homes SET state = 'active', updated_ms = $1 WHERE home = $2 AND epoch = $3`,
			o.NowMs, home, int64(epoch))
		return err
	})
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	return nil
}

// Epochs returns every epoch of every home, by home then epoch.
func (c *ControlPlane) Epochs(ctx context.Context) ([]Epoch, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT home, epoch, owner, start_pos, end_pos, reason, created_ms, started_ms, ended_ms
		FROM lc_region_epochs ORDER BY home, epoch`)
	if err != nil {
		return nil, fmt.Errorf("control plane: epochs: %w", err)
	}
	defer rows.Close()
	var out []Epoch
	for rows.Next() {
		var (
			e                Epoch
			start, end       sql.NullInt64
			started, endedMs sql.NullInt64
		)
		if err := rows.Scan(&e.Home, &e.Epoch, &e.Owner, &start, &end, &e.Reason, &e.CreatedMs, &started, &endedMs); err != nil {
			return nil, fmt.Errorf("control plane: epochs: %w", err)
		}
		if start.Valid {
			v := uint64(start.Int64)
			e.StartPos = &v
		}
		if end.Valid {
			v := uint64(end.Int64)
			e.EndPos = &v
		}
		e.StartedMs, e.EndedMs = started.Int64, endedMs.Int64
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("control plane: epochs: %w", err)
	}
	return out, nil
}
