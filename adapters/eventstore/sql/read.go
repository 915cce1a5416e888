package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/livecore/livecore/domain/event"
)

const selectEnvelope = `SELECT position, stream_id, version, event_id, type, schema_version, data,
	tenant, correlation_id, causation_id, actor, region, recorded_at_ns, prev_hash, hash, prev_global_hash, global_hash
	FROM eventstore_events `

// ReadStream implements event.StreamReader. A missing stream reads as empty.
func (s *Store) ReadStream(ctx context.Context, stream string, fromVersion uint64, max int) ([]event.Envelope, error) {
	if s.isClosed() {
		return nil, event.ErrClosed
	}
	fromVersion = max64(fromVersion, 1)
	out, err := s.query(ctx, selectEnvelope+`WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3`,
		stream, int64(fromVersion), limit(max))
	if err != nil {
		return nil, s.translate("read "+stream, err)
	}
	return out, nil
}

// ReadAll implements event.AllReader. One statement, so one snapshot: the
// result is a prefix of the log from fromPosition, never one with a hole
// (see the package doc).
func (s *Store) ReadAll(ctx context.Context, fromPosition uint64, max int) ([]event.Envelope, error) {
	if s.isClosed() {
		return nil, event.ErrClosed
	}
	fromPosition = max64(fromPosition, 1)
	out, err := s.query(ctx, selectEnvelope+`WHERE position >= $1 ORDER BY position LIMIT $2`,
		int64(fromPosition), limit(max))
	if err != nil {
		return nil, s.translate("read $all", err)
	}
	return out, nil
}

// Head implements event.HeadReader.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if s.isClosed() {
		return 0, event.ErrClosed
	}
	var h int64
	if err := s.pool.QueryRow(ctx, `SELECT position FROM eventstore_head WHERE id`).Scan(&h); err != nil {
		return 0, s.translate("head", err)
	}
	return uint64(h), nil
}

// WaitHead implements event.HeadWaiter: it returns the head once it is
// beyond after. It wakes on appends through this Store, on NOTIFY from
// appends through any other process, and every PollInterval regardless.
// Errors: ctx's error, event.ErrClosed (also when the store closes while it
// waits).
func (s *Store) WaitHead(ctx context.Context, after uint64) (uint64, error) {
	for {
		moved := s.moved.wait()
		h, err := s.Head(ctx)
		if err != nil || h > after {
			return h, err
		}
		t := time.NewTimer(s.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-s.done:
			t.Stop()
			return 0, event.ErrClosed
		case <-moved:
		case <-t.C:
		}
		t.Stop()
	}
}

// SubscribeAll implements event.Subscriber with event.SubscribeAll over
// ReadAll and WaitHead, in batches of up to 1000.
func (s *Store) SubscribeAll(ctx context.Context, fromPosition uint64, handle func(context.Context, []event.Envelope) error) error {
	if s.isClosed() {
		return event.ErrClosed
	}
	return event.SubscribeAll(ctx, s, s, fromPosition, 1000, handle)
}

func (s *Store) query(ctx context.Context, sql string, args ...any) ([]event.Envelope, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []event.Envelope
	for rows.Next() {
		var (
			e                                      event.Envelope
			pos, version, recordedAt               int64
			schemaVersion                          int32
			prevHash, hash, prevGlobal, globalHash []byte
		)
		if err := rows.Scan(&pos, &e.StreamID, &version, &e.ID, &e.Type, &schemaVersion, &e.Data,
			&e.Metadata.Tenant, &e.Metadata.CorrelationID, &e.Metadata.CausationID, &e.Metadata.Actor, &e.Metadata.Region,
			&recordedAt, &prevHash, &hash, &prevGlobal, &globalHash); err != nil {
			return nil, err
		}
		e.Position, e.Version, e.SchemaVersion = uint64(pos), uint64(version), int(schemaVersion)
		e.RecordedAt = time.Unix(0, recordedAt).UTC()
		for _, h := range []struct {
			dst *event.Hash
			src []byte
		}{{&e.PrevHash, prevHash}, {&e.Hash, hash}, {&e.PrevGlobalHash, prevGlobal}, {&e.GlobalHash, globalHash}} {
			if *h.dst, err = toHash(h.src, false); err != nil {
				return nil, fmt.Errorf("position %d: %w", pos, err)
			}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// limit turns max <= 0 into SQL's LIMIT NULL (no limit).
func limit(max int) *int64 {
	if max <= 0 {
		return nil
	}
	n := int64(max)
	return &n
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// listen keeps a dedicated connection LISTENing on the store's channel and
// wakes WaitHead on every notification and on every reconnect (a
// notification may have been missed while disconnected). It returns when
// ctx is cancelled (Close).
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer s.listening.Done()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			if _, err = conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err == nil {
				backoff = 50 * time.Millisecond
				s.moved.wake()
				for err == nil {
					_, err = conn.WaitForNotification(ctx)
					if err == nil {
						s.moved.wake()
					}
				}
			}
			conn.Close(ctx)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// notifyChannel names the NOTIFY channel of one schema's event store, so
// stores in other schemas of the same database do not wake each other.
func notifyChannel(schema string) string {
	ch := "livecore_eventstore_" + schema
	if len(ch) > 63 {
		ch = ch[:63]
	}
	return ch
}

// translate turns a driver error into what callers may see: ctx's error,
// event.ErrClosed, event.ErrWrongExpectedVersion (a unique-version clash that
// slipped past the lock, e.g. a writer outside this package),
// event.ErrIdempotencyConflict (an event ID clash), or a plain error that
// carries the message and SQLSTATE but no driver type.
func (s *Store) translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if s.isClosed() {
		return fmt.Errorf("%s: %w", op, event.ErrClosed)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, context.Canceled)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, context.DeadlineExceeded)
	}
	if errors.Is(err, event.ErrCorrupt) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		switch {
		case strings.Contains(pgErr.ConstraintName, "event_id"):
			return fmt.Errorf("%s: %w: %s", op, event.ErrIdempotencyConflict, pgErr.Message)
		case strings.Contains(pgErr.ConstraintName, "stream_id_version"):
			return fmt.Errorf("%s: %w: %s", op, event.ErrWrongExpectedVersion, pgErr.Message)
		}
	}
	var maxed *crdb.MaxRetriesExceededError
	if errors.As(err, &maxed) {
		return fmt.Errorf("%s: gave up after %d serialization retries: %s", op, s.cfg.MaxRetries, flatten(err))
	}
	return fmt.Errorf("%s: %s", op, flatten(err))
}

// flatten renders err without keeping its chain, so no driver type leaks.
func flatten(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Sprintf("postgres: %s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	}
	return err.Error()
}
