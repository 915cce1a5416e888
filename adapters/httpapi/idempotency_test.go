package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/httpapi"
)

func TestIdempotencyParallelDuplicatesRunOnce(t *testing.T) {
	for _, st := range idemStores(t) {
		t.Run(st.name, func(t *testing.T) {
			e := newEnvWith(t, st.open(t), httpapi.NewMemoryKeyStore())
			e.app.delay = 30 * time.Millisecond
			const n = 50
			key := newIdemKey()
			results := make([]result, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					results[i] = e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", key), true)
				})
			}
			close(start)
			wg.Wait()

			var created, replayed, inFlight, other int
			var first []byte
			for _, res := range results {
				switch {
				case res.status == 201 && res.header.Get("Idempotent-Replayed") == "":
					created++
					first = res.body
				case res.status == 201:
					replayed++
				case res.status == 409 && res.problem(t).Code == httpapi.CodeIdempotencyKeyInUse:
					inFlight++
					if res.header.Get("Retry-After") == "" {
						t.Errorf("409 in flight without Retry-After")
					}
				default:
					other++
					t.Errorf("unexpected %d %s", res.status, res.body)
				}
			}
			for _, res := range results {
				if res.status == 201 && !bytes.Equal(res.body, first) {
					t.Errorf("replay differs from the original:\n%s\n%s", res.body, first)
				}
			}
			execs := e.app.executions.Load()
			t.Logf("%d parallel identical requests: %d executions, %d created, %d replayed, %d in flight (409), %d other", n, execs, created, replayed, inFlight, other)
			if execs != 1 || created != 1 || created+replayed+inFlight != n {
				t.Fatalf("want exactly 1 execution and 1 original response")
			}
		})
	}
}

func TestIdempotencyInFlightConflict(t *testing.T) {
	e := newEnv(t)
	e.app.gate = make(chan struct{})
	e.app.entered = make(chan struct{}, 1)
	key := newIdemKey()
	done := make(chan result, 1)
	go func() { done <- e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", key), true) }()
	<-e.app.entered

	res := e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", key), true)
	if res.status != 409 || res.problem(t).Code != httpapi.CodeIdempotencyKeyInUse {
		t.Fatalf("while in flight: %d %s", res.status, res.body)
	}
	// A different body while in flight is a misuse of the key: 422 wins.
	res = e.do(e.req("POST", "/v1/orders", e.checkout, strings.Replace(orderBody, `"quantity":2`, `"quantity":3`, 1), "Idempotency-Key", key), true)
	if res.status != 422 || res.problem(t).Code != httpapi.CodeIdempotencyKeyReused {
		t.Fatalf("other body while in flight: %d %s", res.status, res.body)
	}
	close(e.app.gate)
	orig := <-done
	replay := e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", key), true)
	if orig.status != 201 || replay.status != 201 || !bytes.Equal(orig.body, replay.body) {
		t.Fatalf("after completion: %d %s / %d %s", orig.status, orig.body, replay.status, replay.body)
	}
}

func TestIdempotencyReplayIsExact(t *testing.T) {
	e := newEnv(t)
	key := `"` + newIdemKey() + `"` // structured-field string form
	first := e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", key), true)
	if first.status != 201 || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v", first.status, first.header)
	}
	// Same key, bare instead of quoted, same body formatted differently.
	reformatted := strings.ReplaceAll(strings.ReplaceAll(orderBody, `,"`, `, "`), `":`, `" : `)
	second := e.do(e.req("POST", "/v1/orders", e.checkout, reformatted, "Idempotency-Key", strings.Trim(key, `"`)), true)
	if second.status != first.status || !bytes.Equal(second.body, first.body) {
		t.Fatalf("replay differs: %d %s vs %d %s", second.status, second.body, first.status, first.body)
	}
	for _, h := range []string{"Content-Type", "Location", "X-Livecore-Position", "Content-Length"} {
		if second.header.Get(h) != first.header.Get(h) || first.header.Get(h) == "" {
			t.Errorf("header %s: %q vs %q", h, second.header.Get(h), first.header.Get(h))
		}
	}
	if second.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay lacks Idempotent-Replayed: true")
	}
	if second.header.Get("X-Request-ID") == first.header.Get("X-Request-ID") {
		t.Errorf("a replay is a new request with its own ID")
	}
	if n := e.app.executions.Load(); n != 1 {
		t.Errorf("%d executions", n)
	}
}

