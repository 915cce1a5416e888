package projections

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withBootID makes readBootID return id (or fail, for "") for the test.
func withBootID(t *testing.T, id string) {
	t.Helper()
	old := readBootID
	t.Cleanup(func() { readBootID = old })
	readBootID = func() (string, error) {
		if id == "" {
			return "", errors.New("no boot ID here")
		}
		return id, nil
	}
}

func synchronousOf(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		return tx.QueryRow("PRAGMA synchronous").Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func insertRow(t *testing.T, db *DB, v int) {
	t.Helper()
	if err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		if _, err := tx.Exec("CREATE TABLE IF NOT EXISTS t (v INTEGER)"); err != nil {
			return err
		}
		_, err := tx.Exec("INSERT INTO t VALUES ($1)", v)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func rowCount(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	err := db.QueryRow("SELECT count(*) FROM t").Scan(&n)
	if err != nil && strings.Contains(err.Error(), "no such table") {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// crash closes db's pools as a killed process would leave them: the
// marker stays and nothing is synced.
func crash(t *testing.T, db *DB) {
	t.Helper()
	db.unsynced.stop <- struct{}{} // the pacer takes it and returns
	db.unsynced.done.Wait()
	db.stmts.close()
	if err := errors.Join(db.DB.Close(), db.w.Close()); err != nil {
		t.Fatal(err)
	}
}

func TestUnsyncedWriterMarksAndCleansUp(t *testing.T) {
	withBootID(t, "boot-a")
	path := filepath.Join(t.TempDir(), "rm.db")
	db, err := OpenSQLiteWith(path, SQLiteOptions{Unsynced: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := synchronousOf(t, db); got != 0 {
		t.Fatalf("unsynced writer: PRAGMA synchronous = %d, want 0 (OFF)", got)
	}
	if b, err := os.ReadFile(path + ".unsynced"); err != nil || strings.TrimSpace(string(b)) != "boot-a" {
		t.Fatalf("marker while open: %q, %v; want boot-a", b, err)
	}
	insertRow(t, db, 1)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".unsynced"); !os.IsNotExist(err) {
		t.Fatalf("marker after a clean close: %v, want it removed", err)
	}

	// A synced open (livecore audit) of a cleanly closed database: NORMAL,
	// and the row is there.
	db, err = OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := synchronousOf(t, db); got != 1 {
		t.Fatalf("synced writer: PRAGMA synchronous = %d, want 1 (NORMAL)", got)
	}
	if n := rowCount(t, db); n != 1 {
		t.Fatalf("rows after reopening: %d, want 1", n)
	}
}

// crashedInBootA leaves a database of rows rows written unsynced in boot
// "boot-a" by a writer that crashed; it returns its path.
func crashedInBootA(t *testing.T, rows int) string {
	t.Helper()
	withBootID(t, "boot-a")
	path := filepath.Join(t.TempDir(), "rm.db")
	db, err := OpenSQLiteWith(path, SQLiteOptions{Unsynced: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		insertRow(t, db, i)
	}
	crash(t, db)
	return path
}

func TestUnsyncedProcessCrashKeepsTheReadModels(t *testing.T) {
	path := crashedInBootA(t, 2)

	// Same boot: the kernel kept every page; a synced reader and the next
	// unsynced writer both use the database as it is.
	r, err := OpenSQLite(path)
	if err != nil {
		t.Fatalf("synced open after a process crash in the same boot: %v", err)
	}
	if n := rowCount(t, r); n != 2 {
		t.Fatalf("rows seen by a synced reader: %d, want 2", n)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := OpenSQLiteWith(path, SQLiteOptions{Unsynced: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := rowCount(t, db); n != 2 {
		t.Fatalf("rows after a process crash: %d, want 2 (nothing rebuilt)", n)
	}
}

func TestUnsyncedMachineCrashRebuilds(t *testing.T) {
	path := crashedInBootA(t, 1)

	// The machine restarted (another boot ID): pages may be lost.
	withBootID(t, "boot-b")
	if _, err := OpenSQLite(path); !errors.Is(err, ErrReadModelsSuspect) {
		t.Fatalf("synced open of a suspect database: %v, want ErrReadModelsSuspect", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a synced open must leave the suspect database alone: %v", err)
	}
	var logged strings.Builder
	db, err := OpenSQLiteWith(path, SQLiteOptions{Unsynced: true, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if n := rowCount(t, db); n != -1 {
		t.Fatalf("table after a machine crash: %d rows, want the database deleted (no table)", n)
	}
	if !strings.Contains(logged.String(), "read models deleted") || !strings.Contains(logged.String(), "boot-a") {
		t.Fatalf("no warning naming the old boot: %q", logged.String())
	}
	if b, _ := os.ReadFile(path + ".unsynced"); strings.TrimSpace(string(b)) != "boot-b" {
		t.Fatalf("marker %q, want boot-b", b)
	}
	insertRow(t, db, 3)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestUnsyncedWithoutBootIDStaysSynced(t *testing.T) {
	withBootID(t, "")
	path := filepath.Join(t.TempDir(), "rm.db")
	db, err := OpenSQLiteWith(path, SQLiteOptions{Unsynced: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := synchronousOf(t, db); got != 1 {
		t.Fatalf("without a boot ID: PRAGMA synchronous = %d, want 1 (NORMAL)", got)
	}
	if _, err := os.Stat(path + ".unsynced"); !os.IsNotExist(err) {
		t.Fatalf("marker without a boot ID: %v, want none", err)
	}
}
