package event_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/livecore/livecore/domain/event"
)

type placedV2 struct {
	OrderID string `json:"order_id"`
	Channel string `json:"channel"`
}

func (placedV2) EventType() string { return "thing.placed.v2" }

type noted struct {
	Text string `json:"text"`
}

func (noted) EventType() string { return "thing.noted.v1" }

func registry(t *testing.T) *event.Registry {
	t.Helper()
	r := event.NewRegistry()
	r.Register(func() event.Event { return &placedV2{} }, func() event.Event { return &noted{} })
	r.RegisterUpcaster("thing.placed.v1", "thing.placed.v2", func(b []byte) ([]byte, error) {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		m["channel"] = "web" // v1 had no channel; everything was web
		return json.Marshal(m)
	})
	return r
}

func TestRegistryEncodeDecodeAndUpcast(t *testing.T) {
	r := registry(t)
	typ, v, data, err := r.Encode(&placedV2{OrderID: "o1", Channel: "live"})
	if err != nil || typ != "thing.placed.v2" || v != 2 {
		t.Fatalf("encode: %s %d %v", typ, v, err)
	}
	got, err := r.Decode(typ, data)
	if err != nil || *got.(*placedV2) != (placedV2{"o1", "live"}) {
		t.Fatalf("decode: %+v %v", got, err)
	}
	old, err := r.Decode("thing.placed.v1", []byte(`{"order_id":"o0"}`))
	if err != nil || *old.(*placedV2) != (placedV2{"o0", "web"}) {
		t.Fatalf("upcast v1: %+v %v", old, err)
	}
	if _, err := r.Decode("thing.unknown.v1", []byte(`{}`)); !errors.Is(err, event.ErrUnknownEventType) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, _, _, err := event.NewRegistry().Encode(&noted{}); !errors.Is(err, event.ErrUnknownEventType) {
		t.Fatalf("encode unregistered: %v", err)
	}
	if !r.Known("thing.placed.v1") || r.Known("thing.placed.v3") {
		t.Fatal("Known")
	}
	if got := strings.Join(r.Names(), ","); got != "thing.noted.v1,thing.placed.v2" {
		t.Fatalf("Names: %s", got)
	}
}

func TestRegistrySetUnmarshal(t *testing.T) {
	r := registry(t)
	var calls int
	r.SetUnmarshal(func(data []byte, v any) error {
		calls++
		return json.Unmarshal(data, v)
	})
	got, err := r.Decode("thing.placed.v1", []byte(`{"order_id":"o0"}`))
	if err != nil || *got.(*placedV2) != (placedV2{"o0", "web"}) || calls != 1 {
		t.Fatalf("decode with the set unmarshal (%d calls): %+v %v", calls, got, err)
	}
	r.SetUnmarshal(nil) // back to encoding/json
	if _, err := r.Decode("thing.noted.v1", []byte(`{"text":"x"}`)); err != nil || calls != 1 {
		t.Fatalf("after SetUnmarshal(nil) (%d calls): %v", calls, err)
	}
}

func TestRegistryWiringBugsPanic(t *testing.T) {
	cases := map[string]func(r *event.Registry){
		"duplicate":        func(r *event.Registry) { r.Register(func() event.Event { return &noted{} }) },
		"upcast down":      func(r *event.Registry) { r.RegisterUpcaster("thing.x.v3", "thing.x.v2", nil) },
		"upcast rename":    func(r *event.Registry) { r.RegisterUpcaster("thing.x.v1", "other.x.v2", nil) },
		"upcast a current": func(r *event.Registry) { r.RegisterUpcaster("thing.noted.v1", "thing.noted.v2", nil) },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f(registry(t))
		})
	}
}