func TestIdempotencyKeyReusedWithDifferentRequest(t *testing.T) {
	e := newEnv(t)
	key := newIdemKey()
	if res := e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", key), true); res.status != 201 {
		t.Fatal(res.status)
	}
	for name, r := range map[string]*http.Request{
		"other body": e.req("POST", "/v1/orders", e.checkout, strings.Replace(orderBody, "cus_1", "cus_2", 1), "Idempotency-Key", key),
		"other path": e.req("POST", "/v1/orders/ord_1/cancel", e.checkout, `{"reason":"x"}`, "Idempotency-Key", key),
	} {
		res := e.do(r, true)
		if res.status != 422 || res.problem(t).Code != httpapi.CodeIdempotencyKeyReused {
			t.Errorf("%s: %d %s", name, res.status, res.body)
		}
	}
	if n := e.app.executions.Load(); n != 1 {
		t.Errorf("%d executions", n)
	}
}

func TestIdempotencyKeyMissingOrMalformed(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, key string
		code      httpapi.Code
	}{
		{"missing", "", httpapi.CodeIdempotencyKeyMissing},
		{"empty quoted", `""`, httpapi.CodeMalformed},
		{"too long", strings.Repeat("k", 256), httpapi.CodeMalformed},
		{"space", "a b", httpapi.CodeMalformed},
	} {
		res := e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", tc.key), false)
		if res.status != 400 {
			t.Errorf("%s: %d %s", tc.name, res.status, res.body)
			continue
		}
		p := res.problem(t)
		if p.Code != tc.code || len(p.Errors) != 1 || p.Errors[0].Field != "Idempotency-Key" {
			t.Errorf("%s: %+v", tc.name, p)
		}
	}
	if n := e.app.executions.Load(); n != 0 {
		t.Errorf("%d executions", n)
	}
}

func TestIdempotencyKeysAreScopedByTenant(t *testing.T) {
	e := newEnv(t)
	key := newIdemKey()
	a := e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", key), true)
	b := e.do(e.req("POST", "/v1/orders", e.otherCheckout, orderBody, "Idempotency-Key", key), true)
	if a.status != 201 || b.status != 201 {
		t.Fatalf("%d / %d", a.status, b.status)
	}
	if b.header.Get("Idempotent-Replayed") != "" || bytes.Equal(a.body, b.body) || a.header.Get("Location") == b.header.Get("Location") {
		t.Fatalf("the second tenant got the first tenant's response")
	}
	b2 := e.do(e.req("POST", "/v1/orders", e.otherCheckout, orderBody, "Idempotency-Key", key), true)
	if !bytes.Equal(b2.body, b.body) || b2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("second tenant's own replay: %s", b2.body)
	}
	t.Logf("same key from 2 tenants: %d executions, 0 cross-tenant replays", e.app.executions.Load())
	if n := e.app.executions.Load(); n != 2 {
		t.Errorf("%d executions, want 2", n)
	}
}

func TestIdempotencyExpiryAndPurge(t *testing.T) {
	e := newEnv(t, func(c *httpapi.Config) { c.IdempotencyTTL = time.Hour })
	k1, k2 := newIdemKey(), newIdemKey()
	for _, k := range []string{k1, k2} {
		if res := e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", k), true); res.status != 201 {
			t.Fatal(res.status)
		}
	}
	e.clock.Advance(59 * time.Minute)
	if n, err := e.srv.PurgeIdempotencyKeys(context.Background()); err != nil || n != 0 {
		t.Fatalf("purge before expiry: %d %v", n, err)
	}
	if res := e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", k1), true); res.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay before expiry: %v", res.header)
	}
	e.clock.Advance(2 * time.Minute)
	// Expired but not purged yet: the key is new again, even with another body.
	other := strings.Replace(orderBody, "cus_1", "cus_2", 1)
	if res := e.do(e.req("POST", "/v1/orders", e.checkout, other, "Idempotency-Key", k1), true); res.status != 201 || res.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("expired key: %d %v", res.status, res.header)
	}
	n, err := e.srv.PurgeIdempotencyKeys(context.Background())
	if err != nil || n != 1 { // k2; k1 was renewed
		t.Fatalf("purge: %d %v", n, err)
	}
	if res := e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", k2), true); res.status != 201 || res.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("purged key: %d %v", res.status, res.header)
	}
	if got := e.app.executions.Load(); got != 4 {
		t.Errorf("%d executions, want 4", got)
	}
}

