package audit_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/livecore/livecore/projections/audit"
)

// readAllOnly hides a store's ScanAll: Verify reads it with ReadAll.
type readAllOnly struct{ audit.Source }

// TestVerifyScansLikeItReads: over the same Pebble store, pristine or
// damaged, Verify reports exactly the same whether it scans the store
// (audit.Scanner, the default for Pebble) or reads it with ReadAll:
// problem, reason, counts and checkpoint, for whole and partial ranges and
// several batch, reader and worker counts.
func TestVerifyScansLikeItReads(t *testing.T) {
	dir0, all := pristine(t)
	n := uint64(len(all))
	s0 := openStore(t, dir0)
	_, ok := audit.Source(s0).(audit.Scanner)
	s0.Close()
	if !ok {
		t.Fatal("the Pebble store is not an audit.Scanner")
	}
	rewrite := func(t *testing.T, db *pdb.DB, p uint64, change func(payload []byte)) {
		v := get(t, db, eventKey(p))
		payload := v[:len(v)-4]
		change(payload)
		set(t, db, eventKey(p), crc(eventKey(p), payload))
	}
	damage := []struct {
		name string
		edit func(t *testing.T, db *pdb.DB)
	}{
		{"pristine", func(*testing.T, *pdb.DB) {}},
		{"payload edited, checksum recomputed", func(t *testing.T, db *pdb.DB) {
			rewrite(t, db, n/3, func(payload []byte) {
				_, data := record(t, payload)
				payload[data+1] ^= 0x01
			})
		}},
		{"checksum broken", func(t *testing.T, db *pdb.DB) {
			v := get(t, db, eventKey(n/2))
			v[len(v)-5] ^= 0x04
			set(t, db, eventKey(n/2), v)
		}},
		{"event deleted", func(t *testing.T, db *pdb.DB) { del(t, db, eventKey(2*n/3)) }},
		{"events swapped, positions and checksums recomputed", func(t *testing.T, db *pdb.DB) {
			p, q := n/4, n/4+3
			a, b := get(t, db, eventKey(p)), get(t, db, eventKey(q))
			for _, sw := range []struct {
				v  []byte
				to uint64
			}{{b, p}, {a, q}} {
				payload := sw.v[:len(sw.v)-4]
				pos, _ := record(t, payload)
				binary.BigEndian.PutUint64(payload[pos:], sw.to)
				set(t, db, eventKey(sw.to), crc(eventKey(sw.to), payload))
			}
		}},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			if err := os.CopyFS(dir, os.DirFS(dir0)); err != nil {
				t.Fatal(err)
			}
			rawEdit(t, dir, func(db *pdb.DB) { d.edit(t, db) })
			s := openStore(t, dir)
			defer s.Close()
			for _, opts := range []audit.VerifyOptions{
				{},
				{BatchSize: 97},
				{BatchSize: 50, Readers: 3, Workers: 2},
				{BatchSize: 64, Readers: 1, Workers: 1},
				{From: n / 5, BatchSize: 200, Streams: s},
				{From: n / 5, To: n - 10, BatchSize: 33},
				{Trusted: []audit.Checkpoint{{Position: n, GlobalHash: all[n-1].GlobalHash}}, BatchSize: 128},
			} {
				scanned, err := audit.Verify(context.Background(), s, opts)
				if err != nil {
					t.Fatal(err)
				}
				read, err := audit.Verify(context.Background(), readAllOnly{s}, opts)
				if err != nil {
					t.Fatal(err)
				}
				if (scanned.Problem == nil) != (d.name == "pristine") {
					t.Fatalf("opts %+v: problem %v", opts, scanned.Problem)
				}
				if !reflect.DeepEqual(scanned.Problem, read.Problem) || scanned.Events != read.Events || scanned.Streams != read.Streams ||
					scanned.Unanchored != read.Unanchored || scanned.Last != read.Last || scanned.From != read.From || scanned.To != read.To {
					t.Fatalf("opts %+v:\n scanned %+v, problem %v\n read    %+v, problem %v", opts, scanned, scanned.Problem, read, read.Problem)
				}
			}
			var first *audit.Problem
			if rep, _ := audit.Verify(context.Background(), s, audit.VerifyOptions{}); rep.Problem != nil {
				first = rep.Problem
			}
			t.Logf("%d events: %v", n, first)
		})
	}
}
