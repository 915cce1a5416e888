package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/livecore/livecore/domain/event"
)

// Projection is a named, versioned read model.
//
// Its Name is stable: it names the checkpoint and the tables, so renaming a
// projection means a rebuild from zero. Bump Version whenever the tables or
// the logic change: the runner then builds the new version into new tables
// from position 1 while the old version keeps serving reads, and swaps when
// the new one has caught up (no downtime).
type Projection interface {
	Name() string
	Version() int
	// Tables lists the tables the projection owns.
	Tables() []Table
	// Apply applies a batch of events in tx. It must do database work only
	// (it may be retried) and be deterministic: a rebuild must produce the
	// same rows as the live run. The batch and the events Tx.Decode returns
	// are shared with the runner's other projections: read them, never
	// modify them.
	Apply(ctx context.Context, tx Tx, batch []event.Envelope) error
}

// Table is one read-model table. DDL is a CREATE TABLE statement with the
// placeholder {{table}} for its physical name; Indexes are CREATE INDEX
// statements using {{table}} too (index names must contain {{table}}).
// Readers query the logical Name, a view over the active generation.
type Table struct {
	Name    string
	DDL     string
	Indexes []string
}

// Tx is the transaction a batch is applied in. Table maps a logical table
// name to the physical table of the generation being written.
type Tx struct {
	*sql.Tx
	Dialect    Dialect
	generation int
	decoded    *decodeCache
	db         *DB
}

// Table returns the physical name of a logical table in this generation.
func (t Tx) Table(name string) string { return physical(name, t.generation) }

// exec is ExecContext through the DB's prepared statements, if it keeps
// them (SQLite).
func (t Tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t.db != nil {
		if s := t.db.stmts.get(query); s != nil {
			return t.Tx.StmtContext(ctx, s).ExecContext(ctx, args...)
		}
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

// query is QueryContext through the DB's prepared statements, as exec.
func (t Tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if t.db != nil {
		if s := t.db.stmts.get(query); s != nil {
			return t.Tx.StmtContext(ctx, s).QueryContext(ctx, args...)
		}
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func physical(name string, gen int) string { return fmt.Sprintf("%s_g%d", name, gen) }

// Source is what the runner reads: $all from a position, and its head.
type Source interface {
	event.Subscriber
	event.HeadReader
}

// Config configures a Runner.
type Config struct {
	DB          *DB
	Source      Source
	Projections []Projection
	// BatchSize bounds events per transaction (default 5000: catching up,
	// fewer and larger transactions cost less per event; live, a batch is
	// what arrived since the last one).
	BatchSize int
	// Registerer receives lag metrics (optional).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// NoSharedDecode makes each projection decode every event itself
	// instead of sharing one decoded value per event (see Decoding); for
	// tests and measurements.
	NoSharedDecode bool
	// NoSharedReads makes each projection read every batch of $all from
	// the Source itself instead of sharing full batches one has read.
	NoSharedReads bool
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 5000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a configuration that cannot run.
func (c *Config) Validate() error {
	if c.DB == nil || c.Source == nil {
		return errors.New("projections: DB and Source are required")
	}
	seen := map[string]bool{}
	for _, p := range c.Projections {
		if p.Name() == "" || seen[p.Name()] {
			return fmt.Errorf("projections: empty or duplicate name %q", p.Name())
		}
		seen[p.Name()] = true
	}
	return nil
}

// Runner keeps projections caught up with the log.
type Runner struct {
	cfg      Config
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced whenever a checkpoint moves
	visible  map[string]uint64
	building map[string]bool
	lag      *prometheus.GaugeVec
	position *prometheus.GaugeVec
	decoded  *decodeCache // events decoded once for every projection
	reads    *readCache   // batches read once for every projection
}

// NewRunner validates cfg and returns a Runner; Run starts it.
func NewRunner(cfg Config) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, changed: make(chan struct{}), visible: map[string]uint64{}, building: map[string]bool{}}
	if !cfg.NoSharedDecode {
		// Two batches. While projections catch up the ring holds up to
		// that many decoded events, and its size is live heap: with eight
		// batches of 5,000 (as before) a catching-up product held ~150 MiB
		// of decoded events (eventcodec's decoder gives each slice room
		// for ten elements), which its GC kept marking. A projection more
		// than two batches behind the others decodes for itself, which
		// with eventcodec is cheap: catch-up was as fast. Near the head,
		// release empties each slot once every projection has applied it.
		r.decoded = newDecodeCache(max(2*cfg.BatchSize, 4096))
		r.decoded.users = projectionUsers(cfg.Projections)
	}
	if rd, ok := cfg.Source.(event.AllReader); ok && !cfg.NoSharedReads && len(cfg.Projections) > 1 {
		r.reads = newReadCache(rd, 8)
	}
	r.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "livecore_projection_lag_events", Help: "Events in $all not yet applied by the projection's active generation."}, []string{"projection"})
	r.position = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "livecore_projection_position", Help: "Last $all position applied by the projection's active generation."}, []string{"projection"})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{r.lag, r.position} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("projections: metrics: %w", err)
			}
		}
	}
	return r, nil
}

