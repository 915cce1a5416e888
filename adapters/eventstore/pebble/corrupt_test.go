package pebble_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/domain/event"
)

func eventKey(pos uint64) []byte { return binary.BigEndian.AppendUint64([]byte{'e'}, pos) }

// tamper edits the raw Pebble database in dir (the store must be closed).
func tamper(t *testing.T, dir string, edit func(db *pdb.DB)) {
	t.Helper()
	db, err := pdb.Open(dir, &pdb.Options{Logger: quietLogger{t}})
	if err != nil {
		t.Fatal(err)
	}
	edit(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// quietLogger keeps Pebble's recovery chatter out of the test output.
type quietLogger struct{ t *testing.T }

func (quietLogger) Infof(string, ...any)           {}
func (l quietLogger) Errorf(f string, args ...any) { l.t.Logf("pebble: "+f, args...) }
func (l quietLogger) Fatalf(f string, args ...any) { l.t.Fatalf("pebble: "+f, args...) }

func get(t *testing.T, db *pdb.DB, key []byte) []byte {
	t.Helper()
	v, c, err := db.Get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	defer c.Close()
	return append([]byte(nil), v...)
}

func set(t *testing.T, db *pdb.DB, key, val []byte) {
	t.Helper()
	if err := db.Set(key, val, pdb.Sync); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptRecordsAreNeverServed damages stored values the ways a disk
// or a bug could (a flipped bit, a torn value, a record under the wrong
// key, a bad index entry) and checks that every read touching them fails
// with event.ErrCorrupt (ScanAll after handing over the intact prefix)
// while the intact prefix is still served.
func TestCorruptRecordsAreNeverServed(t *testing.T) {
	cases := []struct {
		name string
		bad  uint64 // first position whose read must fail
		edit func(t *testing.T, db *pdb.DB)
	}{
		{"flipped bit in data", 5, func(t *testing.T, db *pdb.DB) {
			v := get(t, db, eventKey(5))
			v[len(v)-10] ^= 0x01
			set(t, db, eventKey(5), v)
		}},
		{"flipped bit in a hash", 4, func(t *testing.T, db *pdb.DB) {
			v := get(t, db, eventKey(4))
			v[len(v)-60] ^= 0x80
			set(t, db, eventKey(4), v)
		}},
		{"torn record", 6, func(t *testing.T, db *pdb.DB) {
			v := get(t, db, eventKey(6))
			set(t, db, eventKey(6), v[:len(v)/2])
		}},
		{"record under the wrong key", 7, func(t *testing.T, db *pdb.DB) {
			set(t, db, eventKey(7), get(t, db, eventKey(8)))
		}},
		{"empty record", 3, func(t *testing.T, db *pdb.DB) {
			set(t, db, eventKey(3), nil)
		}},
		{"missing record", 5, func(t *testing.T, db *pdb.DB) {
			if err := db.Delete(eventKey(5), pdb.Sync); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := t.Context()
			s := open(t, pebble.Config{Dir: dir})
			for i := range 5 {
				if _, err := s.Append(ctx, "dmg-1", event.Any, proposed(tc.name+string(rune('a'+i)), 2)); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			tamper(t, dir, func(db *pdb.DB) { tc.edit(t, db) })
			s = open(t, pebble.Config{Dir: dir})

			if got, err := s.ReadAll(ctx, 1, int(tc.bad-1)); err != nil || len(got) != int(tc.bad-1) {
				t.Fatalf("intact prefix: %d events, %v", len(got), err)
			}
			if got, err := s.ReadAll(ctx, 1, 0); !errors.Is(err, event.ErrCorrupt) || got != nil {
				t.Fatalf("read $all over the damage: %d events, %v; want none, ErrCorrupt", len(got), err)
			}
			if got, err := s.ReadAll(ctx, tc.bad, 1); !errors.Is(err, event.ErrCorrupt) || got != nil {
				t.Fatalf("read the damaged position: %d events, %v; want none, ErrCorrupt", len(got), err)
			}
			if got, err := s.ReadStream(ctx, "dmg-1", 1, 0); !errors.Is(err, event.ErrCorrupt) || got != nil {
				t.Fatalf("read the stream: %d events, %v; want none, ErrCorrupt", len(got), err)
			}
			var seen uint64
			err := s.SubscribeAll(ctx, 1, func(_ context.Context, b []event.Envelope) error {
				seen += uint64(len(b))
				return nil
			})
			if !errors.Is(err, event.ErrCorrupt) {
				t.Fatalf("subscription over the damage: %v, want ErrCorrupt", err)
			}
			// ScanAll (audit verify's read) hands over the events before
			// the damage, then fails.
			scanned, serr := scan(t, s, 1, 0)
			if !errors.Is(serr, event.ErrCorrupt) || len(scanned) != int(tc.bad-1) {
				t.Fatalf("scan over the damage: %d events, %v; want the %d before it, ErrCorrupt", len(scanned), serr, tc.bad-1)
			}
			for i, e := range scanned {
				if e.Position != uint64(i+1) {
					t.Fatalf("scanned event %d has position %d", i, e.Position)
				}
			}
			if got, serr := scan(t, s, tc.bad, 1); !errors.Is(serr, event.ErrCorrupt) || len(got) != 0 {
				t.Fatalf("scan the damaged position: %d events, %v; want none, ErrCorrupt", len(got), serr)
			}
			t.Logf("damage at position %d: reads fail with %v", tc.bad, err)
		})
	}
}

// TestCorruptIndexIsDetected points a stream index entry and an event ID
// entry at the wrong place, or damages them.
func TestCorruptIndexIsDetected(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s := open(t, pebble.Config{Dir: dir})
	if _, err := s.Append(ctx, "idx-1", event.NoStream, proposed("idx-1", 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "idx-2", event.NoStream, proposed("idx-2", 3)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	streamKey := func(stream string, v uint64) []byte {
		return binary.BigEndian.AppendUint64(append(append([]byte{'s'}, stream...), 0), v)
	}
	idKey := append([]byte{'i'}, event.DeriveID("idx-1", 0)...)
	tamper(t, dir, func(db *pdb.DB) {
		// idx-1 v2 now claims idx-2 v2's value (a misdirected write).
		set(t, db, streamKey("idx-1", 2), get(t, db, streamKey("idx-2", 2)))
		v := get(t, db, idKey)
		v[0] ^= 0xff
		set(t, db, idKey, v)
	})
	s = open(t, pebble.Config{Dir: dir})
	if _, err := s.ReadStream(ctx, "idx-1", 1, 0); !errors.Is(err, event.ErrCorrupt) {
		t.Fatalf("read through a bad index entry: %v, want ErrCorrupt", err)
	}
	if got, err := s.ReadStream(ctx, "idx-2", 1, 0); err != nil || len(got) != 3 {
		t.Fatalf("intact stream: %d, %v", len(got), err)
	}
	if _, err := s.Append(ctx, "idx-1", event.Any, proposed("idx-1", 3)); !errors.Is(err, event.ErrCorrupt) {
		t.Fatalf("retry through a bad ID entry: %v, want ErrCorrupt", err)
	}
}

// TestOpenRefusesCorruptHead: the last event is what Open recovers the
// global head and hash from; if it is damaged, Open fails.
func TestOpenRefusesCorruptHead(t *testing.T) {
	dir := t.TempDir()
	s := open(t, pebble.Config{Dir: dir})
	if _, err := s.Append(t.Context(), "h-1", event.NoStream, proposed("h", 3)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	tamper(t, dir, func(db *pdb.DB) {
		v := get(t, db, eventKey(3))
		v[10] ^= 1
		set(t, db, eventKey(3), v)
	})
	if s, err := pebble.Open(pebble.Config{Dir: dir}); !errors.Is(err, event.ErrCorrupt) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("open with a corrupt last event: %v, want ErrCorrupt", err)
	}
}
