package kurrentdb

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/livecore/livecore/adapters/eventstore/storetest"
	"github.com/livecore/livecore/domain/event"
)

// EnvURL names the KurrentDB/EventStoreDB the conformance suite runs
// against, e.g. esdb://admin:changeit@127.0.0.1:2113?tls=false.
const EnvURL = "LIVECORE_KURRENTDB_URL"

// TestConformanceKurrentDB runs the shared suite against a real server when
// LIVECORE_KURRENTDB_URL is set. Each subtest gets its own Namespace, so
// its store starts empty in a shared database.
func TestConformanceKurrentDB(t *testing.T) {
	url := os.Getenv(EnvURL)
	if url == "" {
		t.Skip("\n" + strings.Repeat("!", 78) + "\n" +
			"SKIPPED: the event store conformance suite did NOT run against KurrentDB/EventStoreDB:\n" +
			"  " + EnvURL + " is not set (no server on this machine). The adapter logic ran on the\n" +
			"  in-process ESDB fake (TestConformanceOnFake) and the mapping unit tests ran.\n" +
			"  To run it: start a KurrentDB or EventStoreDB (22.10+) node in insecure mode\n" +
			"  (--insecure) listening on 127.0.0.1:2113, then set\n" +
			"  " + EnvURL + "=esdb://admin:changeit@127.0.0.1:2113?tls=false\n" +
			strings.Repeat("!", 78))
	}
	run := time.Now().UnixNano()
	storetest.Run(t, func(t *testing.T) event.Store {
		ns := fmt.Sprintf("lc%d-%s-", run, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
		s, err := Open(Config{URL: url, Namespace: ns, PollInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestConformanceOnFake runs the shared suite on the adapter over the
// in-process ESDB fake (paging with tiny read batches, system and foreign
// events interleaved in $all).
func TestConformanceOnFake(t *testing.T) {
	storetest.Run(t, func(t *testing.T) event.Store {
		s, _ := storeOnFake(nil)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func proposed(cmd string, n int) []event.Proposed {
	out := make([]event.Proposed, n)
	for i := range out {
		out[i] = event.Proposed{
			ID: event.DeriveID(cmd, i), Type: "test.happened.v1", SchemaVersion: 1,
			Data:     fmt.Appendf(nil, `{"i":%d}`, i),
			Metadata: event.Metadata{Tenant: "t1", CorrelationID: cmd, CausationID: "c", Actor: "a", Region: "r"},
		}
	}
	return out
}

func TestAmbiguousFailures(t *testing.T) {
	cases := []struct {
		name  string
		fault func(f *fakeES, s *Store)
	}{
		{"unavailable before commit", func(f *fakeES, _ *Store) { f.failBefore = 1 }},
		{"committed then deadline, ESDB dedups the resend", func(f *fakeES, _ *Store) { f.commitThenFail = 1 }},
		{"committed then deadline, resend outside the dedup window", func(f *fakeES, _ *Store) {
			f.commitThenFail, f.noDedup = 1, true
		}},
		{"committed then deadline, stream moved before the resend", func(f *fakeES, s *Store) {
			f.commitThenFail, f.noDedup = 1, true
			once := true
			f.afterAppend = func(stream string) {
				if once {
					once = false
					// Another writer appends right after our lost ack.
					if _, err := s.Append(t.Context(), "order-1", event.Any, proposed("other", 1)); err != nil {
						t.Errorf("other writer: %v", err)
					}
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, f := storeOnFake(nil)
			ctx := t.Context()
			if _, err := s.Append(ctx, "order-1", event.NoStream, proposed("setup", 2)); err != nil {
				t.Fatal(err)
			}
			tc.fault(f, s)
			evs := proposed("cmd", 3)
			res, err := s.Append(ctx, "order-1", event.Exact(2), evs)
			if err != nil {
				t.Fatalf("append: %v", err)
			}
			if want := (event.AppendResult{FirstVersion: 3, LastVersion: 5, FirstPosition: 3, LastPosition: 5}); res != want {
				t.Fatalf("result %+v, want %+v", res, want)
			}
			for _, e := range evs {
				if n := f.count("order-1", esdbID(e.ID)); n != 1 {
					t.Fatalf("event %s stored %d times", e.ID, n)
				}
			}
			// The caller's own retry gets the same answer.
			if again, err := s.Append(ctx, "order-1", event.Exact(2), evs); err != nil || again != res {
				t.Fatalf("retry: %+v %v", again, err)
			}
		})
	}
}

func TestExpectedRevisionMapping(t *testing.T) {
	cases := []struct {
		exp  event.ExpectedVersion
		want esdb.ExpectedRevision
	}{
		{event.Any, esdb.Any{}},
		{event.NoStream, esdb.NoStream{}},
		{event.Exact(0), esdb.NoStream{}},
		{event.StreamExists, esdb.StreamExists{}},
		{event.Exact(1), esdb.Revision(0)},
		{event.Exact(42), esdb.Revision(41)},
	}
	for _, tc := range cases {
		if got := mapExpected(tc.exp); got != tc.want {
			t.Errorf("mapExpected(%s) = %#v, want %#v", tc.exp, got, tc.want)
		}
	}
	if got := expectedRevision(0); got != (esdb.NoStream{}) {
		t.Errorf("expectedRevision(0) = %#v", got)
	}
	if got := expectedRevision(7); got != esdb.Revision(6) {
		t.Errorf("expectedRevision(7) = %#v", got)
	}
}

func TestParseActual(t *testing.T) {
	cases := []struct {
		msg string
		v   uint64
		ok  bool
	}{
		{"[ErrorCodeWrongExpectedVersion] ...: wrong expected version: expecting '3' but got '5'", 6, true},
		{"wrong expected version: expecting 'no_stream' but got '0'", 1, true},
		{"wrong expected version: expecting '0' but got 'no_stream'", 0, true},
		{"wrong expected version: expecting 'any' but got '-1'", 0, true},
		{"something else", 0, false},
		{"expecting '1' but got 'x'", 0, false},
	}
	for _, tc := range cases {
		v, ok := parseActual(tc.msg)
		if v != tc.v || ok != tc.ok {
			t.Errorf("parseActual(%q) = %d %v, want %d %v", tc.msg, v, ok, tc.v, tc.ok)
		}
	}
}

func TestClassify(t *testing.T) {
	var wrong *wrongRevisionError
	if err := classify(esdb.ErrorCodeWrongExpectedVersion, "expecting '1' but got '4'"); !errors.As(err, &wrong) || wrong.actual != 5 || !wrong.known {
		t.Errorf("wrong expected version: %#v", err)
	}
	for _, c := range []esdb.ErrorCode{esdb.ErrorCodeDeadlineExceeded, esdb.ErrorUnavailable, esdb.ErrorAborted, esdb.ErrorCodeNotLeader} {
		var tr *transientError
		if err := classify(c, "x"); !errors.As(err, &tr) {
			t.Errorf("code %d: %v, want transient", c, err)
		}
	}
	var nf *notFoundError
	if err := classify(esdb.ErrorCodeResourceNotFound, "x"); !errors.As(err, &nf) {
		t.Errorf("not found: %v", err)
	}
	if err := classify(esdb.ErrorCodeConnectionClosed, "x"); !errors.Is(err, event.ErrClosed) {
		t.Errorf("closed: %v", err)
	}
	if err := classify(esdb.ErrorCodeStreamDeleted, "x"); !errors.Is(err, event.ErrCorrupt) {
		t.Errorf("deleted: %v", err)
	}
	for _, c := range []esdb.ErrorCode{esdb.ErrorCodeAccessDenied, esdb.ErrorCodeUnknown, esdb.ErrorCodeUnauthenticated} {
		var tr *transientError
		if err := classify(c, "denied"); err == nil || errors.As(err, &tr) || !strings.Contains(err.Error(), "denied") {
			t.Errorf("code %d: %v, want a plain error", c, err)
		}
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	for _, id := range []string{event.DeriveID("cmd", 0), "order-123/step-2", "0193B6A2-0000-7000-8000-000000000000"} {
		e := event.Envelope{
			ID: id, StreamID: "order-1", Type: "order.placed.v2", SchemaVersion: 2,
			Data:       []byte(`{"a":1}`),
			Metadata:   event.Metadata{Tenant: "t", CorrelationID: "corr", CausationID: "cause", Actor: "act", Region: "eu"},
			RecordedAt: time.Unix(1700000000, 123456789).UTC(), Version: 4,
		}
		e.PrevHash = event.Hash{1, 2, 3}
		e.Hash = event.StreamHash(e.PrevHash, &e)
		meta := encodeMeta(&e)
		if !strings.Contains(string(meta), `"$correlationId":"corr"`) || !strings.Contains(string(meta), `"$causationId":"cause"`) {
			t.Fatalf("metadata lacks ESDB's correlation keys: %s", meta)
		}
		r := record{ID: esdbID(id), Stream: "ns-order-1", Revision: 3, Type: e.Type, Data: e.Data, Meta: meta}
		got, err := decode("ns-", &r)
		if err != nil {
			t.Fatalf("%s: decode: %v", id, err)
		}
		if got.ID != e.ID || got.StreamID != e.StreamID || got.Version != 4 || got.Metadata != e.Metadata ||
			!got.RecordedAt.Equal(e.RecordedAt) || got.Hash != e.Hash || got.PrevHash != e.PrevHash || got.SchemaVersion != 2 {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", id, got, e)
		}
		if event.StreamHash(got.PrevHash, &got) != got.Hash {
			t.Fatalf("%s: decoded envelope does not match its hash", id)
		}
		if canonical := esdbID(id).String() == id; canonical == strings.Contains(string(meta), `"id":`) {
			t.Fatalf("%s: canonical %v but metadata %s", id, canonical, meta)
		}
	}
}

func TestDecodeSkipsAndRejects(t *testing.T) {
	notOurs := []record{
		{Stream: "$stats-1", Type: "$statsCollected", Meta: []byte(`{"livecore":1}`)},
		{Stream: "order-1", Type: "$metadata", Meta: []byte(`{"livecore":1}`)},
		{Stream: "other-ns-order-1", Type: "x.v1", Meta: []byte(`{"livecore":1}`)},
		{Stream: "ns-order-1", Type: "Foo", Meta: nil},
		{Stream: "ns-order-1", Type: "Foo", Meta: []byte(`{"x":1}`)},
		{Stream: "ns-order-1", Type: "Foo", Meta: []byte(`not json`)},
	}
	for _, r := range notOurs {
		if _, err := decode("ns-", &r); !errors.Is(err, errNotOurs) {
			t.Errorf("%s/%s %s: %v, want not ours", r.Stream, r.Type, r.Meta, err)
		}
	}
	corrupt := []record{
		{ID: uuid.New(), Stream: "ns-order-1", Type: "a.v1", Meta: []byte(`{"livecore":2}`)},
		{ID: uuid.New(), Stream: "ns-order-1", Type: "a.v1", Meta: []byte(`{"livecore":1,"hash":"zz"}`)},
		{ID: uuid.New(), Stream: "ns-order-1", Type: "a.v1", Meta: []byte(`{"livecore":1,"id":"other-id"}`)},
	}
	for _, r := range corrupt {
		if _, err := decode("ns-", &r); !errors.Is(err, event.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", r.Meta, err)
		}
	}
}

func TestESDBID(t *testing.T) {
	d := event.DeriveID("x", 1)
	if esdbID(d).String() != d {
		t.Fatalf("canonical UUID %s not kept", d)
	}
	a, b := esdbID("order-1/a"), esdbID("order-1/b")
	if a == b || a != esdbID("order-1/a") || a.Version() != 8 {
		t.Fatalf("name-based IDs: %s %s", a, b)
	}
}

func TestMatchRetry(t *testing.T) {
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	ids := []uuid.UUID{a, b, c}
	at := func(stream string, v, p uint64) storedAt { return storedAt{stream, v, p} }
	cases := []struct {
		name   string
		found  map[uuid.UUID]storedAt
		retry  bool
		res    event.AppendResult
		errSub string
	}{
		{"none stored", nil, false, event.AppendResult{}, ""},
		{"all in order", map[uuid.UUID]storedAt{a: at("s", 4, 10), b: at("s", 5, 11), c: at("s", 6, 12)}, true,
			event.AppendResult{FirstVersion: 4, LastVersion: 6, FirstPosition: 10, LastPosition: 12}, ""},
		{"partial", map[uuid.UUID]storedAt{a: at("s", 4, 10)}, false, event.AppendResult{}, "1 of 3"},
		{"other stream", map[uuid.UUID]storedAt{a: at("s", 4, 10), b: at("x", 5, 11), c: at("s", 6, 12)}, false, event.AppendResult{}, "stream x"},
		{"other order", map[uuid.UUID]storedAt{a: at("s", 5, 11), b: at("s", 4, 10), c: at("s", 6, 12)}, false, event.AppendResult{}, "not after"},
		{"gap", map[uuid.UUID]storedAt{a: at("s", 4, 10), b: at("s", 5, 11), c: at("s", 7, 14)}, false, event.AppendResult{}, "not after"},
	}
	for _, tc := range cases {
		res, retry, err := matchRetry("s", ids, tc.found)
		if tc.errSub != "" {
			if !errors.Is(err, event.ErrIdempotencyConflict) || !strings.Contains(err.Error(), tc.errSub) {
				t.Fatalf("%s: err %v, want an idempotency conflict mentioning %q", tc.name, err, tc.errSub)
			}
			continue
		}
		if err != nil || retry != tc.retry || res != tc.res {
			t.Fatalf("%s: %+v %v %v, want %+v %v", tc.name, res, retry, err, tc.res, tc.retry)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{}, {URL: "esdb://x", Namespace: "$sys"}} {
		c.setDefaults()
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c := Config{URL: "esdb://x"}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{URL: "::not a url"}); err == nil {
		t.Fatal("bad URL accepted")
	}
}
