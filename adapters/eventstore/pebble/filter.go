package pebble

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// keyFilter is a Bloom filter over the store's event ID and stream head
// keys: every such key ever written is in it (loaded at Open, added when a
// group writes one), so a key it does not hold is not stored and the
// lookup (a Pebble Get that misses: new events and new streams, every
// append's checks) is skipped. A key it holds may or may not be stored and
// is read as before. Safe for concurrent use: bits are only ever set, with
// atomic operations, before the batch that writes their key is applied.
type keyFilter struct {
	bits []atomic.Uint64
	mask uint64
	seed maphash.Seed
}

// filterProbes is the bits per key; with 16 filter bits per key (the
// size Open picks for the keys it finds plus a million more) about 0.2%
// of the absent keys are looked up anyway.
const filterProbes = 4

func newKeyFilter(keys int) *keyFilter {
	n := uint64(keys+1<<20) * 16
	size := uint64(1) << bits.Len64(n-1) // a power of two, at least 2^24 bits (2 MiB)
	return &keyFilter{bits: make([]atomic.Uint64, size/64), mask: size - 1, seed: maphash.MakeSeed()}
}

func (f *keyFilter) probes(key []byte) (h1, h2 uint64) {
	x := maphash.Bytes(f.seed, key)
	return x, x>>32 | x<<32 | 1
}

func (f *keyFilter) add(key []byte) {
	h1, h2 := f.probes(key)
	for i := uint64(0); i < filterProbes; i++ {
		b := (h1 + i*h2) & f.mask
		f.bits[b/64].Or(1 << (b % 64))
	}
}

// mayHave is false only for a key never added.
func (f *keyFilter) mayHave(key []byte) bool {
	if f == nil {
		return true
	}
	h1, h2 := f.probes(key)
	for i := uint64(0); i < filterProbes; i++ {
		b := (h1 + i*h2) & f.mask
		if f.bits[b/64].Load()&(1<<(b%64)) == 0 {
			return false
		}
	}
	return true
}

// loadKeyFilter builds the filter from the ID and head keys on disk.
func loadKeyFilter(db *pebble.DB) (*keyFilter, error) {
	var keys [][]byte
	count := 0
	for _, kind := range []byte{kindID, kindHead} {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
		if err != nil {
			return nil, err
		}
		for ok := it.First(); ok; ok = it.Next() {
			count++
			if len(keys) < 1<<16 {
				keys = append(keys, append([]byte(nil), it.Key()...))
			}
		}
		if err := it.Close(); err != nil {
			return nil, err
		}
	}
	f := newKeyFilter(count)
	if count <= len(keys) {
		for _, k := range keys {
			f.add(k)
		}
		return f, nil
	}
	// Too many to hold: read them again into the filter, now sized.
	for _, kind := range []byte{kindID, kindHead} {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
		if err != nil {
			return nil, err
		}
		for ok := it.First(); ok; ok = it.Next() {
			f.add(it.Key())
		}
		if err := it.Close(); err != nil {
			return nil, err
		}
	}
	return f, nil
}
