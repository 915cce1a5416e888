package httpapi

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2"
	pebblebloom "github.com/cockroachdb/pebble/v2/bloom"
)

// OpenLocalIdempotencyStore returns a LocalIdempotencyStore that keeps
// completed records in a Pebble database in dir (created if missing)
// instead of db's table: each Complete is one synced Pebble batch, and
// Pebble syncs the batches of concurrent requests together (a group
// commit: one WAL write and one fsync for all of them). A record is thus
// fsynced before its response is sent, where the table's group commits
// are written to SQLite's WAL without an fsync. Records in db's table
// (written by NewLocalIdempotencyStore's stores, an earlier version) are
// still replayed and purged. Migrate creates that table; Close closes the
// Pebble database.
//
// Why: a SQLite upsert per record touches a random page of the table's key
// index and SQLite writes every dirty page as a WAL frame of its own (two
// write calls each), about 10% of the CPU of placing an order; Pebble
// writes a group's records as one WAL record.
func OpenLocalIdempotencyStore(db *sql.DB, dir string, log *slog.Logger) (*LocalIdempotencyStore, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("idempotency records %s: %w", dir, err)
	}
	cache := pebble.NewCache(8 << 20)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache: cache,
		// Records have random keys, so every flushed memtable overlaps
		// the whole of the level below, and compacting it in rewrites
		// that level. With Pebble's defaults (4 MiB memtables, a
		// compaction per 4 L0 files) that took 11% of the CPU of a
		// bench api run at 2,200 orders/s once the search had written
		// ~300k records; larger memtables and L0 compactions that take
		// 16 files at once: 2.6%, for ~24 MiB more memory at most.
		MemTableSize:          16 << 20,
		L0CompactionThreshold: 16,
		L0StopWritesThreshold: 48,
		FormatMajorVersion:    pebble.FormatNewest,
		Logger:                kvLogger{log},
		// Requests complete a few at a time; without a pause Pebble would
		// sync nearly each on its own (an fsync costs far more system CPU
		// than the write): at most one sync per millisecond.
		WALMinSyncInterval: func() time.Duration { return time.Millisecond },
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = pebblebloom.FilterPolicy(10)
	}
	kv, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("idempotency records %s: %w", dir, err)
	}
	s := &LocalIdempotencyStore{
		db: db, kv: kv, inFlight: map[IdemKey]*localInFlight{},
		cur: map[IdemKey]*localDone{}, prev: map[IdemKey]*localDone{}, cacheMax: localCacheSize,
		stop: make(chan struct{}), stored: &bloom{seed: maphash.MakeSeed()},
	}
	return s, nil
}

// kvLogger drops Pebble's informational lines; errors go to the log, and
// fatal errors (a failed WAL write) end the process, as Pebble's default
// does: a store that cannot write must not answer as if it had.
type kvLogger struct{ log *slog.Logger }

func (l kvLogger) Infof(string, ...any) {}
func (l kvLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "idempotency-pebble")
}
func (l kvLogger) Fatalf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "idempotency-pebble", "fatal", true)
	os.Exit(1)
}

// Keys: kvExpiry + expiry (Unix microseconds, big-endian) + tenant + 0 +
// key holds a record, and kvRecord + tenant + 0 + key points to it: its
// value is kvPointerVersion and the expiry. Tenant IDs hold no 0 byte.
//
// Records live under their expiry because expiries only grow (now + the
// retention): new records go to the end of that keyspace, so Pebble's
// compactions move them down without rewriting older ones, and Purge
// deletes a prefix. Keyed by the client's random key, as before (records
// under kvRecord, the expiry key empty), every compaction of new records
// rewrote every record below them: at 4,271 orders/s after the ~600k of
// a bench's search, 250-460 ms compactions every few seconds, which the
// API's tail met. Only the small pointers are random now. Records stored
// the old way are still read and purged.
const (
	kvRecord byte = 'r'
	kvExpiry byte = 'x'
)

// kvPointerVersion is the first byte of a kvRecord value that points to
// its record (records stored under kvRecord start with kvRecordVersion).
const kvPointerVersion = 2

func kvRecordKey(k IdemKey) []byte {
	b := make([]byte, 0, 2+len(k.Tenant)+len(k.Key))
	b = append(b, kvRecord)
	b = append(b, k.Tenant...)
	b = append(b, 0)
	return append(b, k.Key...)
}

func kvExpiryKey(expAt time.Time, k IdemKey) []byte {
	return kvExpiryKeyMicros(uint64(micros(expAt)), k)
}

func kvExpiryKeyMicros(expAt uint64, k IdemKey) []byte {
	b := make([]byte, 0, 10+len(k.Tenant)+len(k.Key))
	b = append(b, kvExpiry)
	b = binary.BigEndian.AppendUint64(b, expAt)
	b = append(b, k.Tenant...)
	b = append(b, 0)
	return append(b, k.Key...)
}

func kvParseKey(b []byte) (IdemKey, bool) {
	t, k, ok := bytes.Cut(b, []byte{0})
	return IdemKey{Tenant: TenantID(t), Key: string(k)}, ok
}

// kvRecordVersion is the first byte of an encoded record.
const kvRecordVersion = 1

