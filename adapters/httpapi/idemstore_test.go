package httpapi_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"

	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/internal/testenv"
)

func openSQLite(t testing.TB) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openPostgres(t testing.TB) *sql.DB {
	t.Helper()
	dsn := testenv.FreshSchema(t, testenv.PostgresDSN(t))
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type idemStore struct {
	name string
	open func(t testing.TB) httpapi.IdempotencyStore
}

func idemStores(t testing.TB) []idemStore {
	sqlStore := func(open func(testing.TB) *sql.DB) func(testing.TB) httpapi.IdempotencyStore {
		return func(t testing.TB) httpapi.IdempotencyStore {
			s := httpapi.NewSQLIdempotencyStore(open(t))
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(context.Background()); err != nil { // idempotent
				t.Fatal(err)
			}
			return s
		}
	}
	return []idemStore{
		{"memory", func(testing.TB) httpapi.IdempotencyStore { return httpapi.NewMemoryIdempotencyStore() }},
		{"sqlite", sqlStore(openSQLite)},
		{"local-sqlite", func(t testing.TB) httpapi.IdempotencyStore {
			s := httpapi.NewLocalIdempotencyStore(openSQLite(t))
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"local-pebble", func(t testing.TB) httpapi.IdempotencyStore {
			s := openLocalPebble(t, openSQLite(t), t.TempDir())
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"postgres", sqlStore(openPostgres)},
	}
}

func openLocalPebble(t testing.TB, db *sql.DB, dir string) *httpapi.LocalIdempotencyStore {
	t.Helper()
	s, err := httpapi.OpenLocalIdempotencyStore(db, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestIdempotencyStoreConformance runs one suite against every store.
func TestIdempotencyStoreConformance(t *testing.T) {
	for _, st := range idemStores(t) {
		t.Run(st.name, func(t *testing.T) { runIdemSuite(t, st.open) })
	}
}

func runIdemSuite(t *testing.T, open func(testing.TB) httpapi.IdempotencyStore) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	begin := func(s httpapi.IdempotencyStore, k httpapi.IdemKey, fp, lock string, now time.Time) (httpapi.Begun, error) {
		return s.Begin(ctx, httpapi.BeginRequest{Key: k, Fingerprint: fp, Lock: lock, Now: now,
			LockedUntil: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)})
	}
	acme := httpapi.IdemKey{Tenant: "acme", Key: "k1"}
	resp := httpapi.StoredResponse{
		Status: 201,
		Header: http.Header{"Content-Type": {"application/json"}, "Location": {"/v1/orders/o1"}},
		Body:   []byte("{\"id\":\"o1\"}\n\x00\xff"), // exact bytes, binary included
	}

	t.Run("lifecycle", func(t *testing.T) {
		s := open(t)
		if b, err := begin(s, acme, "fp1", "L1", t0); err != nil || b.Replay != nil {
			t.Fatalf("first begin: %+v %v", b, err)
		}
		if _, err := begin(s, acme, "fp1", "L2", t0); !errors.Is(err, httpapi.ErrIdempotencyInFlight) {
			t.Fatalf("in flight: %v", err)
		}
		if _, err := begin(s, acme, "fp2", "L2", t0); !errors.Is(err, httpapi.ErrIdempotencyMismatch) {
			t.Fatalf("mismatch in flight: %v", err)
		}
		if err := s.Complete(ctx, acme, "WRONG", resp, t0.Add(time.Hour)); !errors.Is(err, httpapi.ErrIdempotencyLockLost) {
			t.Fatalf("complete with a wrong lock: %v", err)
		}
		if err := s.Release(ctx, acme, "WRONG"); !errors.Is(err, httpapi.ErrIdempotencyLockLost) {
			t.Fatalf("release with a wrong lock: %v", err)
		}
		if err := s.Complete(ctx, acme, "L1", resp, t0.Add(time.Hour)); err != nil {
			t.Fatalf("complete: %v", err)
		}
		if err := s.Complete(ctx, acme, "L1", resp, t0.Add(time.Hour)); !errors.Is(err, httpapi.ErrIdempotencyLockLost) {
			t.Fatalf("second complete: %v", err)
		}
		if err := s.Release(ctx, acme, "L1"); !errors.Is(err, httpapi.ErrIdempotencyLockLost) {
			t.Fatalf("release after complete: %v", err)
		}
		b, err := begin(s, acme, "fp1", "L3", t0.Add(time.Minute))
		if err != nil || b.Replay == nil {
			t.Fatalf("replay: %+v %v", b, err)
		}
		if b.Replay.Status != 201 || string(b.Replay.Body) != string(resp.Body) ||
			b.Replay.Header.Get("Location") != "/v1/orders/o1" || b.Replay.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("replayed %+v", b.Replay)
		}
		if _, err := begin(s, acme, "fp2", "L3", t0.Add(time.Minute)); !errors.Is(err, httpapi.ErrIdempotencyMismatch) {
			t.Fatalf("mismatch after completion: %v", err)
		}
	})

	t.Run("empty body replays empty", func(t *testing.T) {
		s := open(t)
		if _, err := begin(s, acme, "fp", "L", t0); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, acme, "L", httpapi.StoredResponse{Status: 204, Header: http.Header{}}, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		b, err := begin(s, acme, "fp", "L2", t0)
		if err != nil || b.Replay == nil || b.Replay.Status != 204 || len(b.Replay.Body) != 0 {
			t.Fatalf("%+v %v", b.Replay, err)
		}
	})

	t.Run("release frees the key", func(t *testing.T) {
		s := open(t)
		if _, err := begin(s, acme, "fp1", "L1", t0); err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, acme, "L1"); err != nil {
			t.Fatal(err)
		}
		if b, err := begin(s, acme, "other", "L2", t0); err != nil || b.Replay != nil {
			t.Fatalf("after release: %+v %v", b, err)
		}
	})

	t.Run("tenants are separate", func(t *testing.T) {
		s := open(t)
		globex := httpapi.IdemKey{Tenant: "globex", Key: acme.Key}
		if _, err := begin(s, acme, "fp1", "L1", t0); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, acme, "L1", resp, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if b, err := begin(s, globex, "fp1", "G1", t0); err != nil || b.Replay != nil {
			t.Fatalf("other tenant: %+v %v", b, err)
		}
		if err := s.Complete(ctx, acme, "G1", resp, t0.Add(time.Hour)); !errors.Is(err, httpapi.ErrIdempotencyLockLost) {
			t.Fatalf("another tenant's lock completed acme's key: %v", err)
		}
	})

	t.Run("expiry and purge", func(t *testing.T) {
		s := open(t)
		k2 := httpapi.IdemKey{Tenant: "acme", Key: "k2"}
		for _, k := range []httpapi.IdemKey{acme, k2} {
			if _, err := begin(s, k, "fp1", "L-"+k.Key, t0); err != nil {
				t.Fatal(err)
			}
			if err := s.Complete(ctx, k, "L-"+k.Key, resp, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := s.Purge(ctx, t0.Add(59*time.Minute)); err != nil || n != 0 {
			t.Fatalf("early purge: %d %v", n, err)
		}
		// Expired: a new request, whatever its fingerprint.
		if b, err := begin(s, acme, "fp-new", "L3", t0.Add(time.Hour)); err != nil || b.Replay != nil {
			t.Fatalf("expired key: %+v %v", b, err)
		}
		if n, err := s.Purge(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("purge: %d %v", n, err)
		}
		if b, err := begin(s, k2, "fp-x", "L4", t0.Add(time.Hour)); err != nil || b.Replay != nil {
			t.Fatalf("purged key: %+v %v", b, err)
		}
	})

	t.Run("dead lock is taken over", func(t *testing.T) {
		s := open(t)
		if _, err := begin(s, acme, "fp1", "L1", t0); err != nil {
			t.Fatal(err)
		}
		late := t0.Add(time.Minute) // LockedUntil
		if _, err := begin(s, acme, "fp2", "L2", late); !errors.Is(err, httpapi.ErrIdempotencyMismatch) {
			t.Fatalf("another request may not take a dead lock: %v", err)
		}
		if b, err := begin(s, acme, "fp1", "L2", late); err != nil || b.Replay != nil {
			t.Fatalf("takeover: %+v %v", b, err)
		}
		if err := s.Complete(ctx, acme, "L1", resp, late.Add(time.Hour)); !errors.Is(err, httpapi.ErrIdempotencyLockLost) {
			t.Fatalf("stale owner completed: %v", err)
		}
		if err := s.Complete(ctx, acme, "L2", resp, late.Add(time.Hour)); err != nil {
			t.Fatalf("new owner: %v", err)
		}
	})

	t.Run("concurrent begins: one winner", func(t *testing.T) {
		s := open(t)
		const n = 50
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, inFlight := 0, 0
		var winner string
		for i := range n {
			wg.Go(func() {
				lock := "L" + string(rune('A'+i%26)) + string(rune('a'+i/26))
				b, err := begin(s, acme, "fp1", lock, t0)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && b.Replay == nil:
					won++
					winner = lock
				case errors.Is(err, httpapi.ErrIdempotencyInFlight):
					inFlight++
				default:
					t.Errorf("begin: %+v %v", b, err)
				}
			})
		}
		wg.Wait()
		t.Logf("%d concurrent Begins: %d won, %d in flight", n, won, inFlight)
		if won != 1 || inFlight != n-1 {
			t.Fatalf("want exactly one winner")
		}
		if err := s.Complete(ctx, acme, winner, resp, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		replays := 0
		for range n {
			wg.Go(func() {
				b, err := begin(s, acme, "fp1", "late", t0)
				mu.Lock()
				defer mu.Unlock()
				if err == nil && b.Replay != nil && string(b.Replay.Body) == string(resp.Body) {
					replays++
				}
			})
		}
		wg.Wait()
		if replays != n {
			t.Fatalf("%d of %d replays", replays, n)
		}
	})
}

// TestLocalIdempotencyStoreSurvivesRestart: a completed key is replayed by
// a new store over the same database (the process restarted), and a key
// in flight at the crash is free again.
func TestLocalIdempotencyStoreSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	begin := func(s httpapi.IdempotencyStore, k httpapi.IdemKey, lock string) (httpapi.Begun, error) {
		return s.Begin(ctx, httpapi.BeginRequest{Key: k, Fingerprint: "fp", Lock: lock, Now: t0, LockedUntil: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Hour)})
	}
	done, crashed := httpapi.IdemKey{Tenant: "acme", Key: "done"}, httpapi.IdemKey{Tenant: "acme", Key: "crashed"}
	s1 := httpapi.NewLocalIdempotencyStore(db)
	if err := s1.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []httpapi.IdemKey{done, crashed} {
		if _, err := begin(s1, k, "L1"); err != nil {
			t.Fatal(err)
		}
	}
	resp := httpapi.StoredResponse{Status: 201, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"ord_1"}`)}
	if err := s1.Complete(ctx, done, "L1", resp, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s1.Close()

	s2 := httpapi.NewLocalIdempotencyStore(db)
	defer s2.Close()
	b, err := begin(s2, done, "L2")
	if err != nil || b.Replay == nil || string(b.Replay.Body) != `{"id":"ord_1"}` || b.Replay.Status != 201 {
		t.Fatalf("after restart: %+v %v", b, err)
	}
	if b, err := begin(s2, crashed, "L2"); err != nil || b.Replay != nil {
		t.Fatalf("key in flight at the crash: %+v %v", b, err)
	}
}

// TestLocalPebbleIdempotencyStore: records kept in Pebble survive a
// restart with their headers and body byte for byte; records an earlier
// version left in the table are still replayed and purged.
func TestLocalPebbleIdempotencyStore(t *testing.T) {
	ctx := context.Background()
	db, dir := openSQLite(t), t.TempDir()
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	begin := func(s httpapi.IdempotencyStore, k httpapi.IdemKey, fp, lock string, now time.Time) (httpapi.Begun, error) {
		return s.Begin(ctx, httpapi.BeginRequest{Key: k, Fingerprint: fp, Lock: lock, Now: now, LockedUntil: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)})
	}
	legacy, done, crashed := httpapi.IdemKey{Tenant: "acme", Key: "legacy"}, httpapi.IdemKey{Tenant: "acme", Key: "done"}, httpapi.IdemKey{Tenant: "acme", Key: "crashed"}
	other := httpapi.IdemKey{Tenant: "other", Key: "done"}

	// An earlier version's store wrote a record to the table.
	old := httpapi.NewLocalIdempotencyStore(db)
	if err := old.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := begin(old, legacy, "fp", "L0", t0); err != nil {
		t.Fatal(err)
	}
	if err := old.Complete(ctx, legacy, "L0", httpapi.StoredResponse{Status: 200, Header: http.Header{}, Body: []byte("legacy")}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s1 := openLocalPebble(t, db, dir)
	resp := httpapi.StoredResponse{Status: 201, Header: http.Header{
		"Content-Type": {"application/json"}, "Location": {"/v1/orders/ord_1"}, "X-Multi": {"a", "", "b"},
	}, Body: []byte("{\"id\":\"ord_1\"}\n\x00\xff")}
	for _, k := range []httpapi.IdemKey{done, crashed, other} {
		if _, err := begin(s1, k, "fp", "L1", t0); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []httpapi.IdemKey{done, other} {
		if err := s1.Complete(ctx, k, "L1", resp, t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	s1.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM http_idempotency`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("table rows: %d, %v; want only the legacy one", n, err)
	}

	s2 := openLocalPebble(t, db, dir)
	b, err := begin(s2, done, "fp", "L2", t0.Add(time.Minute))
	if err != nil || b.Replay == nil || b.Replay.Status != 201 || string(b.Replay.Body) != string(resp.Body) ||
		len(b.Replay.Header) != 3 || strings.Join(b.Replay.Header["X-Multi"], ",") != "a,,b" || b.Replay.Header.Get("Location") != "/v1/orders/ord_1" {
		t.Fatalf("after restart: %+v %v", b, err)
	}
	if _, err := begin(s2, done, "other-fp", "L2", t0.Add(time.Minute)); !errors.Is(err, httpapi.ErrIdempotencyMismatch) {
		t.Fatalf("other fingerprint after restart: %v", err)
	}
	if b, err := begin(s2, crashed, "fp", "L2", t0.Add(time.Minute)); err != nil || b.Replay != nil {
		t.Fatalf("key in flight at the crash: %+v %v", b, err)
	}
	if b, err := begin(s2, legacy, "fp", "L2", t0.Add(time.Minute)); err != nil || b.Replay == nil || string(b.Replay.Body) != "legacy" {
		t.Fatalf("legacy record: %+v %v", b, err)
	}
	// The legacy record expires at t0+1h, the others at t0+2h.
	if n, err := s2.Purge(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("purge at t0+1h: %d, %v; want the legacy record", n, err)
	}
	if n, err := s2.Purge(ctx, t0.Add(2*time.Hour)); err != nil || n != 2 {
		t.Fatalf("purge at t0+2h: %d, %v; want 2", n, err)
	}
	s2.Close()
	s3 := openLocalPebble(t, db, dir)
	defer s3.Close()
	for _, k := range []httpapi.IdemKey{done, other, legacy} {
		if b, err := begin(s3, k, "another-fp", "L3", t0.Add(2*time.Hour)); err != nil || b.Replay != nil {
			t.Fatalf("%v after purge: %+v %v", k, b, err)
		}
	}
}
