package stack_test

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/livecore/livecore/internal/stack"
	"github.com/livecore/livecore/projections/readmodels"
)

// TestReadModelsRebuiltAfterMachineCrash: by default the product writes
// its SQLite read models without fsync, with a marker of the running boot
// beside them. A clean stop syncs them and removes the marker. A marker of
// another boot (the operating system stopped while they were open) makes
// the next start delete them (pages may be lost: here an order's row) and
// project the event log again: the same orders, line for line.
func TestReadModelsRebuiltAfterMachineCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the whole product twice")
	}
	ctx := context.Background()
	dir := t.TempDir()
	lean := func(c *stack.Config) { c.NoTemporal, c.NoKafka = true, true }
	p, stop := bootProductIn(t, dir, lean)
	key := p.s.DemoKeys["checkout"]
	for range 3 {
		p.want(t, call{method: "POST", path: "/v1/orders", key: key, idem: nextKey("rebuild"), body: cartBody(nil), strict: true}, http.StatusCreated)
	}
	marker := filepath.Join(dir, "readmodels.db.unsynced")
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("no marker while the product runs: %v", err)
	}
	orders := func(p *product) []readmodels.Order {
		t.Helper()
		if err := p.s.WaitCaughtUp(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		rows, err := readmodels.ListOrders(ctx, p.s.ReadDB, "demo", readmodels.OrderFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var out []readmodels.Order
		for _, r := range rows {
			o, err := readmodels.GetOrder(ctx, p.s.ReadDB, "demo", r.OrderID)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, o)
		}
		return out
	}
	before := orders(p)
	if len(before) != 3 {
		t.Fatalf("read model has %d orders, want 3", len(before))
	}
	stop()
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("marker after a clean stop: %v, want it removed", err)
	}

	// The operating system stopped with the read models open, and they
	// lost the pages of an order's rows.
	db, err := sql.Open("sqlite", filepath.Join(dir, "readmodels.db"))
	if err != nil {
		t.Fatal(err)
	}
	var table string
	if err := db.QueryRow(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rm_orders%'`).Scan(&table); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM `+table+` WHERE order_id = $1`, before[0].OrderID); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(marker, []byte("boot-of-an-earlier-run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _ = bootProductIn(t, dir, lean)
	if !bytes.Contains(p.logs.Bytes(), []byte("read models deleted")) {
		t.Fatalf("no warning that the read models were deleted; logs:\n%s", p.logs.Bytes())
	}
	after := orders(p)
	if len(after) != len(before) {
		t.Fatalf("rebuilt read model has %d orders, want %d", len(after), len(before))
	}
	for i := range before {
		if !reflect.DeepEqual(before[i], after[i]) {
			t.Fatalf("order %d rebuilt differently:\nbefore %+v\nafter  %+v", i, before[i], after[i])
		}
	}
}

// TestSyncReadModels: with SyncReadModels the read models keep SQLite's
// fsyncs (synchronous=NORMAL) and no marker is written.
func TestSyncReadModels(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the whole product")
	}
	dir := t.TempDir()
	p, _ := bootProductIn(t, dir, func(c *stack.Config) { c.NoTemporal, c.NoKafka, c.SyncReadModels = true, true, true })
	if _, err := os.Stat(filepath.Join(dir, "readmodels.db.unsynced")); !os.IsNotExist(err) {
		t.Fatalf("marker with SyncReadModels: %v, want none", err)
	}
	var mode int
	if err := p.s.ReadDB.InTx(context.Background(), func(tx *sql.Tx) error {
		return tx.QueryRow("PRAGMA synchronous").Scan(&mode)
	}); err != nil {
		t.Fatal(err)
	}
	if mode != 1 {
		t.Fatalf("PRAGMA synchronous = %d with SyncReadModels, want 1 (NORMAL)", mode)
	}
}