// encodeRecord: version, fingerprint, expiry (Unix microseconds), status,
// headers (count, then name and values of each), body (the rest). Lengths
// and numbers are varints.
func encodeRecord(d *localDone) []byte {
	n := 32 + len(d.fingerprint) + len(d.resp.Body)
	for k, vs := range d.resp.Header {
		n += 8 + len(k)
		for _, v := range vs {
			n += 4 + len(v)
		}
	}
	b := make([]byte, 0, n)
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, kvRecordVersion)
	str(d.fingerprint)
	b = binary.AppendVarint(b, micros(d.expAt))
	b = binary.AppendUvarint(b, uint64(d.resp.Status))
	b = binary.AppendUvarint(b, uint64(len(d.resp.Header)))
	for k, vs := range d.resp.Header {
		str(k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			str(v)
		}
	}
	return append(b, d.resp.Body...)
}

var errBadRecord = errors.New("idempotency record: malformed")

func decodeRecord(b []byte) (*localDone, error) {
	if len(b) == 0 || b[0] != kvRecordVersion {
		return nil, errBadRecord
	}
	b = b[1:]
	bad := false
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	str := func() string {
		n := uv()
		if bad || n > uint64(len(b)) {
			bad = true
			return ""
		}
		s := string(b[:n])
		b = b[n:]
		return s
	}
	d := &localDone{fingerprint: str()}
	exp, n := binary.Varint(b)
	if bad || n <= 0 {
		return nil, errBadRecord
	}
	b = b[n:]
	d.expAt = time.UnixMicro(exp)
	d.resp.Status = int(uv())
	nh := uv()
	if bad || nh > uint64(len(b)) {
		return nil, errBadRecord
	}
	d.resp.Header = make(http.Header, nh)
	for range nh {
		k := str()
		nv := uv()
		if bad || nv > uint64(len(b)) {
			return nil, errBadRecord
		}
		vs := make([]string, 0, nv)
		for range nv {
			vs = append(vs, str())
		}
		d.resp.Header[k] = vs
	}
	if bad {
		return nil, errBadRecord
	}
	d.resp.Body = bytes.Clone(b)
	return d, nil
}

// kvPut stores a completed record, synced.
func (s *LocalIdempotencyStore) kvPut(k IdemKey, d *localDone) error {
	b := s.kv.NewBatch()
	defer b.Close()
	exp := uint64(micros(d.expAt))
	if err := b.Set(kvExpiryKeyMicros(exp, k), encodeRecord(d), nil); err != nil {
		return err
	}
	ptr := binary.BigEndian.AppendUint64([]byte{kvPointerVersion}, exp)
	if err := b.Set(kvRecordKey(k), ptr, nil); err != nil {
		return err
	}
	if err := s.kv.Apply(b, pebble.Sync); err != nil {
		return fmt.Errorf("idempotency complete: %w", err)
	}
	return nil
}

// kvGet reads k's record (nil if there is none or it expired by now).
func (s *LocalIdempotencyStore) kvGet(k IdemKey, now time.Time) (*localDone, bool, error) {
	val, closer, err := s.kv.Get(kvRecordKey(k))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("idempotency begin: read: %w", err)
	}
	if len(val) == 9 && val[0] == kvPointerVersion {
		exp := binary.BigEndian.Uint64(val[1:])
		closer.Close()
		val, closer, err = s.kv.Get(kvExpiryKeyMicros(exp, k))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, false, fmt.Errorf("idempotency begin: %w: key %q points to a record that is not there", errBadRecord, k.Key)
		}
		if err != nil {
			return nil, false, fmt.Errorf("idempotency begin: read: %w", err)
		}
	}
	defer closer.Close()
	d, err := decodeRecord(val)
	if err != nil {
		return nil, false, fmt.Errorf("idempotency begin: %w", err)
	}
	if !d.expAt.After(now) {
		return nil, true, nil
	}
	return d, true, nil
}

// kvKeys adds the keys of the stored records to the Bloom filter. The
// caller holds s.mu.
func (s *LocalIdempotencyStore) kvKeys() error {
	it, err := s.kv.NewIter(&pebble.IterOptions{LowerBound: []byte{kvRecord}, UpperBound: []byte{kvRecord + 1}})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if k, ok := kvParseKey(it.Key()[1:]); ok {
			s.stored.add(k)
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// kvPurge deletes the records that expire at or before before; keys in
// flight again (taken over after expiry) are not counted.
func (s *LocalIdempotencyStore) kvPurge(ctx context.Context, before time.Time) (int64, error) {
	upper := binary.BigEndian.AppendUint64([]byte{kvExpiry}, uint64(micros(before))+1)
	it, err := s.kv.NewIter(&pebble.IterOptions{LowerBound: []byte{kvExpiry}, UpperBound: upper})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	b := s.kv.NewBatch()
	defer b.Close()
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		key := it.Key()
		if len(key) < 9 {
			continue
		}
		k, ok := kvParseKey(key[9:])
		if !ok {
			continue
		}
		// The record may have been completed again since, with a later
		// expiry (its own index entry).
		d, found, err := s.kvGet(k, before)
		if err != nil {
			return n, err
		}
		if found && d == nil {
			if err := b.Delete(kvRecordKey(k), nil); err != nil {
				return n, err
			}
			s.mu.Lock()
			_, again := s.inFlight[k]
			s.mu.Unlock()
			if !again {
				n++
			}
		}
		if err := b.Delete(bytes.Clone(key), nil); err != nil {
			return n, err
		}
	}
	if err := it.Error(); err != nil {
		return n, err
	}
	if err := s.kv.Apply(b, pebble.NoSync); err != nil {
		return n, fmt.Errorf("idempotency purge: %w", err)
	}
	return n, nil
}
