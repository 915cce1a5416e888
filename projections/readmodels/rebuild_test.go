package readmodels_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/livecore/livecore/internal/testenv"
	"github.com/livecore/livecore/projections"
	"github.com/livecore/livecore/projections/journal"
	"github.com/livecore/livecore/projections/readmodels"
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

// injectSerializationFailures makes about one commit in four of a
// transaction that moved a checkpoint fail with SQLSTATE 40001, at COMMIT
// (a deferred constraint trigger); lc_faults counts them.
const injectSerializationFailures = `
CREATE SEQUENCE lc_faults;
CREATE FUNCTION lc_random_commit_failure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF random() < 0.25 THEN
		PERFORM nextval('lc_faults');
		RAISE EXCEPTION 'injected serialization failure at commit' USING ERRCODE = '40001';
	END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER lc_random_commit_failure AFTER UPDATE ON lc_checkpoints
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lc_random_commit_failure();`

// killUntilCaughtUp runs the projections in short-lived runners stopped at
// random moments (a stop cancels the transaction in flight, as a kill
// would) until every checkpoint reaches head; it returns the stops.
func killUntilCaughtUp(t *testing.T, db *projections.DB, src projections.Source, projs []projections.Projection, head uint64, seed uint64, maxRun time.Duration) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	stops, stalled, initial := 0, 0, maxRun
	var last int64
	deadline := time.Now().Add(90 * time.Second)
	for {
		r, err := projections.NewRunner(projections.Config{DB: db, Source: src, Projections: projs, BatchSize: 20 + rng.IntN(100)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+rng.Int64N(int64(maxRun))))
		_ = r.Run(ctx)
		cancel()
		stops++
		var behind int
		var sum int64
		if err := db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(position), 0) FROM lc_checkpoints WHERE position < $1`, int64(head)).Scan(&behind, &sum); err != nil {
			t.Fatal(err)
		}
		if behind == 0 {
			return stops
		}
		if stops >= 300 {
			// Enough kills: let the rest finish quickly.
			maxRun = min(maxRun*2, time.Second)
		} else if sum == last {
			// No progress for a while (a slow machine, the race
			// detector): let the next runs live longer.
			if stalled++; stalled >= 5 {
				maxRun, stalled = min(maxRun*3/2+time.Millisecond, time.Second), 0
			}
		} else {
			maxRun, stalled = max(initial, maxRun*2/3), 0
		}
		last = sum
		if time.Now().After(deadline) {
			t.Fatalf("not caught up after %d stops", stops)
		}
	}
}

// TestKilledProjectorsWithSerializationFailuresEqualRebuild is the read
// models' and the journal's exactly-once test on PostgreSQL: projectors stopped at random
// moments while a quarter of commits fail with 40001 must leave exactly
// the rows a clean rebuild from position 1 produces (0 differing rows).
// The clean builds on PostgreSQL and SQLite must agree too.
func TestKilledProjectorsWithSerializationFailuresEqualRebuild(t *testing.T) {
	store, reg, head := history(t, 5, 150)
	projs := append(readmodels.All(reg), journal.Projection{Registry: reg})

	live := openPostgres(t)
	r, _ := projections.NewRunner(projections.Config{DB: live, Source: store, Projections: projs})
	if err := r.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Exec(injectSerializationFailures); err != nil {
		t.Fatal(err)
	}
	stops := killUntilCaughtUp(t, live, store, projs, head, 1, 40*time.Millisecond)
	var faults int64
	if err := live.QueryRow(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM lc_faults`).Scan(&faults); err != nil {
		t.Fatal(err)
	}

	fresh := openPostgres(t)
	catchUp(t, fresh, store, projs, head)
	diff, rows := differing(t, dump(t, live, projs), dump(t, fresh, projs))
	if diff != 0 {
		t.Errorf("PostgreSQL: %d rows differ between the killed live run and a rebuild", diff)
	}
	t.Logf("PostgreSQL: %d events, projectors stopped %d times, %d commit-time 40001s injected and retried: %d rows, %d differing from a rebuild from zero", head, stops, faults, rows, diff)

	lite := openSQLite(t)
	catchUp(t, lite, store, projs, head)
	diff, rows = differing(t, dump(t, fresh, projs), dump(t, lite, projs))
	if diff != 0 {
		t.Errorf("%d rows differ between PostgreSQL and SQLite", diff)
	}
	t.Logf("SQLite rebuild vs PostgreSQL rebuild: %d rows, %d differing", rows, diff)
}

// TestKilledProjectorsEqualRebuildSQLite is the same on SQLite (one
// writer, no serialization failures): random stops only.
func TestKilledProjectorsEqualRebuildSQLite(t *testing.T) {
	store, reg, head := history(t, 6, 150)
	projs := append(readmodels.All(reg), journal.Projection{Registry: reg})
	live := openSQLite(t)
	r, _ := projections.NewRunner(projections.Config{DB: live, Source: store, Projections: projs})
	if err := r.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	stops := killUntilCaughtUp(t, live, store, projs, head, 2, 3*time.Millisecond)
	fresh := openSQLite(t)
	catchUp(t, fresh, store, projs, head)
	diff, rows := differing(t, dump(t, live, projs), dump(t, fresh, projs))
	if diff != 0 {
		t.Errorf("%d rows differ between the killed live run and a rebuild", diff)
	}
	t.Logf("SQLite: %d events, projectors stopped %d times: %d rows, %d differing from a rebuild from zero", head, stops, rows, diff)
}
