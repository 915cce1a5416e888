package httpapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// LocalIdempotencyStore is an IdempotencyStore for a server that is the
// only one using its database (livecore dev: one process owns the data
// dir). In-flight locks live in memory; completed responses are written
// to the SQL table http_idempotency in group commits (many requests' rows
// in one transaction) and cached, and a key missing from memory is looked
// up there, so replays survive restarts.
//
// It trades the SQL store's multi-process safety for throughput: the SQL
// store costs two single-row write transactions per request, this one a
// share of one batched transaction. Two processes sharing the table must
// use SQLIdempotencyStore. A crash forgets in-flight locks, which is
// harmless: the retried request runs again under the same command ID, and
// the event store recognises its events.
type LocalIdempotencyStore struct {
	db *sql.DB
	// kv, if set, holds the completed records (OpenLocalIdempotencyStore);
	// db's table then only holds those of earlier versions.
	kv *pebble.DB

	// Prepared once (SQLite's parser is a visible cost per request).
	prepOnce           sync.Once
	prepErr            error
	selectStmt, upsert *sql.Stmt

	mu       sync.Mutex
	inFlight map[IdemKey]*localInFlight
	// done caches completed records in two generations: lookups check
	// both, inserts go to cur, and when cur is full prev is dropped. A
	// record holds its whole response (about 1 KiB for an order), so the
	// cache is small (2 x localCacheSize); older replays read the
	// Pebble database or the table.
	cur, prev map[IdemKey]*localDone
	cacheMax  int

	// stored holds every key that may have a completed row in the table
	// (loaded once, then added to on Complete): a key it does not hold is
	// new, and Begin skips the table lookup (one SELECT per request).
	stored     *bloom
	loadStored sync.Once
	storedErr  error

	writes chan *localWrite
	stop   chan struct{}
	wg     sync.WaitGroup
}

// bloom is a Bloom filter over idempotency keys: 2^24 bits (2 MiB), 4
// probes; about 1% false positives at 1.7 million keys, after which more
// lookups reach the table (still correct). Guarded by the store's mu.
type bloom struct {
	bits [1 << 18]uint64
	seed maphash.Seed
}

func (b *bloom) probes(k IdemKey, fn func(bit uint32) bool) bool {
	var h maphash.Hash
	h.SetSeed(b.seed)
	h.WriteString(string(k.Tenant))
	h.WriteByte(0)
	h.WriteString(k.Key)
	x := h.Sum64()
	h1, h2 := uint32(x), uint32(x>>32)|1
	for i := uint32(0); i < 4; i++ {
		if !fn((h1 + i*h2) & (1<<24 - 1)) {
			return false
		}
	}
	return true
}

func (b *bloom) add(k IdemKey) {
	b.probes(k, func(bit uint32) bool { b.bits[bit/64] |= 1 << (bit % 64); return true })
}

func (b *bloom) mayHave(k IdemKey) bool {
	return b.probes(k, func(bit uint32) bool { return b.bits[bit/64]&(1<<(bit%64)) != 0 })
}

type localInFlight struct {
	fingerprint, lock  string
	lockedUntil, expAt time.Time
}

type localDone struct {
	fingerprint string
	expAt       time.Time
	resp        StoredResponse
}

type localWrite struct {
	key  IdemKey
	rec  *localDone
	done chan error
}

// localCacheSize is a generation of LocalIdempotencyStore's cache of
// completed records: the last 4,096 to 8,192 responses, a few seconds of
// a busy API, which is when retries of a request come. The cache was
// 2 x 10,000 records: ~30 MiB of live heap for the GC to mark on every
// cycle, for replays that a Pebble read (Bloom-filtered) serves in
// microseconds.
const localCacheSize = 4096

