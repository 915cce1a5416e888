package projections

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/livecore/livecore/internal/durable"
)

// SQLiteOptions tune OpenSQLiteWith.
type SQLiteOptions struct {
	// Unsynced writes the read models without fsync (SQLite's
	// synchronous=OFF) and rebuilds them after the machine stops
	// uncleanly. Only for a database that holds nothing but projections
	// of the event log, which can always be projected again.
	//
	// Why: order IDs are digests, so each order's rows land on random
	// pages; synced, SQLite wrote each such page twice per checkpoint
	// (the WAL synced, then the page into the database file, synced),
	// ~20 KB of disk writes per order: three quarters of what the product
	// wrote, and the event store's fsyncs, which every request waits
	// for, queued behind them. Unsynced, a page rewritten many times a
	// second reaches the disk about once a second, in an even stream (see
	// pace). bench api at a fixed 4,400 orders/s, 4 alternating pairs:
	// 2,510 MiB written to disk per run -> 860 MiB; p50 3.4-3.7 -> 2.9-3.1
	// ms; p99 13.7-18.3 -> 10.6-12.1 ms.
	//
	// What it costs: SQLite promises a database written without fsync
	// survives a crash of the process (the kernel still holds the pages)
	// but not of the operating system or a power cut, after which it may
	// be corrupt. A marker file next to the database (<path>.unsynced)
	// holds the boot ID of the running system while an unsynced writer
	// has it open; Close syncs the database and removes the marker. An
	// open that finds a marker of another boot knows pages may have been
	// lost: an Unsynced open deletes the database, so the projections
	// start again from the beginning of the log, and any other open fails
	// with ErrReadModelsSuspect. Without a boot ID (not Linux) Unsynced
	// has no effect.
	Unsynced bool
	// Logger gets the warning when suspect read models are deleted.
	// Default slog.Default().
	Logger *slog.Logger
}

// ErrReadModelsSuspect is returned by OpenSQLiteWith (without Unsynced) for
// a database an unsynced writer had open when the operating system
// stopped: it may have lost pages. The next Unsynced open (livecore dev,
// livecore dr node) rebuilds it.
var ErrReadModelsSuspect = errors.New("read models were being written without fsync when the operating system stopped; start livecore dev (or dr node) on this data dir to rebuild them from the event log")

// writebackPass is how long an unsynced writer's pacer takes to start
// writing back every dirty page of the database and its WAL once, in
// writebackSteps even steps (see pace). Nothing depends on it for safety
// (the marker does that): it bounds how much the kernel has to write at
// once, and how long a rewritten page waits (so that it is written once
// however often it changed).
const (
	writebackPass  = time.Second
	writebackSteps = 50
)

// readBootID reads the running system's boot ID (tests replace it).
var readBootID = func() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("empty boot ID")
	}
	return id, nil
}

// unsyncedGuard is an unsynced writer's marker and pacer.
type unsyncedGuard struct {
	path, marker string
	step         time.Duration // between the pacer's steps
	stop         chan struct{}
	done         sync.WaitGroup
}

// checkMarker handles a marker left by an earlier unsynced writer: one of
// this boot crashed with the process only (the kernel kept its pages) and
// needs nothing; one of another boot means the database is suspect.
// An Unsynced open deletes a suspect database; any other fails.
func checkMarker(path string, o SQLiteOptions, log *slog.Logger) error {
	marker := path + ".unsynced"
	b, err := os.ReadFile(marker)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	was := strings.TrimSpace(string(b))
	boot, bootErr := readBootID()
	if bootErr == nil && boot == was {
		return nil
	}
	if !o.Unsynced {
		return fmt.Errorf("open sqlite %s (written unsynced in boot %s): %w", path, was, ErrReadModelsSuspect)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("discard suspect read models: %w", err)
		}
	}
	if err := durable.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("discard suspect read models: %w", err)
	}
	log.Warn("read models deleted: they were being written without fsync when the operating system stopped; the projections rebuild them from the event log",
		"path", path, "written_in_boot", was)
	return nil
}

// startUnsynced writes the marker (durably, before any unsynced write)
// and starts the pacer. It returns nil without a boot ID: the caller then
// opens the database synced.
func startUnsynced(path string) (*unsyncedGuard, error) {
	boot, err := readBootID()
	if err != nil {
		return nil, nil
	}
	g := &unsyncedGuard{path: path, marker: path + ".unsynced", step: writebackPass / writebackSteps, stop: make(chan struct{})}
	if err := durable.WriteFile(g.marker, []byte(boot+"\n")); err != nil {
		return nil, fmt.Errorf("open sqlite %s: marker: %w", path, err)
	}
	g.done.Go(g.pace)
	return g, nil
}

// syncFiles fsyncs the database and its WAL, those that exist.
func (g *unsyncedGuard) syncFiles() error {
	var errs []error
	for _, name := range []string{g.path, g.path + "-wal"} {
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, f.Sync(), f.Close())
	}
	return errors.Join(errs...)
}

// close stops the pacer and, if the database closed cleanly (closeErr nil),
// syncs it and removes the marker: from then on nothing of it is only in
// the kernel's memory.
func (g *unsyncedGuard) close(closeErr error) error {
	close(g.stop)
	g.done.Wait()
	if closeErr != nil {
		return nil // keep the marker: the next open of another boot rebuilds
	}
	if err := g.syncFiles(); err != nil {
		return fmt.Errorf("sync read models: %w", err)
	}
	if err := os.Remove(g.marker); err != nil {
		return fmt.Errorf("remove %s: %w", g.marker, err)
	}
	return durable.SyncDir(filepath.Dir(g.path))
}