func TestIdempotencyRejectionsLeaveNothingBehind(t *testing.T) {
	e := newEnv(t)
	key := newIdemKey()
	bad := strings.Replace(orderBody, `"19.99"`, `"19.999"`, 1)
	res := e.do(e.req("POST", "/v1/orders", e.checkout, bad, "Idempotency-Key", key), false)
	if res.status != 422 {
		t.Fatalf("bad input: %d %s", res.status, res.body)
	}
	// The key is free: the corrected request (another body) runs.
	res = e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", key), true)
	if res.status != 201 || res.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("corrected request: %d %s", res.status, res.body)
	}

	// A domain rejection (409) and a failure (500) release the key too.
	var fail error = httpapi.Errorf(httpapi.CodeConflict, "already cancelled")
	calls := 0
	e.app.cancel = func(w http.ResponseWriter, r *http.Request) error {
		calls++
		if fail != nil {
			return fail
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	key = newIdemKey()
	for i, f := range []error{fail, httpapi.Internal(context.DeadlineExceeded)} {
		fail = f
		res := e.do(e.req("POST", "/v1/orders/ord_1/cancel", e.checkout, `{"reason":"x"}`, "Idempotency-Key", key), true)
		if res.status < 400 || res.header.Get("Idempotent-Replayed") != "" || calls != i+1 {
			t.Fatalf("attempt %d: %d replayed=%q calls=%d", i, res.status, res.header.Get("Idempotent-Replayed"), calls)
		}
	}
}

func TestIdempotencyDeadLockIsTakenOver(t *testing.T) {
	e := newEnv(t, func(c *httpapi.Config) { c.IdempotencyLockTimeout = time.Minute })
	e.app.gate = make(chan struct{})
	e.app.entered = make(chan struct{}, 2)
	key := newIdemKey()
	done := make(chan result, 1)
	go func() { done <- e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", key), true) }()
	<-e.app.entered
	// The first attempt hangs past the lock timeout (as if its process died).
	e.clock.Advance(2 * time.Minute)
	second := make(chan result, 1)
	go func() {
		second <- e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", key), true)
	}()
	<-e.app.entered // the retry runs
	close(e.app.gate)
	r1, r2 := <-done, <-second
	if r1.status != 201 || r2.status != 201 {
		t.Fatalf("%d %d", r1.status, r2.status)
	}
	if !strings.Contains(e.logs.String(), "idempotency lock lost") {
		t.Errorf("the stale owner's failed Complete should be logged")
	}
	// Both ran with the same command ID, so the event store would dedupe them.
	if n := len(e.app.commands); n != 1 {
		t.Errorf("%d distinct command IDs, want 1", n)
	}
}

var canonicalSeeds = []string{
	`{"customer_id":"cus_bench","currency":"USD","items":[{"sku":"TSHIRT-RED-M","quantity":1,"unit_price":{"amount":"19.99","currency":"USD"}},{"sku":"MUG-01","quantity":2,"unit_price":{"amount":"12.50","currency":"USD"}}]}`,
	` { "b" : [ 1 , 2.50 , -0 , 1E5, 1e-3 ] , "a" : { "z" : null , "y" : true , "x" : false } } `,
	`{"a":1,"a":2}`, `{"b":1,"a":2,"b":3}`, `{"<&>":"<a & b>"}`, `{"é":"ü"}`, `{"a":"\u00e9"}`, `{"a":"x\ny"}`, `"\u2028"`,
	`[]`, `{}`, `[[],{}]`, `"x"`, `12`, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `null`, `nul`, `{"a":1} x`, `{"a":1}}`, `{"a":1}]`, `{"a":1} {}`,
	`{"a":[1,]}`, `{"a" 1}`, `{"a":1,}`, "{\"a\":\"\t\"}", `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `[1,2,3`, `{"k":"v","K":"w","_":1,"0":2,"~":3}`,
}

// TestCanonicalFastPathAgrees: the fast canonical form is the one the
// decoder's (fingerprints stored by earlier versions stay valid), and it is
// taken for a well-formed order.
func TestCanonicalFastPathAgrees(t *testing.T) {
	for _, s := range canonicalSeeds {
		checkCanonicalAgrees(t, []byte(s))
	}
	if _, _, fast := httpapi.CanonicalJSONForTest([]byte(canonicalSeeds[0])); !fast {
		t.Errorf("the fast path refuses a well-formed order")
	}
	if _, _, fast := httpapi.CanonicalJSONForTest([]byte(`{"a":1,"a":2}`)); fast {
		t.Errorf("the fast path takes a duplicate member")
	}
}

func FuzzCanonicalFastPath(f *testing.F) {
	for _, s := range canonicalSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkCanonicalAgrees(t, body) })
}

func checkCanonicalAgrees(t *testing.T, body []byte) {
	t.Helper()
	got, decoded, _ := httpapi.CanonicalJSONForTest(body)
	if len(bytes.TrimSpace(body)) == 0 {
		decoded = nil
	}
	if !bytes.Equal(got, decoded) {
		t.Fatalf("body %q: canonical %q, decoder's %q", body, got, decoded)
	}
}
