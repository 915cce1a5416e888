package kurrentdb

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/livecore/livecore/domain/event"
)

// fakeES is an in-process stand-in for ESDB's streams API with the
// semantics the adapter relies on: per-stream revisions, expected-revision
// checks with the actual revision reported, ESDB's no-op for a repeated
// append of the same IDs at the same expected revision, $all ordered by
// (commit, prepare) byte positions with gaps, system and foreign events
// interleaved, and injected faults.
type fakeES struct {
	mu      sync.Mutex
	log     []record
	streams map[string][]int // stream -> indexes into log by revision
	next    uint64
	appends int
	closed  bool

	// Faults, consumed one per append.
	failBefore     int  // fail transiently without writing
	commitThenFail int  // write, then report a transient error
	noDedup        bool // behave as if outside ESDB's idempotency window
	// afterAppend runs (unlocked) after every append that wrote.
	afterAppend func(stream string)
}

func newFake() *fakeES { return &fakeES{streams: map[string][]int{}, next: 1000} }

var _ backend = (*fakeES)(nil)

func (f *fakeES) appendToStream(ctx context.Context, stream string, expected esdb.ExpectedRevision, evs []proposal) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	err := f.appendLocked(stream, expected, evs)
	hook := f.afterAppend
	f.mu.Unlock()
	if hook != nil && (err == nil || isTransient(err)) {
		hook(stream)
	}
	return err
}

func isTransient(err error) bool { _, ok := err.(*transientError); return ok }

func (f *fakeES) appendLocked(stream string, expected esdb.ExpectedRevision, evs []proposal) error {
	if f.closed {
		return classify(esdb.ErrorCodeConnectionClosed, "closed")
	}
	if f.failBefore > 0 {
		f.failBefore--
		return &transientError{msg: "injected: unavailable before commit"}
	}
	revs := f.streams[stream]
	current := uint64(len(revs)) // our version of the last event
	// ESDB: the same IDs already at the expected place is a no-op success.
	var at uint64
	exact := true
	switch e := expected.(type) {
	case esdb.NoStream:
		at = 0
	case esdb.StreamRevision:
		at = e.Value + 1
	default:
		exact = false
	}
	if exact && !f.noDedup && at+uint64(len(evs)) <= current {
		same := true
		for i, p := range evs {
			if f.log[revs[at+uint64(i)]].ID != p.ID {
				same = false
			}
		}
		if same {
			return nil
		}
	}
	ok := false
	switch e := expected.(type) {
	case esdb.Any:
		ok = true
	case esdb.NoStream:
		ok = current == 0
	case esdb.StreamExists:
		ok = current > 0
	case esdb.StreamRevision:
		ok = current == e.Value+1
	}
	if !ok {
		msg := fmt.Sprintf("wrong expected version: expecting '%v' but got '%d'", expected, int64(current)-1)
		if current == 0 {
			msg = fmt.Sprintf("wrong expected version: expecting '%v' but got 'no_stream'", expected)
		}
		return classify(esdb.ErrorCodeWrongExpectedVersion, msg)
	}
	f.appends++
	if f.appends%3 == 0 {
		f.write(record{ID: uuid.New(), Stream: "$stats-127.0.0.1:2113", Type: "$statsCollected", Data: []byte(`{}`)}, f.next)
	}
	if f.appends%5 == 0 {
		f.write(record{ID: uuid.New(), Stream: "otherapp-1", Type: "Happened", Data: []byte(`{}`), Meta: []byte(`{"x":1}`)}, f.next)
	}
	commit := f.next // one commit position, distinct prepare positions
	for _, p := range evs {
		f.write(record{ID: p.ID, Stream: stream, Type: p.Type, Data: clone(p.Data), Meta: clone(p.Meta)}, commit)
	}
	if f.commitThenFail > 0 {
		f.commitThenFail--
		return &transientError{msg: "injected: deadline exceeded after commit"}
	}
	return nil
}

func (f *fakeES) write(r record, commit uint64) {
	r.Revision = uint64(len(f.streams[r.Stream]))
	r.Pos = allPos{Commit: commit, Prepare: f.next}
	f.next += 97 + uint64(len(r.Data)+len(r.Meta))
	f.streams[r.Stream] = append(f.streams[r.Stream], len(f.log))
	f.log = append(f.log, r)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func copyRecord(r record) record {
	r.Data, r.Meta = clone(r.Data), clone(r.Meta)
	return r
}

func (f *fakeES) readStream(ctx context.Context, stream string, from esdb.StreamPosition, count uint64, backwards bool) ([]record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, classify(esdb.ErrorCodeConnectionClosed, "closed")
	}
	revs, ok := f.streams[stream]
	if !ok {
		return nil, &notFoundError{}
	}
	var out []record
	if backwards {
		i := len(revs) - 1
		if r, ok := from.(esdb.StreamRevision); ok {
			i = min(i, int(r.Value))
		}
		for ; i >= 0 && uint64(len(out)) < count; i-- {
			out = append(out, copyRecord(f.log[revs[i]]))
		}
		return out, nil
	}
	i := 0
	switch r := from.(type) {
	case esdb.StreamRevision:
		i = int(r.Value)
	case esdb.End:
		i = len(revs)
	}
	for ; i < len(revs) && uint64(len(out)) < count; i++ {
		out = append(out, copyRecord(f.log[revs[i]]))
	}
	return out, nil
}

func (f *fakeES) readAll(ctx context.Context, from esdb.AllPosition, count uint64) ([]record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, classify(esdb.ErrorCodeConnectionClosed, "closed")
	}
	i := 0
	if p, ok := from.(esdb.Position); ok {
		i = sort.Search(len(f.log), func(k int) bool {
			q := f.log[k].Pos
			return q.Commit > p.Commit || q.Commit == p.Commit && q.Prepare >= p.Prepare
		})
	}
	var out []record
	for ; i < len(f.log) && uint64(len(out)) < count; i++ {
		out = append(out, copyRecord(f.log[i]))
	}
	return out, nil
}

func (f *fakeES) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// count returns how many records of stream hold id.
func (f *fakeES) count(stream string, id uuid.UUID) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, i := range f.streams[stream] {
		if f.log[i].ID == id {
			n++
		}
	}
	return n
}

// storeOnFake returns a Store on a fresh fake.
func storeOnFake(mod func(*Config)) (*Store, *fakeES) {
	cfg := Config{URL: "esdb://fake", PollInterval: 10 * 1e6, ReadBatch: 7}
	if mod != nil {
		mod(&cfg)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	f := newFake()
	return newStore(cfg, f), f
}

var _ = event.ErrClosed