// NewLocalIdempotencyStore returns a store over db (the same table as
// SQLIdempotencyStore: call Migrate once). Close stops its writer.
func NewLocalIdempotencyStore(db *sql.DB) *LocalIdempotencyStore {
	s := &LocalIdempotencyStore{
		db: db, inFlight: map[IdemKey]*localInFlight{},
		cur: map[IdemKey]*localDone{}, prev: map[IdemKey]*localDone{}, cacheMax: localCacheSize,
		writes: make(chan *localWrite, 4096), stop: make(chan struct{}),
		stored: &bloom{seed: maphash.MakeSeed()},
	}
	s.wg.Go(s.writer)
	return s
}

var _ IdempotencyStore = (*LocalIdempotencyStore)(nil)

// Migrate creates the table (SQLIdempotencyStore's).
func (s *LocalIdempotencyStore) Migrate(ctx context.Context) error {
	return NewSQLIdempotencyStore(s.db).Migrate(ctx)
}

// Close stops the writer after the writes already queued (and closes the
// Pebble database of OpenLocalIdempotencyStore).
func (s *LocalIdempotencyStore) Close() error {
	close(s.stop)
	s.wg.Wait()
	for _, st := range []*sql.Stmt{s.selectStmt, s.upsert} {
		if st != nil {
			st.Close()
		}
	}
	if s.kv != nil {
		return s.kv.Close()
	}
	return nil
}

// prepare prepares the statements after Migrate made the table.
func (s *LocalIdempotencyStore) prepare(ctx context.Context) error {
	s.prepOnce.Do(func() {
		s.selectStmt, s.prepErr = s.db.PrepareContext(ctx, `SELECT fingerprint, expires_at, status, headers, body FROM http_idempotency
			WHERE tenant = $1 AND idem_key = $2 AND state = 'completed' AND expires_at > $3`)
		if s.prepErr != nil {
			return
		}
		s.upsert, s.prepErr = s.db.PrepareContext(ctx, `INSERT INTO http_idempotency (tenant, idem_key, fingerprint, state, lock_token, locked_until, expires_at, status, headers, body)
			VALUES ($1, $2, $3, 'completed', NULL, 0, $4, $5, $6, $7)
			ON CONFLICT (tenant, idem_key) DO UPDATE SET fingerprint = excluded.fingerprint, state = 'completed',
			lock_token = NULL, locked_until = 0, expires_at = excluded.expires_at, status = excluded.status,
			headers = excluded.headers, body = excluded.body`)
	})
	if s.prepErr != nil {
		return fmt.Errorf("idempotency: prepare: %w", s.prepErr)
	}
	return nil
}

func (s *LocalIdempotencyStore) cached(k IdemKey) *localDone {
	if d, ok := s.cur[k]; ok {
		return d
	}
	return s.prev[k]
}

func (s *LocalIdempotencyStore) cache(k IdemKey, d *localDone) {
	if len(s.cur) >= s.cacheMax {
		s.prev, s.cur = s.cur, make(map[IdemKey]*localDone, s.cacheMax)
	}
	s.cur[k] = d
}

func (s *LocalIdempotencyStore) uncache(k IdemKey) {
	delete(s.cur, k)
	delete(s.prev, k)
}

