package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/projections"
)

// counter is a test projection: events and the last version per stream.
type counter struct{ version int }

func (c counter) Name() string { return "counter" }
func (c counter) Version() int { return c.version }
func (c counter) Tables() []projections.Table {
	return []projections.Table{{
		Name: "rm_counts",
		DDL:  `CREATE TABLE {{table}} (stream TEXT PRIMARY KEY, events BIGINT NOT NULL, last_version BIGINT NOT NULL, last_position BIGINT NOT NULL)`,
	}}
}
func (c counter) Apply(ctx context.Context, tx projections.Tx, batch []event.Envelope) error {
	for _, e := range batch {
		_, err := tx.ExecContext(ctx, `INSERT INTO `+tx.Table("rm_counts")+` (stream, events, last_version, last_position) VALUES ($1, 1, $2, $3)
			ON CONFLICT (stream) DO UPDATE SET events = `+tx.Table("rm_counts")+`.events + 1, last_version = $2, last_position = $3`,
			e.StreamID, int64(e.Version), int64(e.Position))
		if err != nil {
			return err
		}
	}
	return nil
}

func appendN(t testing.TB, s event.Appender, streams, perStream int, seed uint64) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	n := 0
	next := make([]int, streams)
	for n < streams*perStream {
		i := rng.IntN(streams)
		if next[i] == perStream {
			continue
		}
		next[i]++
		stream := fmt.Sprintf("thing-%d", i)
		_, err := s.Append(context.Background(), stream, event.Any, []event.Proposed{{
			ID: event.DeriveID(fmt.Sprintf("%s/%d/%d", stream, next[i], seed), 0), Type: "thing.happened.v1", SchemaVersion: 1, Data: []byte(`{}`),
		}})
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

type row struct {
	events, lastVersion, lastPosition int64
}

func readCounts(t testing.TB, db *projections.DB) map[string]row {
	t.Helper()
	rows, err := db.Query(`SELECT stream, events, last_version, last_position FROM rm_counts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]row{}
	for rows.Next() {
		var s string
		var r row
		if err := rows.Scan(&s, &r.events, &r.lastVersion, &r.lastPosition); err != nil {
			t.Fatal(err)
		}
		out[s] = r
	}
	return out
}

func openSQLite(t testing.TB) *projections.DB {
	t.Helper()
	db, err := projections.OpenSQLite(filepath.Join(t.TempDir(), "rm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func runUntil(t testing.TB, r *projections.Runner, name string, pos uint64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := r.WaitFor(wctx, name, pos); err != nil {
		cancel()
		t.Fatalf("%v (run: %v)", err, <-done)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// TestKilledProjectorAppliesEachEventOnce stops the runner at random
// moments (as a kill would: mid-batch work is rolled back with its
// transaction) and checks the read model equals one built in one go.
func TestKilledProjectorAppliesEachEventOnce(t *testing.T) {
	store := memory.New(memory.Config{})
	total := appendN(t, store, 100, 60, 1)
	db := openSQLite(t)
	stops := 0
	if r, err := projections.NewRunner(projections.Config{DB: db, Source: store, Projections: []projections.Projection{counter{1}}}); err != nil {
		t.Fatal(err)
	} else if err := r.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	maxRun, stalled, last := 1500*time.Microsecond, 0, int64(-1)
	for {
		r, err := projections.NewRunner(projections.Config{DB: db, Source: store, Projections: []projections.Projection{counter{1}}, BatchSize: 37})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Microsecond+time.Duration(rand.Int64N(int64(maxRun))))
		_ = r.Run(ctx)
		cancel()
		stops++
		var pos int64
		if err := db.QueryRow(`SELECT position FROM lc_checkpoints WHERE name = 'counter'`).Scan(&pos); err != nil {
			t.Fatal(err)
		}
		if pos == int64(total) || stops > 5000 {
			break
		}
		// A slow machine (the race detector) may need longer runs to
		// make progress at all.
		if pos == last {
			if stalled++; stalled >= 5 {
				maxRun, stalled = min(maxRun*3/2, time.Second), 0
			}
		} else {
			stalled = 0
		}
		last = pos
	}
	got := readCounts(t, db)
	fresh := openSQLite(t)
	r, _ := projections.NewRunner(projections.Config{DB: fresh, Source: store, Projections: []projections.Projection{counter{1}}})
	runUntil(t, r, "counter", uint64(total))
	want := readCounts(t, fresh)
	diff := 0
	for s, w := range want {
		if got[s] != w {
			diff++
			t.Errorf("%s: after %d stops %+v, fresh %+v", s, stops, got[s], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("rows: %d vs %d", len(got), len(want))
	}
	t.Logf("%d events, projector stopped %d times, %d differing rows against a fresh build", total, stops, diff)
}

// TestVersionBumpRebuildsAndSwaps builds v1, bumps to v2 and checks the
// view serves the rebuilt tables, equal to the live ones, with the old
// generation dropped.
func TestVersionBumpRebuildsAndSwaps(t *testing.T) {
	store := memory.New(memory.Config{})
	total := appendN(t, store, 20, 10, 2)
	db := openSQLite(t)
	r1, _ := projections.NewRunner(projections.Config{DB: db, Source: store, Projections: []projections.Projection{counter{1}}})
	runUntil(t, r1, "counter", uint64(total))
	before := readCounts(t, db)

	total += appendN(t, store, 20, 5, 3)
	r2, _ := projections.NewRunner(projections.Config{DB: db, Source: store, Projections: []projections.Projection{counter{2}}})
	runUntil(t, r2, "counter", uint64(total))
	// The runner serves v1 until v2 catches up; wait for the swap.
	deadline := time.Now().Add(20 * time.Second)
	var gen, version int
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_ = r2.Run(ctx)
		cancel()
		if err := db.QueryRow(`SELECT generation, version FROM lc_projections WHERE name = 'counter'`).Scan(&gen, &version); err != nil {
			t.Fatal(err)
		}
		if version == 2 {
			break
		}
	}
	if gen != 2 || version != 2 {
		t.Fatalf("after rebuild: generation %d version %d, want 2 and 2", gen, version)
	}
	after := readCounts(t, db)
	if len(after) != len(before) {
		t.Fatalf("rows %d, want %d", len(after), len(before))
	}
	for s, r := range after {
		if r.events != before[s].events+5 {
			t.Errorf("%s: %d events after rebuild, want %d", s, r.events, before[s].events+5)
		}
	}
	var n int
	err := db.QueryRow(`SELECT count(*) FROM rm_counts_g1`).Scan(&n)
	if err == nil {
		t.Errorf("old generation table still exists with %d rows", n)
	}
}

// TestWaitForSeesOwnWrite appends while the runner runs and waits for the
// append's position to be visible.
func TestWaitForSeesOwnWrite(t *testing.T) {
	store := memory.New(memory.Config{})
	db := openSQLite(t)
	r, _ := projections.NewRunner(projections.Config{DB: db, Source: store, Projections: []projections.Projection{counter{1}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done }) // before the database closes
	for i := range 20 {
		res, err := store.Append(ctx, "w-1", event.Any, []event.Proposed{{ID: event.DeriveID("w", i), Type: "w.done.v1", SchemaVersion: 1, Data: []byte(`{}`)}})
		if err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		if err := r.WaitFor(wctx, "counter", res.LastPosition); err != nil {
			t.Fatal(err)
		}
		wcancel()
		var events int64
		if err := db.QueryRow(`SELECT events FROM rm_counts WHERE stream = 'w-1'`).Scan(&events); err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		if events != int64(i+1) {
			t.Fatalf("after WaitFor(%d): %d events visible, want %d", res.LastPosition, events, i+1)
		}
	}
}
