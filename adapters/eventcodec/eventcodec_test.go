package eventcodec_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/livecore/livecore/adapters/eventcodec"
	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/internal/stack"
	"github.com/livecore/livecore/projections/simulate"
)

// history is a simulated log with every domain event type in it.
func history(t testing.TB) []event.Envelope {
	t.Helper()
	ctx := context.Background()
	sim := simulate.New(simulate.Config{Seed: 7, Orders: 400})
	store := memory.New(memory.Config{Now: sim.Now})
	if _, err := sim.Run(ctx, store); err != nil {
		t.Fatal(err)
	}
	evs, err := store.ReadAll(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestSameEventsAsEncodingJSON decodes a simulated history with both
// decoders: every event must come out equal.
func TestSameEventsAsEncodingJSON(t *testing.T) {
	std, fast := stack.NewRegistry(), eventcodec.Fast(stack.NewRegistry())
	evs := history(t)
	types := map[string]int{}
	for _, e := range evs {
		want, err := std.Decode(e.Type, e.Data)
		if err != nil {
			t.Fatalf("position %d (%s): encoding/json: %v", e.Position, e.Type, err)
		}
		got, err := fast.Decode(e.Type, e.Data)
		if err != nil {
			t.Fatalf("position %d (%s): eventcodec: %v", e.Position, e.Type, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("position %d (%s): decoded differently:\nencoding/json %#v\neventcodec    %#v", e.Position, e.Type, want, got)
		}
		types[e.Type]++
	}
	if len(types) < 25 {
		t.Fatalf("the history has only %d event types: %v", len(types), types)
	}
	t.Logf("%d events of %d types decoded equally", len(evs), len(types))
}

// TestSameVerdictOnBadInput: what encoding/json rejects, eventcodec
// rejects; what it accepts, eventcodec decodes to the same value.
func TestSameVerdictOnBadInput(t *testing.T) {
	std, fast := stack.NewRegistry(), eventcodec.Fast(stack.NewRegistry())
	evs := history(t)
	seen := map[string]bool{}
	var checked int
	for _, e := range evs {
		if seen[e.Type] {
			continue
		}
		seen[e.Type] = true
		good := string(e.Data)
		for _, data := range []string{
			"", "null", "{}", "[]", `"x"`, "{", good[:len(good)/2], good + "x", good + " ",
			`{"order_id":1}`, `{"order_id":"a","order_id":"b"}`, `{"amount":"1e400"}`,
			`{"lines":[{"quantity":1.5}]}`, `{"lines":[{"quantity":-1}]}`, `{"at":"not a time"}`,
			"{\"order_id\":\"\xff\"}", `{"ORDER_ID":"case"}`,
		} {
			want, werr := std.Decode(e.Type, []byte(data))
			got, gerr := fast.Decode(e.Type, []byte(data))
			if (werr == nil) != (gerr == nil) {
				t.Errorf("%s %q: encoding/json error %v, eventcodec error %v", e.Type, data, werr, gerr)
				continue
			}
			if werr == nil && !reflect.DeepEqual(got, want) {
				t.Errorf("%s %q: decoded differently:\nencoding/json %#v\neventcodec    %#v", e.Type, data, want, got)
			}
			checked++
		}
	}
	t.Logf("%d inputs over %d event types: same verdicts", checked, len(seen))
}

// FuzzSameAsEncodingJSON mutates stored events: both decoders must agree.
func FuzzSameAsEncodingJSON(f *testing.F) {
	std, fast := stack.NewRegistry(), eventcodec.Fast(stack.NewRegistry())
	evs := history(f)
	names := std.Names()
	index := map[string]uint8{}
	for i, n := range names {
		index[n] = uint8(i)
	}
	for i, e := range evs {
		if i%40 == 0 {
			f.Add(index[e.Type], e.Data)
		}
	}
	f.Fuzz(func(t *testing.T, typ uint8, data []byte) {
		name := names[int(typ)%len(names)]
		want, werr := std.Decode(name, data)
		got, gerr := fast.Decode(name, data)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%s %q: encoding/json error %v, eventcodec error %v", name, data, werr, gerr)
		}
		if werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %q: decoded differently:\nencoding/json %#v\neventcodec    %#v", name, data, want, got)
		}
	})
}
