package httpapi

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// MemoryIdempotencyStore is an IdempotencyStore in a map, for tests and
// single-process development. It is safe for concurrent use; it forgets
// everything when the process ends.
type MemoryIdempotencyStore struct {
	mu   sync.Mutex
	recs map[IdemKey]*memIdemRecord
}

type memIdemRecord struct {
	fingerprint string
	lock        string
	lockedUntil time.Time
	expiresAt   time.Time
	completed   bool
	resp        StoredResponse
}

// NewMemoryIdempotencyStore returns an empty store.
func NewMemoryIdempotencyStore() *MemoryIdempotencyStore {
	return &MemoryIdempotencyStore{recs: map[IdemKey]*memIdemRecord{}}
}

var _ IdempotencyStore = (*MemoryIdempotencyStore)(nil)

// Begin implements IdempotencyStore.
func (m *MemoryIdempotencyStore) Begin(_ context.Context, req BeginRequest) (Begun, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[req.Key]
	switch {
	case !ok || !rec.expiresAt.After(req.Now):
		// absent or expired: take it
	case rec.fingerprint != req.Fingerprint:
		return Begun{}, ErrIdempotencyMismatch
	case rec.completed:
		r := copyResponse(rec.resp)
		return Begun{Replay: &r}, nil
	case rec.lockedUntil.After(req.Now):
		return Begun{}, ErrIdempotencyInFlight
	default:
		// in flight, but its owner is presumed dead: take over
	}
	m.recs[req.Key] = &memIdemRecord{
		fingerprint: req.Fingerprint,
		lock:        req.Lock,
		lockedUntil: req.LockedUntil,
		expiresAt:   req.ExpiresAt,
	}
	return Begun{}, nil
}

// Complete implements IdempotencyStore.
func (m *MemoryIdempotencyStore) Complete(_ context.Context, key IdemKey, lock string, resp StoredResponse, expiresAt time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[key]
	if !ok || rec.completed || rec.lock != lock {
		return ErrIdempotencyLockLost
	}
	rec.completed = true
	rec.resp = copyResponse(resp)
	rec.expiresAt = expiresAt
	return nil
}

// Release implements IdempotencyStore.
func (m *MemoryIdempotencyStore) Release(_ context.Context, key IdemKey, lock string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[key]
	if !ok || rec.completed || rec.lock != lock {
		return ErrIdempotencyLockLost
	}
	delete(m.recs, key)
	return nil
}

// Purge implements IdempotencyStore.
func (m *MemoryIdempotencyStore) Purge(_ context.Context, before time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for k, rec := range m.recs {
		if !rec.expiresAt.After(before) {
			delete(m.recs, k)
			n++
		}
	}
	return n, nil
}

func copyResponse(r StoredResponse) StoredResponse {
	return StoredResponse{Status: r.Status, Header: r.Header.Clone(), Body: bytes.Clone(r.Body)}
}
