package regions_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/livecore/livecore/internal/testenv"
	"github.com/livecore/livecore/regions"
)

func testTopology() regions.Topology {
	return regions.Topology{
		Regions: []regions.Region{{Name: "r1", URL: "http://r1"}, {Name: "r2", URL: "http://r2"}, {Name: "r3", URL: "http://r3"}},
		Homes: []regions.Home{
			{Name: "h1", Region: "r1", Markets: []string{"DE"}},
			{Name: "h2", Region: "r2", Markets: []string{"US"}},
			{Name: "h3", Region: "r3"},
		},
	}
}

// forEachDB runs fn against SQLite and PostgreSQL (skipped loudly, or
// failing in CI, when PostgreSQL is not available).
func forEachDB(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite:"+filepath.Join(t.TempDir(), "cp.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, testenv.FreshSchema(t, testenv.PostgresDSN(t))) })
}

func openCP(t *testing.T, dsn string) *regions.ControlPlane {
	t.Helper()
	cp, err := regions.OpenControlPlane(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })
	if err := cp.Bootstrap(t.Context(), testTopology()); err != nil {
		t.Fatal(err)
	}
	return cp
}

func owner(t *testing.T, cp *regions.ControlPlane, home string) regions.Ownership {
	t.Helper()
	o, err := cp.Owner(t.Context(), home)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestControlPlaneLeasesAndTransfers(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		cp := openCP(t, dsn)
		if err := cp.Bootstrap(ctx, testTopology()); err != nil { // idempotent
			t.Fatal(err)
		}
		o := owner(t, cp, "h1")
		if o.Epoch != 1 || o.Owner != "r1" || o.State != regions.StateActive {
			t.Fatalf("bootstrap: %+v", o)
		}
		const ttl = 400 * time.Millisecond
		if _, err := cp.Acquire(ctx, "h1", 1, "r1", "p1", 10, ttl); err != nil {
			t.Fatal(err)
		}
		// Another process of r1 cannot take a valid lease; r2 cannot at all.
		if _, err := cp.Acquire(ctx, "h1", 1, "r1", "p2", 0, ttl); !errors.Is(err, regions.ErrStale) {
			t.Fatalf("second holder: %v", err)
		}
		if _, err := cp.Acquire(ctx, "h1", 1, "r2", "q1", 0, ttl); !errors.Is(err, regions.ErrStale) {
			t.Fatalf("other region: %v", err)
		}
		got, err := cp.Renew(ctx, "r1", "p1", map[string]uint64{"h1": 1}, ttl)
		if err != nil || !got["h1"] {
			t.Fatalf("renew: %v %v", got, err)
		}
		// A forced transfer waits for the lease to expire.
		if _, err := cp.Transfer(ctx, "h1", 1, "r2", true, "test"); !errors.Is(err, regions.ErrLeaseHeld) {
			t.Fatalf("forced transfer of a held lease: %v", err)
		}
		time.Sleep(ttl + 100*time.Millisecond)
		e2, err := cp.Transfer(ctx, "h1", 1, "r2", true, "forced")
		if err != nil || e2 != 2 {
			t.Fatalf("forced transfer: %d %v", e2, err)
		}
		// The old holder's renewal fails from now on, even though its own
		// clock might still trust the lease.
		if got, err := cp.Renew(ctx, "r1", "p1", map[string]uint64{"h1": 1}, ttl); err != nil || got["h1"] {
			t.Fatalf("renew after transfer: %v %v", got, err)
		}
		// Pending: the new owner may not take it before Activate.
		if _, err := cp.Acquire(ctx, "h1", 2, "r2", "q1", 5, ttl); !errors.Is(err, regions.ErrStale) {
			t.Fatalf("acquire while pending: %v", err)
		}
		if err := cp.SetCut(ctx, "h1", 1, 42); err != nil {
			t.Fatal(err)
		}
		if err := cp.SetCut(ctx, "h1", 1, 43); !errors.Is(err, regions.ErrStale) {
			t.Fatalf("second cut: %v", err)
		}
		if err := cp.SetCut(ctx, "h1", 2, 1); !errors.Is(err, regions.ErrStale) {
			t.Fatalf("cut of the current epoch: %v", err)
		}
		if err := cp.Activate(ctx, "h1", 2); err != nil {
			t.Fatal(err)
		}
		if _, err := cp.Acquire(ctx, "h1", 2, "r2", "q1", 5, ttl); err != nil {
			t.Fatal(err)
		}
		// Planned: release with a cut, then transfer back.
		if _, err := cp.Transfer(ctx, "h1", 2, "r1", false, "planned"); !errors.Is(err, regions.ErrStale) {
			t.Fatalf("planned transfer before release: %v", err)
		}
		if err := cp.Release(ctx, "h1", 2, "r2", "q1", 77); err != nil {
			t.Fatal(err)
		}
		if _, err := cp.Acquire(ctx, "h1", 2, "r2", "q1", 5, ttl); !errors.Is(err, regions.ErrStale) {
			t.Fatalf("re-acquire after release: %v", err)
		}
		if e3, err := cp.Transfer(ctx, "h1", 2, "r1", false, "failback"); err != nil || e3 != 3 {
			t.Fatalf("planned transfer: %d %v", e3, err)
		}
		eps, err := cp.Epochs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var h1 []regions.Epoch
		for _, e := range eps {
			if e.Home == "h1" {
				h1 = append(h1, e)
			}
		}
		if len(h1) != 3 || *h1[0].StartPos != 10 || *h1[0].EndPos != 42 || *h1[1].StartPos != 5 || *h1[1].EndPos != 77 || h1[2].StartPos != nil || h1[2].Owner != "r1" {
			t.Fatalf("epochs of h1: %+v", h1)
		}
		if !h1[0].Contains(42) || h1[0].Contains(43) || h1[0].Contains(10) || !h1[0].Contains(11) {
			t.Fatal("epoch 1 interval is not (10, 42]")
		}
	})
}

