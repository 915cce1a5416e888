// Package testenv gives tests the real services that scripts/test.sh (run by
// `go tool -modfile=tools.go.mod task test`) starts: a PostgreSQL server and
// a single-node Apache Kafka broker.
//
// The services are found through environment variables:
//
//	LIVECORE_TEST_PG_DSN          postgres://user:pass@127.0.0.1:PORT/livecore_test?sslmode=disable
//	LIVECORE_TEST_KAFKA_BROKERS   127.0.0.1:PORT[,host:port...]
//
// When a variable is missing the test is skipped with a loud message, or
// fails when LIVECORE_TEST_REQUIRE_SERVICES=1 (scripts/test.sh sets it, so
// CI can never pass by skipping).
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variable names.
const (
	EnvPostgresDSN     = "LIVECORE_TEST_PG_DSN"
	EnvKafkaBrokers    = "LIVECORE_TEST_KAFKA_BROKERS"
	EnvRequireServices = "LIVECORE_TEST_REQUIRE_SERVICES"
)

// PostgresDSN returns the DSN of the test PostgreSQL server (database
// livecore_test). Prefer FreshSchema(t, PostgresDSN(t)) for isolation.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(EnvPostgresDSN))
	if v == "" {
		missing(t, EnvPostgresDSN, "PostgreSQL")
	}
	return v
}

// KafkaBrokers returns the seed brokers of the test Kafka cluster.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	var brokers []string
	for _, b := range strings.Split(os.Getenv(EnvKafkaBrokers), ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		missing(t, EnvKafkaBrokers, "Kafka")
	}
	return brokers
}

func missing(t testing.TB, env, what string) {
	t.Helper()
	msg := fmt.Sprintf("\n"+
		"********************************************************************\n"+
		"*** %s NOT AVAILABLE: $%s is not set.\n"+
		"*** Run the tests with `go tool -modfile=tools.go.mod task test`\n"+
		"*** (or `bash scripts/test.sh [go test args]`), which starts\n"+
		"*** PostgreSQL and Kafka, sets the variables and stops them after.\n"+
		"********************************************************************",
		strings.ToUpper(what), env)
	if os.Getenv(EnvRequireServices) == "1" {
		t.Fatalf("%s\n*** %s=1, so this is a failure, not a skip.", msg, EnvRequireServices)
	}
	t.Skip(msg)
}

// FreshSchema creates a uniquely named schema for this test in the database
// of dsn and returns a DSN whose search_path is that schema, so unqualified
// tables the test creates land there. The schema is dropped (CASCADE) when
// the test ends.
func FreshSchema(t testing.TB, dsn string) string {
	t.Helper()
	schema := uniqueName(t, "t_", "_", 63)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("testenv: connect to PostgreSQL (%s): %v", redact(dsn), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("testenv: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Logf("testenv: WARNING: schema %s not dropped: connect: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		// A connection the test leaked could hold locks; don't hang on it.
		_, err = conn.Exec(ctx, "SET lock_timeout = '20s'")
		if err == nil {
			_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		}
		if err != nil {
			t.Logf("testenv: WARNING: schema %s not dropped: %v", schema, err)
		}
	})

	out, err := withSearchPath(dsn, schema)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return out
}

// withSearchPath adds search_path=schema to a URL or keyword/value DSN.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse DSN %s: %w", redact(dsn), err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	// The schema name is [a-z0-9_] only, so no quoting is needed.
	return strings.TrimSpace(dsn) + " search_path=" + schema, nil
}

// UniqueTopic returns a Kafka topic name unique to this test and run:
// prefix, the test's name and random hex, in [a-z0-9-].
func UniqueTopic(t testing.TB, prefix string) string {
	t.Helper()
	return uniqueName(t, sanitize(prefix, '-')+"-", "-", 200)
}

// uniqueName builds prefix + sanitized test name + sep + 8 random hex digits,
// cutting the test name so the whole fits in max bytes.
func uniqueName(t testing.TB, prefix, sep string, max int) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testenv: random: %v", err)
	}
	suffix := sep + hex.EncodeToString(b[:])
	name := sanitize(t.Name(), rune(sep[0]))
	if room := max - len(prefix) - len(suffix); len(name) > room {
		name = name[:room]
	}
	return prefix + strings.Trim(name, sep) + suffix
}

// sanitize lowercases s and maps every run of characters outside [a-z0-9]
// to one sep.
func sanitize(s string, sep rune) string {
	var sb strings.Builder
	lastSep := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			sb.WriteRune(r)
			lastSep = false
		} else if !lastSep {
			sb.WriteRune(sep)
			lastSep = true
		}
	}
	return strings.Trim(sb.String(), string(sep))
}

// redact hides a password in a URL DSN for error messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return dsn
}
