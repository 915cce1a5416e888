package stack

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // driver "sqlite"

	"github.com/livecore/livecore/adapters/httpapi"
)

// DemoSKUs are stocked for the demo tenant on first start (1,000 units
// each), so the quickstart's order can be reserved.
var DemoSKUs = []string{"TSHIRT-RED-M", "MUG-01"}

// demoKeysName is the file in the data dir holding the demo tenant's
// plaintext keys, as shell variables (mode 0600). It exists so that 'livecore
// dev' can print the keys again on every start and scripts can source it:
// a development convenience; production keys come from 'livecore keys
// create' and are shown once.
const demoKeysName = "dev-keys.env"

// OpenAPIDB opens (creating) the API's SQLite database in dataDir: api.db
// in WAL mode with synchronous=NORMAL. NORMAL does not fsync each commit,
// so a power cut can lose the last idempotency records: that is safe,
// because a request retried after such a loss runs again under the same
// command ID and the event store recognises its events (nothing is
// appended twice); API keys are written rarely and checkpointed.
func OpenAPIDB(dataDir string) (*sql.DB, error) {
	path := filepath.Join(dataDir, "api.db")
	// wal_autocheckpoint(0): a commit never runs a checkpoint (which
	// fsyncs and copies the WAL: a stall of tens of milliseconds in the
	// middle of a request); checkpointAPIDB does it in the background.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// A few connections: readers (idempotency lookups, API keys) run
	// beside the one writer in WAL mode; writers wait on busy_timeout.
	db.SetMaxOpenConns(4)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// buildAPI opens api.db and builds the HTTP API over the stack's event
// store and application service.
func (s *Stack) buildAPI(ctx context.Context) error {
	db, err := OpenAPIDB(s.cfg.DataDir)
	if err != nil {
		return err
	}
	s.APIDB = db
	s.closers = append(s.closers, db.Close)
	shared := db
	if s.cfg.Regional.SharedDB != nil {
		shared = s.cfg.Regional.SharedDB
	}
	keyStore := httpapi.NewSQLKeyStore(shared)
	// This process owns api.db: in-flight locks in memory, completed
	// responses in a Pebble database of their own, synced in group
	// commits (see LocalIdempotencyStore, OpenLocalIdempotencyStore);
	// api.db's table keeps the records of earlier versions.
	idem, err := httpapi.OpenLocalIdempotencyStore(db, filepath.Join(s.cfg.DataDir, "idempotency"), s.log)
	if err != nil {
		return err
	}
	s.Idempotency = idem
	s.closers = append(s.closers, idem.Close)
	s.Commerce = httpapi.NewSQLCommerceStore(shared)
	for _, m := range []interface{ Migrate(context.Context) error }{keyStore, idem, s.Commerce} {
		if err := migrate(ctx, m.Migrate); err != nil {
			return err
		}
	}
	s.Keys = &httpapi.Keys{Store: keyStore}

	cfg := s.cfg.HTTP
	cfg.Auth = httpapi.NewCachedAuth(s.Keys, 5*time.Second)
	cfg.Idempotency = idem
	if cfg.Logger == nil {
		cfg.Logger = s.log
	}
	if cfg.Registerer == nil && cfg.Gatherer == nil {
		cfg.Registerer, cfg.Gatherer = s.Metrics, s.Metrics
	}
	cfg.ReadyChecks = append(cfg.ReadyChecks,
		httpapi.ReadyCheck{Name: "event_store", Check: func(ctx context.Context) error { _, err := s.Store.Head(ctx); return err }},
		httpapi.ReadyCheck{Name: "api_db", Check: db.PingContext},
	)
	cfg.Backend = &httpapi.Backend{
		App: s.Service, Events: s.Store, Head: s.Store, Registry: s.Registry, Region: s.cfg.Region,
		Tokens: s.Commerce, Drops: s.Commerce, Positions: s.positions,
		Placement: s.cfg.Regional.Placement, Acknowledge: s.cfg.Regional.Acknowledge,
		Audit: &httpapi.Audit{Log: s.Store, ReadDB: s.ReadDB, Position: s.Runner.Position, WaitFor: s.Runner.WaitFor},
	}
	if s.API, err = httpapi.New(cfg); err != nil {
		return fmt.Errorf("http api: %w", err)
	}
	s.loops = append(s.loops, namedLoop{"api-db-checkpoint", func(ctx context.Context) error {
		checkpointAPIDB(ctx, db, time.Second, s.log)
		return nil
	}})
	s.loops = append(s.loops, namedLoop{"idempotency-purger", func(ctx context.Context) error {
		s.API.RunPurger(ctx, time.Hour)
		return nil
	}})
	if !s.cfg.NoDemo {
		if err := s.setupDemo(ctx); err != nil {
			return fmt.Errorf("demo tenant: %w", err)
		}
	}
	return nil
}

// setupDemo creates the demo tenant's keys once (kept in dev-keys.env and
// shown again on every start) and seeds the demo SKUs' stock under fixed
// command IDs, so a restart appends nothing.
func (s *Stack) setupDemo(ctx context.Context) error {
	tenant := s.cfg.DemoTenant
	if tenant == "" {
		tenant = "demo"
	}
	t, err := httpapi.ParseTenantID(tenant)
	if err != nil {
		return err
	}
	s.DemoKeysFile = filepath.Join(s.cfg.DataDir, demoKeysName)
	keys, err := readKeysFile(s.DemoKeysFile)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		keys = map[string]string{}
		for _, role := range httpapi.Roles() {
			k, err := s.Keys.CreateKey(ctx, t, role)
			if err != nil {
				return err
			}
			keys[role.String()] = k
		}
		if err := writeKeysFile(s.DemoKeysFile, string(t), keys); err != nil {
			return err
		}
	}
	s.DemoKeys = keys
	for _, sku := range DemoSKUs {
		if err := httpapi.ReceiveStock(ctx, s.Service, s.cfg.Region, t, sku, 1000, "demo-seed", "seed/"+tenant+"/"+sku, time.Now().UTC()); err != nil {
			return fmt.Errorf("seed %s: %w", sku, err)
		}
	}
	return nil
}