// TestControlPlaneCommitTime40001 forces a serialization failure at COMMIT
// (a deferred constraint trigger) on real PostgreSQL: the transfer must be
// retried as a whole transaction and stored exactly once.
func TestControlPlaneCommitTime40001(t *testing.T) {
	dsn := testenv.FreshSchema(t, testenv.PostgresDSN(t))
	cp := openCP(t, dsn)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), `
CREATE SEQUENCE cp_commit_attempts;
CREATE FUNCTION cp_fail_first_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF nextval('cp_commit_attempts') = 1 THEN
		RAISE EXCEPTION 'injected serialization failure at commit' USING ERRCODE = '40001';
	END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER cp_fail_first_commit AFTER INSERT ON lc_region_epochs
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cp_fail_first_commit();`); err != nil {
		t.Fatal(err)
	}
	if err := cp.Release(t.Context(), "h2", 1, "r2", "", 9); err != nil {
		t.Fatal(err)
	}
	e, err := cp.Transfer(t.Context(), "h2", 1, "r3", false, "planned")
	if err != nil || e != 2 {
		t.Fatalf("transfer across a commit-time 40001: %d %v", e, err)
	}
	var attempts int
	if err := db.QueryRowContext(t.Context(), `SELECT last_value FROM cp_commit_attempts`).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	o := owner(t, cp, "h2")
	eps, _ := cp.Epochs(t.Context())
	n := 0
	for _, ep := range eps {
		if ep.Home == "h2" {
			n++
		}
	}
	if attempts != 2 || o.Epoch != 2 || o.Owner != "r3" || n != 2 {
		t.Fatalf("attempts %d, owner %+v, %d epochs of h2", attempts, o, n)
	}
	t.Logf("commit-time 40001 injected: the transfer was retried from BEGIN (%d commits) and stored once: %+v", attempts, o)
}

func TestTopologyHomes(t *testing.T) {
	topo := testTopology()
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	if h := topo.HomeOf("order-" + regions.EntityID("h2", "abc")); h != "h2" {
		t.Fatalf("carried home: %s", h)
	}
	if h, ok := topo.HomeOfMarket("DE"); !ok || h != "h1" {
		t.Fatalf("market home: %s %v", h, ok)
	}
	seen := map[string]int{}
	for i := range 3000 {
		h := topo.HomeOf("sku-" + string(rune('a'+i%26)) + time.Duration(i).String())
		seen[h]++
		if h != topo.HomeOf("sku-"+string(rune('a'+i%26))+time.Duration(i).String()) {
			t.Fatal("HomeOf is not deterministic")
		}
	}
	if len(seen) != 3 {
		t.Fatalf("hashed streams spread over %v", seen)
	}
	bad := topo
	bad.Homes = append(bad.Homes, regions.Home{Name: "h4", Region: "nowhere", Markets: []string{"DE"}})
	if err := bad.Validate(); err == nil {
		t.Fatal("a home in an unknown region and a market in two homes validated")
	}
}
