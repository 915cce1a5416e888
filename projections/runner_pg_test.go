package projections_test

import (
	"context"
	"testing"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/internal/testenv"
	"github.com/livecore/livecore/projections"
)

func openPostgres(t testing.TB) *projections.DB {
	t.Helper()
	dsn := testenv.FreshSchema(t, testenv.PostgresDSN(t))
	db, err := projections.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// failFirstCommit makes the first COMMIT of a transaction that moved a
// checkpoint fail with SQLSTATE 40001: a DEFERRABLE INITIALLY DEFERRED
// constraint trigger fires at COMMIT, after every statement of the batch
// succeeded. nextval is not transactional, so the count survives the
// rollback.
const failFirstCommit = `
CREATE SEQUENCE lc_fault_fired;
CREATE FUNCTION lc_fail_first_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF nextval('lc_fault_fired') = 1 THEN
		RAISE EXCEPTION 'injected serialization failure at commit' USING ERRCODE = '40001';
	END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER lc_fail_first_commit AFTER UPDATE ON lc_checkpoints
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lc_fail_first_commit();`

// TestCommitTimeSerializationFailureAppliesBatchOnce forces a 40001 at
// COMMIT of the runner's batch transaction on PostgreSQL and checks that
// the batch is applied exactly once: not lost (cockroach-go's savepoint
// helper would swallow the commit failure and lose it), not doubled.
func TestCommitTimeSerializationFailureAppliesBatchOnce(t *testing.T) {
	db := openPostgres(t)
	ctx := context.Background()
	store := memory.New(memory.Config{})
	total := appendN(t, store, 50, 20, 11)
	cfg := projections.Config{DB: db, Source: store, Projections: []projections.Projection{counter{1}}, BatchSize: total}
	r, err := projections.NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, failFirstCommit); err != nil {
		t.Fatal(err)
	}
	runUntil(t, r, "counter", uint64(total))

	var fired, events, pos int64
	if err := db.QueryRow(`SELECT last_value FROM lc_fault_fired`).Scan(&fired); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COALESCE(SUM(events), 0) FROM rm_counts`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT position FROM lc_checkpoints WHERE name = 'counter'`).Scan(&pos); err != nil {
		t.Fatal(err)
	}
	if fired < 2 {
		t.Fatalf("the commit trigger fired %d times: the failure was not injected and retried", fired)
	}
	if events != int64(total) || pos != int64(total) {
		t.Fatalf("after a commit-time 40001: %d events applied, checkpoint %d; want %d and %d", events, pos, total, total)
	}
	t.Logf("one batch of %d events; commit failed with 40001 once (trigger fired %d times); applied exactly once: %d events counted, checkpoint %d", total, fired, events, pos)
}

// TestPostgresPlansEachStatement checks that projection sessions plan each
// statement for its parameters (see OpenPostgres), and that a DSN that
// sets plan_cache_mode itself keeps its choice.
func TestPostgresPlansEachStatement(t *testing.T) {
	dsn := testenv.FreshSchema(t, testenv.PostgresDSN(t))
	for _, c := range []struct{ dsn, want string }{
		{dsn, "force_custom_plan"},
		{dsn + "&plan_cache_mode=auto", "auto"},
	} {
		db, err := projections.OpenPostgres(context.Background(), c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		err = db.QueryRow(`SHOW plan_cache_mode`).Scan(&mode)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		if mode != c.want {
			t.Errorf("plan_cache_mode = %q, want %q", mode, c.want)
		}
	}
}
