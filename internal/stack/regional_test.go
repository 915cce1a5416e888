package stack_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/internal/stack"
)

// errElsewhere stands for "another region owns this home".
var errElsewhere = errors.New("owned by region far")

// TestRegionalHooks drives the API as a region node configures it (over
// real HTTP, every response checked against the spec): orders homed by
// market with the home in their ID; a market owned elsewhere answered 421
// with the owner's Location and nothing stored; a write whose
// acknowledgement fails answered 503, its key released, and acknowledged
// on retry; the dispatcher's filter keeps sagas off the homes not held.
func TestRegionalHooks(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the whole product")
	}
	var failAck atomic.Bool
	var acked atomic.Uint64
	var filtered atomic.Int64
	p := bootProduct(t, func(c *stack.Config) {
		c.NoTemporal = true
		c.Regional = stack.RegionHooks{
			Placement: func(ctx context.Context, market string) (string, error) {
				switch market {
				case "", "DE":
					return "eu", nil
				case "US":
					return "", errElsewhere
				}
				return "", &httpapi.Error{Code: httpapi.CodeInvalid, Message: "unknown market " + market}
			},
			Acknowledge: func(ctx context.Context, pos uint64) error {
				if failAck.Load() {
					return errNotDurable
				}
				acked.Store(pos)
				return nil
			},
			DispatchFilter: func(env event.Envelope) bool { filtered.Add(1); return false },
		}
		c.HTTP.MapError = func(r *http.Request, err error) *httpapi.Error {
			switch {
			case errors.Is(err, errElsewhere):
				return &httpapi.Error{Code: httpapi.CodeMisdirected, Err: err, Location: "http://far.example" + r.URL.RequestURI(), Message: "owned by far"}
			case errors.Is(err, errNotDurable):
				return &httpapi.Error{Code: httpapi.CodeUnavailable, Err: err, Message: "outcome unknown"}
			}
			return nil
		}
	})
	key := p.s.DemoKeys["checkout"]

	// Homed by market: the ID carries the home, and reads find it.
	body := cartBody(nil)
	body["market"] = "DE"
	r := p.want(t, call{method: "POST", path: "/v1/orders", key: key, idem: nextKey("de"), body: body, strict: true}, http.StatusCreated)
	var o orderResp
	r.json(t, &o)
	if !strings.HasPrefix(o.ID, "eu.ord_") {
		t.Fatalf("order ID %q: want the home prefix eu.", o.ID)
	}
	if acked.Load() == 0 || acked.Load() != o.Consistency.Position {
		t.Fatalf("acknowledged position %d, write at %d", acked.Load(), o.Consistency.Position)
	}
	p.want(t, call{method: "GET", path: "/v1/orders/" + o.ID, key: key, strict: true}, http.StatusOK)

	// Owned elsewhere: 421 with Location, nothing appended.
	before, err := p.s.Store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	body["market"] = "US"
	r = p.want(t, call{method: "POST", path: "/v1/orders", key: key, idem: nextKey("us"), body: body, strict: true}, http.StatusMisdirectedRequest)
	if loc := r.header.Get("Location"); loc != "http://far.example/v1/orders" {
		t.Fatalf("Location %q", loc)
	}
	var prob httpapi.Problem
	r.json(t, &prob)
	if prob.Code != httpapi.CodeMisdirected {
		t.Fatalf("problem %+v", prob)
	}
	if after, _ := p.s.Store.Head(context.Background()); after != before {
		t.Fatalf("a misdirected request appended: head %d -> %d", before, after)
	}

	// Unknown market: 422.
	body["market"] = "MARS"
	p.want(t, call{method: "POST", path: "/v1/orders", key: key, idem: nextKey("mars"), body: body, strict: true}, http.StatusUnprocessableEntity)

	// Acknowledgement withheld: 503, then the retry with the same key is
	// run again (not a replay of the 503) and acknowledged.
	body["market"] = "DE"
	idem := nextKey("ack")
	failAck.Store(true)
	p.want(t, call{method: "POST", path: "/v1/orders", key: key, idem: idem, body: body, strict: true}, http.StatusServiceUnavailable)
	failAck.Store(false)
	r = p.want(t, call{method: "POST", path: "/v1/orders", key: key, idem: idem, body: body, strict: true}, http.StatusCreated)
	var o2 orderResp
	r.json(t, &o2)
	if acked.Load() != o2.Consistency.Position {
		t.Fatalf("retry acknowledged at %d, order at %d", acked.Load(), o2.Consistency.Position)
	}
	if n := countEvents(t, p, func(e event.Envelope) bool { return e.StreamID == "order-"+o2.ID && e.Type == "order.placed.v2" }); n != 1 {
		t.Fatalf("order placed %d times across the 503 and its retry", n)
	}
}

var errNotDurable = errors.New("not durable yet")