// Begin implements IdempotencyStore.
func (s *LocalIdempotencyStore) Begin(ctx context.Context, req BeginRequest) (Begun, error) {
	k := req.Key
	if err := s.loadKeys(ctx); err != nil {
		return Begun{}, err
	}
	s.mu.Lock()
	if b, err, ok := s.beginLocked(req, !s.stored.mayHave(k)); ok {
		s.mu.Unlock()
		return b, err
	}
	s.mu.Unlock()

	// Not in memory: a completed record of an earlier run, if any, is in
	// the table. Looked up without the lock (a concurrent Begin of the
	// same key is settled below).
	d, err := s.load(ctx, k, req.Now)
	if err != nil {
		return Begun{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d != nil && s.cached(k) == nil {
		s.cache(k, d)
	}
	b, err, _ := s.beginLocked(req, true)
	return b, err
}

// beginLocked decides from memory; ok false means "unknown here, look in
// the table" (only when neither an in-flight lock nor a cached record
// exists and the table was not looked at yet). A key with neither is
// taken once looked is true.
func (s *LocalIdempotencyStore) beginLocked(req BeginRequest, looked bool) (Begun, error, bool) {
	k := req.Key
	if d := s.cached(k); d != nil {
		switch {
		case !d.expAt.After(req.Now):
			s.uncache(k)
		case d.fingerprint != req.Fingerprint:
			return Begun{}, ErrIdempotencyMismatch, true
		default:
			r := copyResponse(d.resp)
			return Begun{Replay: &r}, nil, true
		}
	}
	if f, ok := s.inFlight[k]; ok && f.expAt.After(req.Now) {
		switch {
		case f.fingerprint != req.Fingerprint:
			return Begun{}, ErrIdempotencyMismatch, true
		case f.lockedUntil.After(req.Now):
			return Begun{}, ErrIdempotencyInFlight, true
		}
		// its owner is presumed dead: take over
	} else if !ok && !looked {
		return Begun{}, nil, false
	}
	s.inFlight[k] = &localInFlight{fingerprint: req.Fingerprint, lock: req.Lock, lockedUntil: req.LockedUntil, expAt: req.ExpiresAt}
	return Begun{}, nil, true
}

func (s *LocalIdempotencyStore) load(ctx context.Context, k IdemKey, now time.Time) (*localDone, error) {
	if s.kv != nil {
		if d, found, err := s.kvGet(k, now); err != nil || found {
			return d, err
		}
	}
	var (
		fp      string
		expAt   int64
		status  int
		headers sql.NullString
		body    []byte
	)
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	err := s.selectStmt.QueryRowContext(ctx, string(k.Tenant), k.Key, micros(now)).Scan(&fp, &expAt, &status, &headers, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("idempotency begin: read: %w", err)
	}
	d := &localDone{fingerprint: fp, expAt: time.UnixMicro(expAt), resp: StoredResponse{Status: status, Header: http.Header{}, Body: body}}
	if headers.Valid && headers.String != "" {
		if err := json.Unmarshal([]byte(headers.String), &d.resp.Header); err != nil {
			return nil, fmt.Errorf("idempotency begin: stored headers: %w", err)
		}
	}
	return d, nil
}

// Complete implements IdempotencyStore: the record is durable in the
// table (committed) when it returns.
func (s *LocalIdempotencyStore) Complete(ctx context.Context, key IdemKey, lock string, resp StoredResponse, expiresAt time.Time) error {
	s.mu.Lock()
	f, ok := s.inFlight[key]
	if !ok || f.lock != lock {
		s.mu.Unlock()
		return ErrIdempotencyLockLost
	}
	d := &localDone{fingerprint: f.fingerprint, expAt: expiresAt, resp: copyResponse(resp)}
	s.mu.Unlock()

	if err := s.persist(ctx, key, d); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f2, ok := s.inFlight[key]; ok && f2 == f {
		delete(s.inFlight, key)
	}
	s.cache(key, d)
	s.stored.add(key)
	return nil
}

// persist makes d durable: a synced Pebble batch, or a row of the
// writer's next group commit to the table.
func (s *LocalIdempotencyStore) persist(ctx context.Context, key IdemKey, d *localDone) error {
	if s.kv != nil {
		return s.kvPut(key, d)
	}
	w := &localWrite{key: key, rec: d, done: make(chan error, 1)}
	select {
	case s.writes <- w:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loadKeys fills the Bloom filter with the keys of the table's completed
// rows, once (the first Begin after a start).
func (s *LocalIdempotencyStore) loadKeys(ctx context.Context) error {
	s.loadStored.Do(func() {
		// Not the request's context: a client hanging up must not leave
		// the filter unloaded for good.
		rows, err := s.db.QueryContext(context.WithoutCancel(ctx), `SELECT tenant, idem_key FROM http_idempotency WHERE state = 'completed'`)
		if err != nil {
			s.storedErr = err
			return
		}
		defer rows.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.kv != nil {
			if s.storedErr = s.kvKeys(); s.storedErr != nil {
				return
			}
		}
		for rows.Next() {
			var tenant, key string
			if err := rows.Scan(&tenant, &key); err != nil {
				s.storedErr = err
				return
			}
			s.stored.add(IdemKey{Tenant: TenantID(tenant), Key: key})
		}
		s.storedErr = rows.Err()
	})
	if s.storedErr != nil {
		return fmt.Errorf("idempotency: load stored keys: %w", s.storedErr)
	}
	return nil
}

// Release implements IdempotencyStore.
func (s *LocalIdempotencyStore) Release(_ context.Context, key IdemKey, lock string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.inFlight[key]
	if !ok || f.lock != lock {
		return ErrIdempotencyLockLost
	}
	delete(s.inFlight, key)
	return nil
}

// Purge implements IdempotencyStore.
func (s *LocalIdempotencyStore) Purge(ctx context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	for _, m := range []map[IdemKey]*localDone{s.cur, s.prev} {
		for k, d := range m {
			if !d.expAt.After(before) {
				delete(m, k)
			}
		}
	}
	for k, f := range s.inFlight {
		if !f.expAt.After(before) {
			delete(s.inFlight, k)
		}
	}
	s.mu.Unlock()
	var n int64
	if s.kv != nil {
		kn, err := s.kvPurge(ctx, before)
		if err != nil {
			return kn, fmt.Errorf("idempotency purge: %w", err)
		}
		n = kn
	}
	// A row of a key that is in flight again (taken over after expiry)
	// is that key's old record, not a record forgotten now.
	rows, err := s.db.QueryContext(ctx, `DELETE FROM http_idempotency WHERE expires_at <= $1 RETURNING tenant, idem_key`, micros(before))
	if err != nil {
		return 0, fmt.Errorf("idempotency purge: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k IdemKey
		var tenant string
		if err := rows.Scan(&tenant, &k.Key); err != nil {
			return n, fmt.Errorf("idempotency purge: %w", err)
		}
		k.Tenant = TenantID(tenant)
		s.mu.Lock()
		_, again := s.inFlight[k]
		s.mu.Unlock()
		if !again {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("idempotency purge: %w", err)
	}
	return n, nil
}

// maxWriteBatch bounds the rows of one group commit; writeLinger is how
// long the writer gathers rows after the first before committing (added to
// a POST's latency, at most).
const (
	maxWriteBatch = 256
	writeLinger   = time.Millisecond
)

// writer commits queued records in batches: one transaction, one
// multi-row upsert, for every record that arrived while the previous
// batch was committing.
func (s *LocalIdempotencyStore) writer() {
	for {
		var batch []*localWrite
		select {
		case w := <-s.writes:
			batch = append(batch, w)
		case <-s.stop:
			return
		}
		// Gather for a moment: each commit writes its dirty pages as WAL
		// frames, a syscall each, and a commit of one row costs nearly as
		// much as one of dozens.
		linger := time.NewTimer(writeLinger)
	more:
		for len(batch) < maxWriteBatch {
			select {
			case w := <-s.writes:
				batch = append(batch, w)
			case <-linger.C:
				break more
			}
		}
		linger.Stop()
		err := s.commit(batch)
		for _, w := range batch {
			w.done <- err
		}
	}
}

func (s *LocalIdempotencyStore) commit(batch []*localWrite) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := s.prepare(ctx); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("idempotency complete: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	st := tx.StmtContext(ctx, s.upsert)
	for _, w := range batch {
		h, err := json.Marshal(w.rec.resp.Header)
		if err != nil {
			return fmt.Errorf("idempotency complete: headers: %w", err)
		}
		body := w.rec.resp.Body
		if body == nil {
			body = []byte{}
		}
		if _, err := st.ExecContext(ctx, string(w.key.Tenant), w.key.Key, w.rec.fingerprint, micros(w.rec.expAt), w.rec.resp.Status, string(h), body); err != nil {
			return fmt.Errorf("idempotency complete: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("idempotency complete: %w", err)
	}
	return nil
}