func keyVar(role string) string { return "LIVECORE_" + strings.ToUpper(role) + "_KEY" }

func readKeysFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, role := range httpapi.Roles() {
			if v, ok := strings.CutPrefix(line, keyVar(role.String())+"="); ok {
				out[role.String()] = v
			}
		}
	}
	return out, sc.Err()
}

func writeKeysFile(path, tenant string, keys map[string]string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# livecore dev: API keys of the demo tenant %q (development only; 'source' this file)\n", tenant)
	fmt.Fprintf(&b, "LIVECORE_TENANT=%s\n", tenant)
	roles := make([]string, 0, len(keys))
	for r := range keys {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		fmt.Fprintf(&b, "%s=%s\n", keyVar(r), keys[r])
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// maxConns bounds the API's open connections: past it, new connections
// wait in the listen backlog. A flood of clients then costs latency, not
// the file descriptors the event store needs (an event store that cannot
// open a file stops, by design).
const maxConns = 4096

// ServeHTTP serves the API on ln until ctx ends, then shuts down
// gracefully (in-flight requests finish; /readyz turns 503 first).
func (s *Stack) ServeHTTP(ctx context.Context, ln net.Listener) error {
	return s.API.Serve(ctx, limitListener(ln, maxConns), httpapi.ServeOptions{Grace: 10 * time.Second})
}

// limitListener accepts at most n connections at once.
func limitListener(ln net.Listener, n int) net.Listener {
	return &limitedListener{Listener: ln, sem: make(chan struct{}, n)}
}

type limitedListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// checkpointAPIDB checkpoints api.db's WAL every interval (PASSIVE: it
// copies what it can without blocking writers), off the request path.
func checkpointAPIDB(ctx context.Context, db *sql.DB, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil && ctx.Err() == nil {
			log.Warn("api.db checkpoint", "err", err)
		}
	}
}

// migrate runs a store's CREATE ... IF NOT EXISTS statements, retried a few
// times: regions starting together migrate the shared database at once,
// and PostgreSQL may refuse one of two concurrent CREATE TABLE IF NOT
// EXISTS of the same table (a unique violation in its catalog).
func migrate(ctx context.Context, m func(context.Context) error) error {
	var err error
	for attempt := range 5 {
		if err = m(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(50*(attempt+1)) * time.Millisecond):
		}
	}
	return err
}