const stateDDL = `CREATE TABLE IF NOT EXISTS lc_projections (
	name TEXT PRIMARY KEY,
	version BIGINT NOT NULL,
	generation BIGINT NOT NULL
)`

const checkpointDDL = `CREATE TABLE IF NOT EXISTS lc_checkpoints (
	name TEXT NOT NULL,
	generation BIGINT NOT NULL,
	position BIGINT NOT NULL,
	PRIMARY KEY (name, generation)
)`

// Migrate creates the runner's state tables and each projection's first
// generation. Run calls it; it is idempotent.
func (r *Runner) Migrate(ctx context.Context) error {
	return r.cfg.DB.InTx(ctx, func(tx *sql.Tx) error {
		for _, ddl := range []string{stateDDL, checkpointDDL} {
			if _, err := tx.ExecContext(ctx, ddl); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
		}
		for _, p := range r.cfg.Projections {
			var v, g int
			err := tx.QueryRowContext(ctx, `SELECT version, generation FROM lc_projections WHERE name = $1`, p.Name()).Scan(&v, &g)
			if errors.Is(err, sql.ErrNoRows) {
				if err := createGeneration(ctx, tx, p, 1); err != nil {
					return err
				}
				if err := pointViews(ctx, tx, p, 1); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO lc_projections (name, version, generation) VALUES ($1, $2, 1)`, p.Name(), p.Version()); err != nil {
					return fmt.Errorf("migrate %s: %w", p.Name(), err)
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("migrate %s: %w", p.Name(), err)
			}
		}
		return nil
	})
}

func createGeneration(ctx context.Context, tx *sql.Tx, p Projection, gen int) error {
	for _, t := range p.Tables() {
		name := physical(t.Name, gen)
		stmts := append([]string{t.DDL}, t.Indexes...)
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, strings.ReplaceAll(s, "{{table}}", name)); err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO lc_checkpoints (name, generation, position) VALUES ($1, $2, 0)
		ON CONFLICT (name, generation) DO NOTHING`, p.Name(), gen)
	return err
}

func pointViews(ctx context.Context, tx *sql.Tx, p Projection, gen int) error {
	for _, t := range p.Tables() {
		if _, err := tx.ExecContext(ctx, `DROP VIEW IF EXISTS `+t.Name); err != nil {
			return fmt.Errorf("view %s: %w", t.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `CREATE VIEW `+t.Name+` AS SELECT * FROM `+physical(t.Name, gen)); err != nil {
			return fmt.Errorf("view %s: %w", t.Name, err)
		}
	}
	return nil
}

func dropGeneration(ctx context.Context, tx *sql.Tx, p Projection, gen int) error {
	for _, t := range p.Tables() {
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+physical(t.Name, gen)); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM lc_checkpoints WHERE name = $1 AND generation = $2`, p.Name(), gen)
	return err
}

// Run migrates, then keeps every projection caught up until ctx is done or
// one fails. A projection whose Version changed since its tables were built
// is rebuilt into a new generation and swapped in when caught up.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.Migrate(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, p := range r.cfg.Projections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.runProjection(ctx, p); err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("projection %s: %w", p.Name(), err))
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// runProjection runs the active generation and, when needed, a rebuild
// beside it. When the rebuild swaps generations, the old generation's
// follower may fail first (its tables were dropped under it): any error
// after which the active generation has moved is a swap, not a failure.
func (r *Runner) runProjection(ctx context.Context, p Projection) error {
	for {
		gen, version, err := r.active(ctx, p)
		if err != nil {
			return err
		}
		genCtx, stop := context.WithCancel(ctx)
		errc := make(chan error, 2)
		running := 1
		go func() { errc <- r.follow(genCtx, p, gen, true) }()
		if version != p.Version() {
			running++
			go func() { errc <- r.rebuild(genCtx, p, gen+1) }()
		}
		err = <-errc
		stop()
		for ; running > 1; running-- {
			if e := <-errc; errors.Is(e, errSwapped) {
				err = e
			}
		}
		if errors.Is(err, errSwapped) {
			continue
		}
		if ctx.Err() == nil {
			if now, _, aerr := r.active(ctx, p); aerr == nil && now != gen {
				continue
			}
		}
		return err
	}
}

var errSwapped = errors.New("generation swapped")

func (r *Runner) active(ctx context.Context, p Projection) (gen, version int, err error) {
	err = r.cfg.DB.QueryRowContext(ctx, `SELECT generation, version FROM lc_projections WHERE name = $1`, p.Name()).Scan(&gen, &version)
	if err != nil {
		return 0, 0, fmt.Errorf("projection %s state: %w", p.Name(), err)
	}
	return gen, version, nil
}

func (r *Runner) checkpoint(ctx context.Context, p Projection, gen int) (uint64, error) {
	var pos int64
	err := r.cfg.DB.QueryRowContext(ctx, `SELECT position FROM lc_checkpoints WHERE name = $1 AND generation = $2`, p.Name(), gen).Scan(&pos)
	if err != nil {
		return 0, fmt.Errorf("checkpoint %s g%d: %w", p.Name(), gen, err)
	}
	return uint64(pos), nil
}

// follow applies $all to generation gen from its checkpoint. If live, the
// applied position is published to waiters and metrics.
func (r *Runner) follow(ctx context.Context, p Projection, gen int, live bool) error {
	from, err := r.checkpoint(ctx, p, gen)
	if err != nil {
		return err
	}
	if live {
		r.publish(ctx, p.Name(), from)
	}
	return r.subscribe(ctx, from+1, func(ctx context.Context, batch []event.Envelope) error {
		return r.applyAll(ctx, p, gen, batch, func(pos uint64) {
			if live {
				r.publish(ctx, p.Name(), pos)
			}
		})
	})
}

// applyAll applies a delivered batch in transactions of at most BatchSize
// events, calling applied with the last position of each.
func (r *Runner) applyAll(ctx context.Context, p Projection, gen int, batch []event.Envelope, applied func(pos uint64)) error {
	for len(batch) > 0 {
		n := min(len(batch), r.cfg.BatchSize)
		if err := r.applyBatch(ctx, p, gen, batch[:n]); err != nil {
			return err
		}
		applied(batch[n-1].Position)
		batch = batch[n:]
	}
	return nil
}

// subscribe delivers $all from a position. A source that can also read
// $all and wait for its head is read in batches of BatchSize (so catch-up
// commits BatchSize events per transaction whatever the source's own
// subscription batches are); others through their SubscribeAll.
func (r *Runner) subscribe(ctx context.Context, from uint64, handle func(context.Context, []event.Envelope) error) error {
	type readWaiter interface {
		event.AllReader
		event.HeadWaiter
	}
	if rw, ok := r.cfg.Source.(readWaiter); ok {
		var reader event.AllReader = rw
		if r.reads != nil {
			reader = r.reads
		}
		return event.SubscribeAll(ctx, reader, rw, from, r.cfg.BatchSize, handle)
	}
	return r.cfg.Source.SubscribeAll(ctx, from, handle)
}

// applyBatch applies a batch and moves the checkpoint in one transaction.
// The checkpoint update is conditional on the checkpoint being where this
// batch starts, so a batch can never be applied twice. A batch the
// checkpoint already covers (its commit succeeded but the answer was lost,
// and the caller retried) is skipped; a checkpoint anywhere else means
// another projector is writing this generation, which is an error.
func (r *Runner) applyBatch(ctx context.Context, p Projection, gen int, batch []event.Envelope) error {
	first, last := batch[0].Position, batch[len(batch)-1].Position
	r.decoded.predecode(p, batch)
	err := r.cfg.DB.InTx(ctx, func(sqlTx *sql.Tx) error {
		tx := Tx{Tx: sqlTx, Dialect: r.cfg.DB.Dialect, generation: gen, decoded: r.decoded, db: r.cfg.DB}
		res, err := tx.exec(ctx, `UPDATE lc_checkpoints SET position = $1 WHERE name = $2 AND generation = $3 AND position = $4`,
			int64(last), p.Name(), gen, int64(first-1))
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			var at int64
			if err := tx.QueryRowContext(ctx, `SELECT position FROM lc_checkpoints WHERE name = $1 AND generation = $2`, p.Name(), gen).Scan(&at); err != nil {
				return fmt.Errorf("projection %s g%d: checkpoint: %w", p.Name(), gen, err)
			}
			if uint64(at) >= last {
				return nil // applied before
			}
			return fmt.Errorf("projection %s g%d: checkpoint is at %d, not %d (another projector running?)", p.Name(), gen, at, first-1)
		}
		if err := p.Apply(ctx, tx, batch); err != nil {
			return fmt.Errorf("apply %s positions %d-%d: %w", p.Name(), first, last, err)
		}
		return nil
	})
	if err == nil {
		r.decoded.release(p, batch)
	}
	return err
}

// rebuild builds generation gen from position 1 and swaps it in once it has
// caught up with the head.
func (r *Runner) rebuild(ctx context.Context, p Projection, gen int) error {
	r.mu.Lock()
	r.building[p.Name()] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.building, p.Name())
		r.mu.Unlock()
	}()
	r.cfg.Logger.Info("projection rebuild started", "projection", p.Name(), "generation", gen, "version", p.Version())
	start := time.Now()
	err := r.cfg.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := dropGeneration(ctx, tx, p, gen); err != nil { // leftovers of an interrupted rebuild
			return err
		}
		return createGeneration(ctx, tx, p, gen)
	})
	if err != nil {
		return err
	}
	caughtUp := errors.New("caught up")
	err = r.subscribe(ctx, 1, func(ctx context.Context, batch []event.Envelope) error {
		if err := r.applyAll(ctx, p, gen, batch, func(uint64) {}); err != nil {
			return err
		}
		head, err := r.cfg.Source.Head(ctx)
		if err != nil {
			return err
		}
		if pos, err := r.checkpoint(ctx, p, gen); err == nil && pos >= head {
			return caughtUp
		}
		return nil
	})
	if !errors.Is(err, caughtUp) {
		return err
	}
	// Swap: point the views at the new generation and drop the old one, in
	// one transaction. Events committed since the check above are applied by
	// the new generation when it is followed live.
	err = r.cfg.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := pointViews(ctx, tx, p, gen); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE lc_projections SET generation = $1, version = $2 WHERE name = $3`, gen, p.Version(), p.Name()); err != nil {
			return err
		}
		return dropGeneration(ctx, tx, p, gen-1)
	})
	if err != nil {
		return fmt.Errorf("swap %s to g%d: %w", p.Name(), gen, err)
	}
	r.cfg.Logger.Info("projection rebuilt and swapped", "projection", p.Name(), "generation", gen, "took", time.Since(start).Round(time.Millisecond))
	return errSwapped
}

// Rebuild forces projection name to be rebuilt from zero into new tables and
// swapped in when caught up, while the current tables keep serving reads.
// It marks the stored version stale; a running Runner picks it up when
// restarted (Run), so call it and restart, or call it before Run.
func (r *Runner) Rebuild(ctx context.Context, name string) error {
	return r.cfg.DB.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE lc_projections SET version = -1 WHERE name = $1`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("rebuild %s: %w", name, ErrNotFound)
		}
		return nil
	})
}

func (r *Runner) publish(ctx context.Context, name string, pos uint64) {
	r.mu.Lock()
	if pos > r.visible[name] || r.visible[name] == 0 {
		r.visible[name] = pos
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	r.position.WithLabelValues(name).Set(float64(pos))
	if head, err := r.cfg.Source.Head(ctx); err == nil && head >= pos {
		r.lag.WithLabelValues(name).Set(float64(head - pos))
	}
}

// Position is the last $all position whose effects are visible in
// projection name's tables (0 before the runner starts).
func (r *Runner) Position(name string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.visible[name]
}

// WaitFor blocks until projection name has applied position pos (a reader
// waiting to see its own write), or ctx is done.
func (r *Runner) WaitFor(ctx context.Context, name string, pos uint64) error {
	for {
		r.mu.Lock()
		got, ch := r.visible[name], r.changed
		r.mu.Unlock()
		if got >= pos {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to reach position %d (at %d): %w", name, pos, got, ctx.Err())
		case <-ch:
		}
	}
}