func TestParseTypeName(t *testing.T) {
	good := map[string]struct {
		base string
		v    int
	}{"order.placed.v1": {"order.placed", 1}, "a.b_c.d.v12": {"a.b_c.d", 12}}
	for in, want := range good {
		b, v, err := event.ParseTypeName(in)
		if err != nil || b != want.base || v != want.v {
			t.Errorf("%s: %s %d %v", in, b, v, err)
		}
	}
	for _, bad := range []string{"", "order", "order.placed", "order.placed.v0", "order.placed.v01", "Order.placed.v1", "order..placed.v1", "order.placed.v-1", ".v1", "order placed.v1"} {
		if _, _, err := event.ParseTypeName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDeriveIDIsDeterministicUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for _, cmd := range []string{"order/1/place", "order/1/authorize", "order/2/place", ""} {
		for i := range 3 {
			id := event.DeriveID(cmd, i)
			if !re.MatchString(id) {
				t.Fatalf("%q: not a version-8 UUID", id)
			}
			if id != event.DeriveID(cmd, i) {
				t.Fatal("not deterministic")
			}
			if seen[id] {
				t.Fatalf("collision %s", id)
			}
			seen[id] = true
		}
	}
}

func TestExpectedVersion(t *testing.T) {
	cases := []struct {
		e       event.ExpectedVersion
		current uint64
		holds   bool
	}{
		{event.Any, 0, true}, {event.Any, 5, true},
		{event.NoStream, 0, true}, {event.NoStream, 1, false},
		{event.StreamExists, 0, false}, {event.StreamExists, 3, true},
		{event.Exact(3), 3, true}, {event.Exact(3), 2, false}, {event.Exact(0), 0, true}, {event.Exact(0), 1, false},
	}
	for _, c := range cases {
		if got := c.e.Holds(c.current); got != c.holds {
			t.Errorf("%s.Holds(%d) = %v", c.e, c.current, got)
		}
	}
	var err error = &event.ConcurrencyError{Stream: "s", Expected: event.Exact(2), Actual: 3}
	if !errors.Is(err, event.ErrWrongExpectedVersion) || !strings.Contains(err.Error(), "version 3") {
		t.Fatalf("ConcurrencyError: %v", err)
	}
}

func TestValidateAppend(t *testing.T) {
	ok := event.Proposed{ID: "a", Type: "x.y.v1", SchemaVersion: 1, Data: []byte(`{}`)}
	if err := event.ValidateAppend("order-1", []event.Proposed{ok}); err != nil {
		t.Fatal(err)
	}
	bad := map[string]struct {
		stream string
		evs    []event.Proposed
	}{
		"no events":      {"order-1", nil},
		"empty stream":   {"", []event.Proposed{ok}},
		"system stream":  {"$all", []event.Proposed{ok}},
		"space":          {"order 1", []event.Proposed{ok}},
		"dup id":         {"order-1", []event.Proposed{ok, ok}},
		"no id":          {"order-1", []event.Proposed{{Type: "x.y.v1", SchemaVersion: 1, Data: []byte(`{}`)}}},
		"bad type":       {"order-1", []event.Proposed{{ID: "a", Type: "xy", SchemaVersion: 1, Data: []byte(`{}`)}}},
		"version differ": {"order-1", []event.Proposed{{ID: "a", Type: "x.y.v2", SchemaVersion: 1, Data: []byte(`{}`)}}},
		"no data":        {"order-1", []event.Proposed{{ID: "a", Type: "x.y.v1", SchemaVersion: 1}}},
	}
	for name, c := range bad {
		if err := event.ValidateAppend(c.stream, c.evs); !errors.Is(err, event.ErrInvalidAppend) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if event.Category("order-1-2") != "order" || event.Category("plain") != "plain" {
		t.Fatal("Category")
	}
}

// chain builds a sealed two-stream log.
func chain(n int) []event.Envelope {
	var out []event.Envelope
	var global event.Hash
	heads := map[string]event.Hash{}
	versions := map[string]uint64{}
	for i := range n {
		s := []string{"a-1", "b-1"}[i%2]
		versions[s]++
		e := event.Envelope{ID: event.DeriveID(s, i), StreamID: s, Type: "x.y.v1", SchemaVersion: 1,
			Data: []byte(`{"i":1}`), Metadata: event.Metadata{Tenant: "t1", Actor: "u"},
			RecordedAt: time.Unix(1700000000, int64(i)).UTC(), Version: versions[s], Position: uint64(i + 1)}
		event.Seal(&e, heads[s], global)
		heads[s], global = e.Hash, e.GlobalHash
		out = append(out, e)
	}
	return out
}

// verify walks a log and returns the first chain error.
func verify(log []event.Envelope) error {
	var global event.Hash
	var pos uint64
	heads := map[string]event.Hash{}
	versions := map[string]uint64{}
	for i := range log {
		e := &log[i]
		if err := event.VerifyGlobalLink(global, pos, e); err != nil {
			return err
		}
		if err := event.VerifyStreamLink(heads[e.StreamID], versions[e.StreamID], e); err != nil {
			return err
		}
		global, pos = e.GlobalHash, e.Position
		heads[e.StreamID], versions[e.StreamID] = e.Hash, e.Version
	}
	return nil
}

func TestHashChainsDetectTampering(t *testing.T) {
	if err := verify(chain(10)); err != nil {
		t.Fatalf("clean log: %v", err)
	}
	tamper := map[string]func([]event.Envelope) []event.Envelope{
		"edit data":  func(l []event.Envelope) []event.Envelope { l[4].Data = []byte(`{"i":2}`); return l },
		"edit actor": func(l []event.Envelope) []event.Envelope { l[4].Metadata.Actor = "mallory"; return l },
		"edit time": func(l []event.Envelope) []event.Envelope {
			l[4].RecordedAt = l[4].RecordedAt.Add(time.Second)
			return l
		},
		"delete": func(l []event.Envelope) []event.Envelope { return append(l[:4], l[5:]...) },
		"swap":   func(l []event.Envelope) []event.Envelope { l[4], l[5] = l[5], l[4]; return l },
		"rehash stream": func(l []event.Envelope) []event.Envelope {
			l[4].Data = []byte(`{}`)
			l[4].Hash = event.StreamHash(l[4].PrevHash, &l[4])
			return l
		},
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			err := verify(f(chain(10)))
			var ce *event.ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("not detected: %v", err)
			}
			if ce.Position != 5 && ce.Position != 6 {
				t.Fatalf("first bad position %d, want 5 (or 6 for a deletion)", ce.Position)
			}
		})
	}
}
