package open

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/livecore/livecore/adapters/eventstore/storebench"
	"github.com/livecore/livecore/domain/event"
)

// BenchConfig names the stores to compare side by side; a store whose
// field is empty is left out. Pebble comes first, so the table's ratio
// column is Pebble / other.
type BenchConfig struct {
	// Dir holds a fresh Pebble data directory per workload (removed after).
	Dir string
	// PostgresDSN: each workload runs in a fresh schema, dropped after.
	PostgresDSN string
	// KurrentURL: each workload runs in a fresh Namespace (ESDB keeps it).
	KurrentURL string
}

var benchSeq atomic.Int64

// BenchTargets returns storebench targets for the configured stores. The
// SQL target's note records the server's fsync and synchronous_commit
// settings, read once here, so the table states the durability compared.
func BenchTargets(ctx context.Context, c BenchConfig) []storebench.Target {
	run := time.Now().UnixNano()
	var out []storebench.Target
	if c.Dir != "" {
		out = append(out, storebench.Target{
			Name: Pebble,
			Note: "fsync per group commit (Pebble WAL sync) before each acknowledgement",
			Open: func(ctx context.Context) (event.Store, error) {
				dir := filepath.Join(c.Dir, fmt.Sprintf("pebble-%d-%d", run, benchSeq.Add(1)))
				s, err := Open(ctx, Config{Kind: Pebble, Dir: dir})
				if err != nil {
					return nil, err
				}
				return closeThen(s, func() { os.RemoveAll(dir) }), nil
			},
		})
	}
	if c.PostgresDSN != "" {
		note := pgDurability(ctx, c.PostgresDSN)
		for _, group := range []bool{false, true} {
			name, how := SQL, "one transaction per append"
			if group {
				name, how = SQL+"-group", "group commit"
			}
			out = append(out, storebench.Target{
				Name: name,
				Note: note + "; " + how,
				Open: func(ctx context.Context) (event.Store, error) {
					schema := fmt.Sprintf("lc_bench_%d_%d", run, benchSeq.Add(1))
					dsn, drop, err := freshSchema(ctx, c.PostgresDSN, schema)
					if err != nil {
						return nil, err
					}
					s, err := Open(ctx, Config{Kind: SQL, DSN: dsn, NoGroupCommit: !group})
					if err != nil {
						drop()
						return nil, err
					}
					return closeThen(s, drop), nil
				},
			})
		}
	}
	if c.KurrentURL != "" {
		out = append(out, storebench.Target{
			Name: KurrentDB,
			Note: "acknowledged by the server after its own fsync (server settings not read)",
			Open: func(ctx context.Context) (event.Store, error) {
				return Open(ctx, Config{Kind: KurrentDB, DSN: c.KurrentURL, Namespace: fmt.Sprintf("lcbench%d-%d-", run, benchSeq.Add(1))})
			},
		})
	}
	return out
}

// closingStore runs after once the store is closed.
type closingStore struct {
	event.Store
	after func()
}

func closeThen(s event.Store, after func()) event.Store { return &closingStore{s, after} }

func (c *closingStore) Close() error {
	err := c.Store.Close()
	if c.after != nil {
		c.after()
		c.after = nil
	}
	return err
}

// freshSchema creates schema and returns a DSN that uses it and a func that
// drops it.
func freshSchema(ctx context.Context, dsn, schema string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, fmt.Errorf("bench: connect: %s", err.Error())
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("bench: create schema: %s", err.Error())
	}
	drop := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(dctx, dsn); err == nil {
			c.Exec(dctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			c.Close(dctx)
		}
	}
	return withSearchPath(dsn, schema), drop, nil
}

// withSearchPath adds search_path to a URL or key=value DSN.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return strings.TrimSpace(dsn) + " search_path=" + schema
}

// pgDurability reports the server's durability settings.
func pgDurability(ctx context.Context, dsn string) string {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "durability settings unknown: " + err.Error()
	}
	defer conn.Close(ctx)
	var fsync, syncCommit, version string
	if err := conn.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('server_version')`).
		Scan(&fsync, &syncCommit, &version); err != nil {
		return "durability settings unknown: " + err.Error()
	}
	return fmt.Sprintf("PostgreSQL %s, fsync=%s, synchronous_commit=%s (WAL flushed before each acknowledgement)", version, fsync, syncCommit)
}
