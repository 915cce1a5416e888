package readmodels_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/projections"
	"github.com/livecore/livecore/projections/simulate"
)

func history(t testing.TB, seed uint64, orders int) (*memory.Store, *event.Registry, uint64) {
	t.Helper()
	sim := simulate.New(simulate.Config{Seed: seed, Orders: orders})
	store := memory.New(memory.Config{Now: sim.Now})
	if _, err := sim.Run(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	head, _ := store.Head(context.Background())
	return store, simulate.Registry(), head
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

// catchUp runs the projections until each has applied head.
func catchUp(t testing.TB, db *projections.DB, src projections.Source, projs []projections.Projection, head uint64) {
	t.Helper()
	runAll(t, projections.Config{DB: db, Source: src, Projections: projs}, head)
}

// runAll runs projs in one runner with cfg until each has applied head
// and returns the runner's sharing counts.
func runAll(t testing.TB, cfg projections.Config, head uint64) projections.SharingStats {
	t.Helper()
	r, err := projections.NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 120*time.Second)
	defer wcancel()
	for _, p := range cfg.Projections {
		if err := r.WaitFor(wctx, p.Name(), head); err != nil {
			cancel()
			t.Fatalf("%v (run: %v)", err, <-done)
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	return r.Sharing()
}

// dump reads every table of projs through its view, each row formatted
// as text, sorted.
func dump(t testing.TB, db *projections.DB, projs []projections.Projection) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, p := range projs {
		for _, tb := range p.Tables() {
			rows, err := db.Query(`SELECT * FROM ` + tb.Name)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			var lines []string
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				var b strings.Builder
				for i, v := range vals {
					if i > 0 {
						b.WriteByte('|')
					}
					if bs, ok := v.([]byte); ok {
						v = string(bs)
					}
					fmt.Fprint(&b, v)
				}
				lines = append(lines, b.String())
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
			sort.Strings(lines)
			out[tb.Name] = lines
		}
	}
	return out
}

// differing counts rows present in one dump and not the other.
func differing(t testing.TB, a, b map[string][]string) (diff, total int) {
	t.Helper()
	for name, rows := range a {
		set := map[string]int{}
		for _, r := range rows {
			set[r]++
		}
		for _, r := range b[name] {
			set[r]--
		}
		for r, n := range set {
			if n != 0 {
				diff += abs(n)
				if diff <= 5 {
					t.Logf("%s: row differs (%+d): %s", name, n, r)
				}
			}
		}
		total += len(rows)
	}
	return diff, total
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
