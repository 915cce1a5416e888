package httpapi

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The SQL stores run the same statements on SQLite (modernc.org/sqlite,
// driver "sqlite") and PostgreSQL/CockroachDB (pgx stdlib, driver "pgx"):
// $n placeholders (SQLite reads "$1" as a parameter named 1, bound by
// position), INSERT ... ON CONFLICT DO NOTHING, TEXT, BIGINT and BYTEA
// columns (SQLite gives BYTEA numeric affinity, which stores a blob as is),
// times as Unix microseconds. Every statement is a single autocommit
// statement, atomic on its own: no transaction is held across a round trip.
//
// SQLite: open the database with a busy timeout
// (?_pragma=busy_timeout(10000)), or concurrent writers fail with
// SQLITE_BUSY instead of waiting their turn.

const idemSchema = `CREATE TABLE IF NOT EXISTS http_idempotency (
	tenant       TEXT    NOT NULL,
	idem_key     TEXT    NOT NULL,
	fingerprint  TEXT    NOT NULL,
	state        TEXT    NOT NULL,
	lock_token   TEXT,
	locked_until BIGINT  NOT NULL,
	expires_at   BIGINT  NOT NULL,
	status       INTEGER,
	headers      TEXT,
	body         BYTEA,
	PRIMARY KEY (tenant, idem_key),
	CHECK (state IN ('in_flight', 'completed'))
)`

const idemExpiresIndex = `CREATE INDEX IF NOT EXISTS http_idempotency_expires_at ON http_idempotency (expires_at)`

// SQLIdempotencyStore is an IdempotencyStore in a SQL table
// (http_idempotency). It is safe for concurrent use, also by several
// processes sharing the database.
type SQLIdempotencyStore struct {
	db *sql.DB
}

// NewSQLIdempotencyStore returns a store over db. Call Migrate once before
// use.
func NewSQLIdempotencyStore(db *sql.DB) *SQLIdempotencyStore {
	return &SQLIdempotencyStore{db: db}
}

var _ IdempotencyStore = (*SQLIdempotencyStore)(nil)

// Migrate creates the table and its index if they do not exist.
func (s *SQLIdempotencyStore) Migrate(ctx context.Context) error {
	for _, q := range []string{idemSchema, idemExpiresIndex} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate http_idempotency: %w", err)
		}
	}
	return nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

// Begin implements IdempotencyStore. It tries, in order: insert a new record;
// take over an expired record or a dead lock with the same fingerprint (one
// conditional UPDATE); read the record and report its state. A record that
// vanishes between these steps (released, purged) starts the round again.
func (s *SQLIdempotencyStore) Begin(ctx context.Context, req BeginRequest) (Begun, error) {
	k := req.Key
	for range 5 {
		res, err := s.db.ExecContext(ctx, `INSERT INTO http_idempotency
			(tenant, idem_key, fingerprint, state, lock_token, locked_until, expires_at)
			VALUES ($1, $2, $3, 'in_flight', $4, $5, $6)
			ON CONFLICT (tenant, idem_key) DO NOTHING`,
			string(k.Tenant), k.Key, req.Fingerprint, req.Lock, micros(req.LockedUntil), micros(req.ExpiresAt))
		if n, err := affected(res, err); err != nil {
			return Begun{}, fmt.Errorf("idempotency begin: insert: %w", err)
		} else if n == 1 {
			return Begun{}, nil
		}

		res, err = s.db.ExecContext(ctx, `UPDATE http_idempotency
			SET fingerprint = $3, state = 'in_flight', lock_token = $4, locked_until = $5, expires_at = $6,
			    status = NULL, headers = NULL, body = NULL
			WHERE tenant = $1 AND idem_key = $2
			  AND (expires_at <= $7 OR (state = 'in_flight' AND locked_until <= $7 AND fingerprint = $3))`,
			string(k.Tenant), k.Key, req.Fingerprint, req.Lock, micros(req.LockedUntil), micros(req.ExpiresAt), micros(req.Now))
		if n, err := affected(res, err); err != nil {
			return Begun{}, fmt.Errorf("idempotency begin: take over: %w", err)
		} else if n == 1 {
			return Begun{}, nil
		}

		var (
			fp, state          string
			lockedUntil, expAt int64
			status             sql.NullInt64
			headers            sql.NullString
			body               []byte
		)
		err = s.db.QueryRowContext(ctx, `SELECT fingerprint, state, locked_until, expires_at, status, headers, body
			FROM http_idempotency WHERE tenant = $1 AND idem_key = $2`,
			string(k.Tenant), k.Key).Scan(&fp, &state, &lockedUntil, &expAt, &status, &headers, &body)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return Begun{}, fmt.Errorf("idempotency begin: read: %w", err)
		}
		now := micros(req.Now)
		switch {
		case expAt <= now:
			continue // expired after all (a racing takeover): try again
		case fp != req.Fingerprint:
			return Begun{}, ErrIdempotencyMismatch
		case state == "completed":
			resp := StoredResponse{Status: int(status.Int64), Header: http.Header{}, Body: body}
			if headers.Valid && headers.String != "" {
				if err := json.Unmarshal([]byte(headers.String), &resp.Header); err != nil {
					return Begun{}, fmt.Errorf("idempotency begin: stored headers of %s: %w", k.Key, err)
				}
			}
			return Begun{Replay: &resp}, nil
		case lockedUntil > now:
			return Begun{}, ErrIdempotencyInFlight
		}
		// A dead lock that our takeover just missed: try again.
	}
	// Only a store under constant churn on one key gets here; the client
	// may retry.
	return Begun{}, ErrIdempotencyInFlight
}

