package httpapi

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MemoryKeyStore is a KeyStore in a map, for tests and development. Safe
// for concurrent use.
type MemoryKeyStore struct {
	mu   sync.Mutex
	keys map[string]StoredKey
}

// NewMemoryKeyStore returns an empty store.
func NewMemoryKeyStore() *MemoryKeyStore {
	return &MemoryKeyStore{keys: map[string]StoredKey{}}
}

var _ KeyStore = (*MemoryKeyStore)(nil)

// InsertKey implements KeyStore.
func (m *MemoryKeyStore) InsertKey(_ context.Context, k StoredKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[k.ID]; ok {
		return fmt.Errorf("insert key %s: %w", k.ID, ErrKeyExists)
	}
	m.keys[k.ID] = k
	return nil
}

// LookupKey implements KeyStore.
func (m *MemoryKeyStore) LookupKey(_ context.Context, id string) (StoredKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return StoredKey{}, fmt.Errorf("key %s: %w", id, ErrKeyNotFound)
	}
	return k, nil
}

// RevokeKey implements KeyStore.
func (m *MemoryKeyStore) RevokeKey(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return fmt.Errorf("key %s: %w", id, ErrKeyNotFound)
	}
	if k.RevokedAt.IsZero() {
		k.RevokedAt = at
		m.keys[id] = k
	}
	return nil
}
