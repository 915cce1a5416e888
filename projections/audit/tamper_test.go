package audit_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/projections/audit"
	"github.com/livecore/livecore/projections/simulate"
)

// The Pebble store's on-disk layout (adapters/eventstore/pebble/codec.go),
// as an attacker with the files would learn it: 'e'+position -> record ||
// CRC-32C(key || record) little-endian; 'h'+stream -> version, position,
// hash || CRC.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func eventKey(pos uint64) []byte { return binary.BigEndian.AppendUint64([]byte{'e'}, pos) }

func headKey(stream string) []byte { return append([]byte{'h'}, stream...) }

func crc(key, payload []byte) []byte {
	c := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, payload)
	return binary.LittleEndian.AppendUint32(append([]byte(nil), payload...), c)
}

// record locates the fields an attacker edits in a stored record (value
// without its CRC): where the 8-byte position is and where Data starts.
func record(t *testing.T, payload []byte) (posOff, dataOff int) {
	t.Helper()
	off := 1
	for range 8 {
		n, w := binary.Uvarint(payload[off:])
		off += w + int(n)
	}
	_, w := binary.Uvarint(payload[off:])
	off += w
	return off + 16, off + 24 + 4*32
}

// pristine builds a Pebble store from a simulated history once per test
// binary and returns its directory and events.
func pristine(t *testing.T) (string, []event.Envelope) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pristine")
	sim := simulate.New(simulate.Config{Seed: 42, Orders: 120})
	mem := memory.New(memory.Config{Now: sim.Now})
	if _, err := sim.Run(t.Context(), mem); err != nil {
		t.Fatal(err)
	}
	src, err := mem.ReadAll(t.Context(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir)
	if _, err := simulate.Replicate(t.Context(), s, src, 1, 16); err != nil {
		t.Fatal(err)
	}
	all, err := s.ReadAll(t.Context(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, all
}

func openStore(t *testing.T, dir string) *pebble.Store {
	t.Helper()
	s, err := pebble.Open(pebble.Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawEdit opens the closed store's files with Pebble directly and edits them.
func rawEdit(t *testing.T, dir string, edit func(db *pdb.DB)) {
	t.Helper()
	db, err := pdb.Open(dir, &pdb.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	edit(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(f string, a ...any) {
	panic(fmt.Sprintf(f, a...))
}

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

func del(t *testing.T, db *pdb.DB, key []byte) {
	t.Helper()
	if err := db.Delete(key, pdb.Sync); err != nil {
		t.Fatal(err)
	}
}

// setHead points stream's head entry at e, as an attacker covering a
// truncation or renumbering would (the store checks the last event against
// it at Open).
func setHead(t *testing.T, db *pdb.DB, e event.Envelope) {
	var p []byte
	p = binary.BigEndian.AppendUint64(p, e.Version)
	p = binary.BigEndian.AppendUint64(p, e.Position)
	p = append(p, e.Hash[:]...)
	set(t, db, headKey(e.StreamID), crc(headKey(e.StreamID), p))
}

// TestTamperedPebbleStoreIsDetected damages a closed Pebble store's files
// the ways an attacker or a bad disk could and checks that Verify names the
// first bad position every time. Each kind runs at several random
// positions; the test prints detections per kind.
func TestTamperedPebbleStoreIsDetected(t *testing.T) {
	dir0, all := pristine(t)
	n := uint64(len(all))
	trusted := audit.Checkpoint{Position: n, GlobalHash: all[n-1].GlobalHash}
	type tamper struct {
		name  string
		kinds []audit.ProblemKind // acceptable classifications
		// edit damages db and returns the first bad position.
		edit func(t *testing.T, db *pdb.DB, rng *rand.Rand) uint64
		// trusted: verify against the recorded head checkpoint.
		trusted bool
	}
	pick := func(rng *rand.Rand) uint64 { return 2 + rng.Uint64N(n-3) }
	cases := []tamper{
		{"edit payload (checksum left broken)", []audit.ProblemKind{audit.KindCorrupt}, func(t *testing.T, db *pdb.DB, rng *rand.Rand) uint64 {
			p := pick(rng)
			v := get(t, db, eventKey(p))
			v[len(v)-5] ^= 0x04
			set(t, db, eventKey(p), v)
			return p
		}, false},
		{"edit payload, checksum recomputed", []audit.ProblemKind{audit.KindEdited}, func(t *testing.T, db *pdb.DB, rng *rand.Rand) uint64 {
			p := pick(rng)
			v := get(t, db, eventKey(p))
			payload := v[:len(v)-4]
			_, data := record(t, payload)
			payload[data+rng.IntN(len(payload)-data)] ^= 0x01
			set(t, db, eventKey(p), crc(eventKey(p), payload))
			return p
		}, false},
		{"edit metadata (actor), checksum recomputed", []audit.ProblemKind{audit.KindEdited}, func(t *testing.T, db *pdb.DB, rng *rand.Rand) uint64 {
			p := pick(rng)
			e := all[p-1]
			v := get(t, db, eventKey(p))
			payload := v[:len(v)-4]
			// The actor string is the 7th: flip its first byte.
			off := 1
			for i := range 7 {
				l, w := binary.Uvarint(payload[off:])
				off += w
				if i == 6 && l > 0 {
					payload[off] ^= 0x20
				}
				off += int(l)
			}
			if e.Metadata.Actor == "" {
				t.Skip("no actor")
			}
			set(t, db, eventKey(p), crc(eventKey(p), payload))
			return p
		}, false},
		{"delete an event", []audit.ProblemKind{audit.KindCorrupt}, func(t *testing.T, db *pdb.DB, rng *rand.Rand) uint64 {
			p := pick(rng)
			del(t, db, eventKey(p))
			return p
		}, false},
		{"delete an event, renumber the rest, checksums and head recomputed", []audit.ProblemKind{audit.KindBrokenLink, audit.KindMissing, audit.KindReordered}, func(t *testing.T, db *pdb.DB, rng *rand.Rand) uint64 {
			p := pick(rng)
			b := db.NewBatch()
			for q := p + 1; q <= n; q++ {
				v := get(t, db, eventKey(q))
				payload := v[:len(v)-4]
				pos, _ := record(t, payload)
				binary.BigEndian.PutUint64(payload[pos:], q-1)
				b.Set(eventKey(q-1), crc(eventKey(q-1), payload), nil)
			}
			b.Delete(eventKey(n), nil)
			if err := b.Commit(pdb.Sync); err != nil {
				t.Fatal(err)
			}
			last := all[n-1]
			last.Position = n - 1
			setHead(t, db, last)
			return p
		}, false},
		{"swap two events", []audit.ProblemKind{audit.KindCorrupt}, func(t *testing.T, db *pdb.DB, rng *rand.Rand) uint64 {
			p := pick(rng)
			q := p + 1 + rng.Uint64N(min(20, n-p))
			a, b := get(t, db, eventKey(p)), get(t, db, eventKey(q))
			set(t, db, eventKey(p), b)
			set(t, db, eventKey(q), a)
			return p
		}, false},
		{"swap two events, positions and checksums recomputed", []audit.ProblemKind{audit.KindBrokenLink, audit.KindMissing, audit.KindReordered}, func(t *testing.T, db *pdb.DB, rng *rand.Rand) uint64 {
			p := pick(rng)
			q := p + 1 + rng.Uint64N(min(20, n-p-1))
			a, b := get(t, db, eventKey(p)), get(t, db, eventKey(q))
			rewrite := func(v []byte, to uint64) []byte {
				payload := v[:len(v)-4]
				pos, _ := record(t, payload)
				binary.BigEndian.PutUint64(payload[pos:], to)
				return crc(eventKey(to), payload)
			}
			set(t, db, eventKey(p), rewrite(b, p))
			set(t, db, eventKey(q), rewrite(a, q))
			return p
		}, false},
		{"truncate the tail, heads recomputed", []audit.ProblemKind{audit.KindTruncated}, func(t *testing.T, db *pdb.DB, rng *rand.Rand) uint64 {
			k := 1 + rng.Uint64N(50)
			for q := n - k + 1; q <= n; q++ {
				del(t, db, eventKey(q))
			}
			// Point every affected stream's head at its last surviving
			// event, so the store opens cleanly.
			last := map[string]event.Envelope{}
			for _, e := range all[:n-k] {
				last[e.StreamID] = e
			}
			for _, e := range all[n-k:] {
				if l, ok := last[e.StreamID]; ok {
					setHead(t, db, l)
				} else {
					del(t, db, headKey(e.StreamID))
				}
			}
			return n - k + 1
		}, true},
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const trials = 6
			detected := 0
			for trial := range trials {
				rng := rand.New(rand.NewPCG(uint64(ci), uint64(trial)))
				dir := filepath.Join(t.TempDir(), "store")
				if err := os.CopyFS(dir, os.DirFS(dir0)); err != nil {
					t.Fatal(err)
				}
				var bad uint64
				rawEdit(t, dir, func(db *pdb.DB) { bad = tc.edit(t, db, rng) })
				s, err := pebble.Open(pebble.Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					t.Fatalf("open after tampering at %d: %v", bad, err)
				}
				opts := audit.VerifyOptions{BatchSize: 97}
				if tc.trusted {
					opts.Trusted = []audit.Checkpoint{trusted}
					// Without the trusted head the shortened chain is
					// internally consistent: that is why one is kept.
					if rep, err := audit.Verify(context.Background(), s, audit.VerifyOptions{}); err != nil || !rep.OK() {
						t.Fatalf("truncated chain without a trusted head: %+v, %v (expected to look intact)", rep.Problem, err)
					}
				}
				rep, err := audit.Verify(context.Background(), s, opts)
				s.Close()
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				switch p := rep.Problem; {
				case p == nil:
					t.Errorf("trial %d: tampering at %d not detected", trial, bad)
				case p.Position != bad || !slices.Contains(tc.kinds, p.Kind):
					t.Errorf("trial %d: tampered at %d, reported %v", trial, bad, p)
				default:
					detected++
					if trial == 0 {
						t.Logf("reported: %v", p)
					}
				}
			}
			t.Logf("%s: %d/%d detected at the exact first bad position", tc.name, detected, trials)
		})
	}
	// An untouched copy verifies clean from the start and from the middle.
	s := openStore(t, dir0)
	defer s.Close()
	for _, from := range []uint64{1, n / 2} {
		rep, err := audit.Verify(context.Background(), s, audit.VerifyOptions{From: from, Trusted: []audit.Checkpoint{trusted}, Streams: s, BatchSize: 500})
		if err != nil || !rep.OK() {
			t.Fatalf("pristine store from %d: %+v, %v", from, rep.Problem, err)
		}
		if rep.Last != trusted {
			t.Fatalf("last checkpoint %s, want %s", rep.Last, trusted)
		}
		t.Logf("pristine store from %d: %d events, %d streams, %d unanchored, OK", from, rep.Events, rep.Streams, rep.Unanchored)
	}
}

// TestTruncatedStoreWithStaleHeadDoesNotOpen: an attacker who truncates
// the tail without fixing the stream heads is caught by Open itself.
func TestTruncatedStoreWithStaleHeadDoesNotOpen(t *testing.T) {
	dir, all := pristine(t)
	rawEdit(t, dir, func(db *pdb.DB) { del(t, db, eventKey(uint64(len(all)))) })
	s, err := pebble.Open(pebble.Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		s.Close()
		t.Fatal("a store missing its last event opened")
	}
	if !errors.Is(err, event.ErrCorrupt) {
		t.Fatalf("open: %v, want ErrCorrupt", err)
	}
}