// Complete implements IdempotencyStore.
func (s *SQLIdempotencyStore) Complete(ctx context.Context, key IdemKey, lock string, resp StoredResponse, expiresAt time.Time) error {
	h, err := json.Marshal(resp.Header)
	if err != nil {
		return fmt.Errorf("idempotency complete: headers: %w", err)
	}
	body := resp.Body
	if body == nil {
		body = []byte{}
	}
	res, err := s.db.ExecContext(ctx, `UPDATE http_idempotency
		SET state = 'completed', lock_token = NULL, status = $4, headers = $5, body = $6, expires_at = $7
		WHERE tenant = $1 AND idem_key = $2 AND lock_token = $3 AND state = 'in_flight'`,
		string(key.Tenant), key.Key, lock, resp.Status, string(h), body, micros(expiresAt))
	n, err := affected(res, err)
	if err != nil {
		return fmt.Errorf("idempotency complete: %w", err)
	}
	if n == 0 {
		return ErrIdempotencyLockLost
	}
	return nil
}

// Release implements IdempotencyStore.
func (s *SQLIdempotencyStore) Release(ctx context.Context, key IdemKey, lock string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM http_idempotency
		WHERE tenant = $1 AND idem_key = $2 AND lock_token = $3 AND state = 'in_flight'`,
		string(key.Tenant), key.Key, lock)
	n, err := affected(res, err)
	if err != nil {
		return fmt.Errorf("idempotency release: %w", err)
	}
	if n == 0 {
		return ErrIdempotencyLockLost
	}
	return nil
}

// Purge implements IdempotencyStore.
func (s *SQLIdempotencyStore) Purge(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM http_idempotency WHERE expires_at <= $1`, micros(before))
	n, err := affected(res, err)
	if err != nil {
		return 0, fmt.Errorf("idempotency purge: %w", err)
	}
	return n, nil
}

func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

const keySchema = `CREATE TABLE IF NOT EXISTS http_api_keys (
	key_id     TEXT   PRIMARY KEY,
	tenant     TEXT   NOT NULL,
	role       TEXT   NOT NULL,
	key_hash   TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	revoked_at BIGINT
)`

// SQLKeyStore is a KeyStore in a SQL table (http_api_keys) holding each
// key's SHA-256, never its plaintext. Safe for concurrent use.
type SQLKeyStore struct {
	db *sql.DB
}

// NewSQLKeyStore returns a store over db. Call Migrate once before use.
func NewSQLKeyStore(db *sql.DB) *SQLKeyStore { return &SQLKeyStore{db: db} }

var _ KeyStore = (*SQLKeyStore)(nil)

// Migrate creates the table if it does not exist.
func (s *SQLKeyStore) Migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, keySchema); err != nil {
		return fmt.Errorf("migrate http_api_keys: %w", err)
	}
	return nil
}

// InsertKey implements KeyStore.
func (s *SQLKeyStore) InsertKey(ctx context.Context, k StoredKey) error {
	var revoked sql.NullInt64
	if !k.RevokedAt.IsZero() {
		revoked = sql.NullInt64{Int64: micros(k.RevokedAt), Valid: true}
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO http_api_keys (key_id, tenant, role, key_hash, created_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key_id) DO NOTHING`,
		k.ID, string(k.Tenant), k.Role.String(), hex.EncodeToString(k.Hash[:]), micros(k.CreatedAt), revoked)
	n, err := affected(res, err)
	if err != nil {
		return fmt.Errorf("insert key %s: %w", k.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("insert key %s: %w", k.ID, ErrKeyExists)
	}
	return nil
}

// LookupKey implements KeyStore.
func (s *SQLKeyStore) LookupKey(ctx context.Context, id string) (StoredKey, error) {
	var (
		tenant, role, hash string
		created            int64
		revoked            sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, `SELECT tenant, role, key_hash, created_at, revoked_at FROM http_api_keys WHERE key_id = $1`, id).
		Scan(&tenant, &role, &hash, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return StoredKey{}, fmt.Errorf("key %s: %w", id, ErrKeyNotFound)
	}
	if err != nil {
		return StoredKey{}, fmt.Errorf("look up key %s: %w", id, err)
	}
	k := StoredKey{ID: id, Tenant: TenantID(tenant), CreatedAt: time.UnixMicro(created).UTC()}
	if k.Role, err = ParseRole(role); err != nil {
		return StoredKey{}, fmt.Errorf("key %s: stored role: %w", id, err)
	}
	raw, err := hex.DecodeString(hash)
	if err != nil || len(raw) != len(k.Hash) {
		return StoredKey{}, fmt.Errorf("key %s: stored hash is not a SHA-256", id)
	}
	copy(k.Hash[:], raw)
	if revoked.Valid {
		k.RevokedAt = time.UnixMicro(revoked.Int64).UTC()
	}
	return k, nil
}

// RevokeKey implements KeyStore.
func (s *SQLKeyStore) RevokeKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE http_api_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL`, id, micros(at))
	n, err := affected(res, err)
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	if n == 1 {
		return nil
	}
	if _, err := s.LookupKey(ctx, id); err != nil {
		return err
	}
	return nil // already revoked
}
