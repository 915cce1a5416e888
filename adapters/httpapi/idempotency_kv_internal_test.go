package httpapi

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	_ "modernc.org/sqlite" // driver "sqlite"
)

// TestIdempotencyRecordLayout checks where records go: under their expiry,
// with a 9-byte pointer under the client's key; and that a record stored
// the way earlier versions did (the whole record under the client's key)
// is still replayed after a restart and purged when it expires.
func TestIdempotencyRecordLayout(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "api.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := t.TempDir()
	open := func() *LocalIdempotencyStore {
		t.Helper()
		s, err := OpenLocalIdempotencyStore(db, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	exp := t0.Add(time.Hour)
	oldKey, newKey := IdemKey{Tenant: "acme", Key: "old-layout"}, IdemKey{Tenant: "acme", Key: "new-layout"}
	rec := func(body string) *localDone {
		return &localDone{fingerprint: "fp", expAt: exp, resp: StoredResponse{Status: 201, Header: http.Header{"Location": {"/v1/orders/" + body}}, Body: []byte(body)}}
	}

	s := open()
	b := s.kv.NewBatch()
	if err := b.Set(kvRecordKey(oldKey), encodeRecord(rec("old")), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(kvExpiryKey(exp, oldKey), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.kv.Apply(b, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := s.kvPut(newKey, rec("new")); err != nil {
		t.Fatal(err)
	}
	// The new layout, as stored.
	ptr, closer, err := s.kv.Get(kvRecordKey(newKey))
	if err != nil || len(ptr) != 9 || ptr[0] != kvPointerVersion {
		t.Fatalf("pointer under the client's key: %x, %v", ptr, err)
	}
	closer.Close()
	val, closer, err := s.kv.Get(kvExpiryKey(exp, newKey))
	if err != nil {
		t.Fatalf("record under its expiry: %v", err)
	}
	if d, err := decodeRecord(val); err != nil || string(d.resp.Body) != "new" {
		t.Fatalf("record under its expiry: %+v, %v", d, err)
	}
	closer.Close()
	s.Close()

	s = open()
	for k, want := range map[IdemKey]string{oldKey: "old", newKey: "new"} {
		got, err := s.Begin(ctx, BeginRequest{Key: k, Fingerprint: "fp", Lock: "L", Now: t0, LockedUntil: t0.Add(time.Minute), ExpiresAt: t0.Add(2 * time.Hour)})
		if err != nil || got.Replay == nil || string(got.Replay.Body) != want || got.Replay.Header.Get("Location") != "/v1/orders/"+want {
			t.Fatalf("%s after a restart: %+v, %v", k.Key, got, err)
		}
	}
	if n, err := s.Purge(ctx, exp); err != nil || n != 2 {
		t.Fatalf("purge at expiry: %d, %v; want both records", n, err)
	}
	it, err := s.kv.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		t.Errorf("left after the purge: %q", it.Key())
	}
	it.Close()
	s.Close()
}
