// Package open chooses and opens an event store from configuration: the
// embedded Pebble store (default), KurrentDB/EventStoreDB, or PostgreSQL.
//
// Commands map flags onto Config and fill the rest from the environment:
//
//	cfg := open.Config{Kind: *flagEventStore, Dir: dataDir + "/events"}
//	cfg = open.FromEnv(cfg, os.Getenv)
//	store, err := open.Open(ctx, cfg)
//
// Environment (used only for fields left empty):
//
//	LIVECORE_EVENT_STORE            pebble | kurrentdb | sql
//	LIVECORE_EVENTSTORE_DIR         pebble data directory
//	LIVECORE_EVENTSTORE_DSN         kurrentdb: esdb://... URL; sql: PostgreSQL DSN
//	LIVECORE_EVENTSTORE_NAMESPACE   kurrentdb: stream-name prefix
package open

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/kurrentdb"
	"github.com/livecore/livecore/adapters/eventstore/pebble"
	sqlstore "github.com/livecore/livecore/adapters/eventstore/sql"
	"github.com/livecore/livecore/domain/event"
)

// Store kinds.
const (
	Pebble    = "pebble"
	KurrentDB = "kurrentdb"
	SQL       = "sql"
)

// Kinds lists the accepted Config.Kind values, the default first.
func Kinds() []string { return []string{Pebble, KurrentDB, SQL} }

// Environment variable names read by FromEnv.
const (
	EnvKind      = "LIVECORE_EVENT_STORE"
	EnvDir       = "LIVECORE_EVENTSTORE_DIR"
	EnvDSN       = "LIVECORE_EVENTSTORE_DSN"
	EnvNamespace = "LIVECORE_EVENTSTORE_NAMESPACE"
)

// Config selects and configures one event store.
type Config struct {
	// Kind is pebble (default), kurrentdb or sql. Case-insensitive;
	// "eventstoredb", "esdb", "postgres" and "postgresql" are accepted too.
	Kind string
	// Dir is the Pebble data directory. Required for pebble.
	Dir string
	// DSN is the KurrentDB connection string (esdb://...) or the
	// PostgreSQL DSN. Required for kurrentdb and sql.
	DSN string
	// Namespace prefixes KurrentDB stream names (see kurrentdb.Config).
	Namespace string
	// SkipMigrate leaves the SQL schema alone (it must exist). By default
	// Open runs the idempotent migration.
	SkipMigrate bool
	// MaxConns caps the SQL connection pool (default: sqlstore's).
	MaxConns int32
	// NoGroupCommit runs each SQL append in its own transaction. By
	// default concurrent appends share transactions (sqlstore.Config.GroupCommit).
	NoGroupCommit bool
	// Now stamps RecordedAt (default time.Now).
	Now func() time.Time
	// CacheBytes is the Pebble store's block cache (default: the store's;
	// pebble.ScanCacheBytes for a process that reads the log through once).
	CacheBytes int64
}

// FromEnv fills c's empty Kind, Dir, DSN and Namespace from getenv
// (os.Getenv in commands), so flags win over the environment.
func FromEnv(c Config, getenv func(string) string) Config {
	fill := func(dst *string, env string) {
		if *dst == "" {
			*dst = strings.TrimSpace(getenv(env))
		}
	}
	fill(&c.Kind, EnvKind)
	fill(&c.Dir, EnvDir)
	fill(&c.DSN, EnvDSN)
	fill(&c.Namespace, EnvNamespace)
	return c
}

// kind normalises Kind.
func (c Config) kind() (string, error) {
	switch strings.ToLower(strings.TrimSpace(c.Kind)) {
	case "", Pebble:
		return Pebble, nil
	case KurrentDB, "eventstoredb", "esdb", "eventstore":
		return KurrentDB, nil
	case SQL, "postgres", "postgresql", "pg":
		return SQL, nil
	}
	return "", fmt.Errorf("event store %q: want one of %s", c.Kind, strings.Join(Kinds(), ", "))
}

// Validate reports a configuration Open would refuse.
func (c Config) Validate() error {
	k, err := c.kind()
	if err != nil {
		return err
	}
	switch {
	case k == Pebble && c.Dir == "":
		return errors.New("event store pebble: a data directory is required (" + EnvDir + ")")
	case k != Pebble && c.DSN == "":
		return fmt.Errorf("event store %s: a connection string is required (%s)", k, EnvDSN)
	}
	return nil
}

// Open opens the configured store. For sql it also runs the migration
// unless SkipMigrate. ctx bounds opening only.
func Open(ctx context.Context, c Config) (event.Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	k, _ := c.kind()
	switch k {
	case KurrentDB:
		return kurrentdb.Open(kurrentdb.Config{URL: c.DSN, Namespace: c.Namespace, Now: c.Now})
	case SQL:
		s, err := sqlstore.Open(ctx, sqlstore.Config{DSN: c.DSN, MaxConns: c.MaxConns, Now: c.Now, GroupCommit: !c.NoGroupCommit})
		if err != nil {
			return nil, err
		}
		if !c.SkipMigrate {
			if err := s.Migrate(ctx); err != nil {
				s.Close()
				return nil, err
			}
		}
		return s, nil
	default:
		return pebble.Open(pebble.Config{Dir: c.Dir, Now: c.Now, CacheBytes: c.CacheBytes})
	}
}
