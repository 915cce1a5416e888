package projections

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/livecore/livecore/internal/testenv"
)

type testRow struct {
	ID, Group string
	N         int64
	Note      string
}

func testSpec(name string, appendOnly bool) Spec[testRow] {
	return Spec[testRow]{
		Name: name, Cols: []string{"id", "grp", "n", "note"}, Key: 1, Append: appendOnly,
		Fields:  func(r *testRow) []any { return []any{&r.ID, &r.Group, &r.N, &r.Note} },
		Indexes: []string{"CREATE INDEX {{table}}_grp ON {{table}} (grp)"},
	}
}

// TestSaveAndLoad round-trips rows through Save and Load on both dialects
// (SQLite: multi-row VALUES in power-of-two chunks and padded IN lists;
// PostgreSQL: one unnest upsert and one = ANY per call), with more rows
// than one SQLite chunk holds, text that needs quoting, an upsert of
// existing keys, and an append-only table that refuses a key twice.
func TestSaveAndLoad(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			var db *DB
			var err error
			if dialect == "sqlite" {
				db, err = OpenSQLite(filepath.Join(t.TempDir(), "rows.db"))
			} else {
				db, err = OpenPostgres(ctx, testenv.FreshSchema(t, testenv.PostgresDSN(t)))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			upsert, appendOnly := testSpec("t_rows", false), testSpec("t_log", true)
			if err := db.InTx(ctx, func(tx *sql.Tx) error {
				for _, tbl := range []Table{upsert.Table(), appendOnly.Table()} {
					for _, s := range append([]string{tbl.DDL}, tbl.Indexes...) {
						if _, err := tx.ExecContext(ctx, strings.ReplaceAll(s, "{{table}}", physical(tbl.Name, 1))); err != nil {
							return err
						}
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			inTx := func(fn func(Tx) error) error {
				return db.InTx(ctx, func(sqlTx *sql.Tx) error {
					return fn(Tx{Tx: sqlTx, Dialect: db.Dialect, generation: 1, db: db})
				})
			}
			const n = 700 // more than maxSaveRows and maxLoadVals
			var rows []*testRow
			for i := range n {
				rows = append(rows, &testRow{ID: fmt.Sprintf("r%04d", i), Group: fmt.Sprintf("g%d", i%7), N: int64(i) - 350, Note: fmt.Sprintf("it's \"%d\", {a,b}\\ é", i)})
			}
			if err := inTx(func(tx Tx) error { return Save(ctx, tx, upsert, rows) }); err != nil {
				t.Fatal(err)
			}
			for _, r := range rows[:300] { // change some, upsert them again
				r.N *= 10
				r.Note += " (changed)"
			}
			if err := inTx(func(tx Tx) error { return Save(ctx, tx, upsert, rows[:300]) }); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range rows {
				ids = append(ids, r.ID)
			}
			var got []testRow
			if err := inTx(func(tx Tx) error {
				got = got[:0]
				return Load(ctx, tx, upsert, "id", append(ids, "missing"), func(r *testRow) { got = append(got, *r) })
			}); err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(got, func(a, b testRow) int { return strings.Compare(a.ID, b.ID) })
			if len(got) != n {
				t.Fatalf("loaded %d rows, saved %d", len(got), n)
			}
			for i, r := range rows {
				if got[i] != *r {
					t.Fatalf("row %d: loaded %+v, saved %+v", i, got[i], *r)
				}
			}
			var byGroup int
			if err := inTx(func(tx Tx) error {
				byGroup = 0
				return Load(ctx, tx, upsert, "grp", []string{"g3", "g3", "g5"}, func(*testRow) { byGroup++ })
			}); err != nil {
				t.Fatal(err)
			}
			if byGroup != 200 {
				t.Errorf("loaded %d rows of groups g3 and g5, want 200", byGroup)
			}
			if err := inTx(func(tx Tx) error {
				return Load(ctx, tx, upsert, "id", nil, func(*testRow) { t.Error("row for no keys") })
			}); err != nil {
				t.Fatal(err)
			}

			if err := inTx(func(tx Tx) error { return Save(ctx, tx, appendOnly, rows) }); err != nil {
				t.Fatal(err)
			}
			err = inTx(func(tx Tx) error { return Save(ctx, tx, appendOnly, rows[10:11]) })
			if err == nil {
				t.Fatal("an append-only table took the same key twice")
			}
			t.Logf("append-only table, key saved twice: %v", err)
		})
	}
}

// TestSQLiteWriterSettings checks the writer connection's pragmas that
// OpenSQLite's speed and durability depend on.
func TestSQLiteWriterSettings(t *testing.T) {
	db, err := OpenSQLite(filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "1", "temp_store": "2", "busy_timeout": "10000"} {
		var got string
		if err := db.w.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}
