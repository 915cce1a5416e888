package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/httpapi"
)

func TestProblemDetailsShape(t *testing.T) {
	e := newEnv(t)
	r := e.req("GET", "/v1/orders/ord_missing", e.checkout, "", "X-Request-ID", "req-123")
	res := e.do(r, true)
	if res.status != http.StatusNotFound {
		t.Fatalf("status %d, want 404: %s", res.status, res.body)
	}
	p := res.problem(t)
	want := httpapi.Problem{
		Type:      "https://livecore.dev/problems/not_found",
		Title:     "Not found",
		Status:    404,
		Detail:    "no order ord_missing",
		Instance:  "/v1/orders/ord_missing",
		Code:      httpapi.CodeNotFound,
		RequestID: "req-123",
	}
	if fmt.Sprint(p) != fmt.Sprint(want) {
		t.Errorf("problem\n got %+v\nwant %+v", p, want)
	}
	if got := res.header.Get("X-Request-ID"); got != "req-123" {
		t.Errorf("X-Request-ID %q", got)
	}
}

func TestUnknownRouteAndMethodAreProblems(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		method, path string
		status       int
		code         httpapi.Code
	}{
		{"GET", "/v1/nope", 404, httpapi.CodeNotFound},
		{"DELETE", "/v1/orders/ord_1", 405, httpapi.CodeMethodNotAllowed},
	} {
		resp, err := e.client.Do(e.req(tc.method, tc.path, e.checkout, ""))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res := result{status: resp.StatusCode, header: resp.Header, body: b}
		if res.status != tc.status {
			t.Fatalf("%s %s: status %d, want %d: %s", tc.method, tc.path, res.status, tc.status, b)
		}
		if p := res.problem(t); p.Code != tc.code {
			t.Errorf("%s %s: code %s, want %s", tc.method, tc.path, p.Code, tc.code)
		}
	}
}

func TestInternalErrorsDoNotLeak(t *testing.T) {
	e := newEnv(t)
	e.app.cancel = func(http.ResponseWriter, *http.Request) error {
		return fmt.Errorf("query orders: %w", errors.New("pq: password authentication failed for user secret_admin"))
	}
	res := e.do(e.req("POST", "/v1/orders/ord_1/cancel", e.checkout, `{"reason":"x"}`, "Idempotency-Key", newIdemKey()), true)
	if res.status != 500 {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	p := res.problem(t)
	if p.Code != httpapi.CodeInternal || strings.Contains(string(res.body), "secret_admin") || strings.Contains(string(res.body), "pq:") {
		t.Errorf("internal error leaked or wrong code: %s", res.body)
	}
	if p.RequestID == "" || !strings.Contains(e.logs.String(), "secret_admin") || !strings.Contains(e.logs.String(), p.RequestID) {
		t.Errorf("the cause should be logged under request ID %q:\n%s", p.RequestID, e.logs.String())
	}
}

func TestPanicIsRecoveredAs500AndReleasesTheKey(t *testing.T) {
	e := newEnv(t)
	calls := 0
	e.app.cancel = func(w http.ResponseWriter, r *http.Request) error {
		calls++
		if calls == 1 {
			panic("boom: nil map")
		}
		w.Header().Set("Content-Type", "application/json")
		return httpapi.Errorf(httpapi.CodeConflict, "already cancelled")
	}
	key := newIdemKey()
	res := e.do(e.req("POST", "/v1/orders/ord_1/cancel", e.checkout, `{"reason":"x"}`, "Idempotency-Key", key), true)
	if res.status != 500 || res.problem(t).Code != httpapi.CodeInternal || strings.Contains(string(res.body), "boom") {
		t.Fatalf("panic: status %d body %s", res.status, res.body)
	}
	if !strings.Contains(e.logs.String(), "boom: nil map") {
		t.Errorf("panic not logged")
	}
	// The key was released: the retry runs the handler again.
	res = e.do(e.req("POST", "/v1/orders/ord_1/cancel", e.checkout, `{"reason":"x"}`, "Idempotency-Key", key), true)
	if res.status != 409 || calls != 2 {
		t.Fatalf("retry after panic: status %d calls %d", res.status, calls)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	revoked, err := e.keys.CreateKey(context.Background(), "acme", httpapi.RoleCheckout)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.keys.RevokeKey(context.Background(), httpapi.KeyID(revoked)); err != nil {
		t.Fatal(err)
	}
	wrongSecret := e.checkout[:len(e.checkout)-4] + "aaaa"
	if wrongSecret == e.checkout {
		wrongSecret = e.checkout[:len(e.checkout)-4] + "bbbb"
	}
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"no header", "", 401},
		{"not bearer", "Basic " + e.checkout, 401},
		{"garbage", "Bearer nope", 401},
		{"unknown id", "Bearer lc_0123456789abcdef_" + strings.Repeat("a", 52), 401},
		{"wrong secret", "Bearer " + wrongSecret, 401},
		{"revoked", "Bearer " + revoked, 401},
		{"wrong role", "Bearer " + e.ops, 403},
		{"ok", "Bearer " + e.checkout, 201},
		{"ok, lower-case scheme", "bearer " + e.checkout, 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.req("POST", "/v1/orders", "", orderBody, "Idempotency-Key", newIdemKey(), "Authorization", tc.auth)
			res := e.do(r, tc.status == 201)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			switch tc.status {
			case 401:
				if res.problem(t).Code != httpapi.CodeUnauthorized || res.header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without code or WWW-Authenticate: %v %s", res.header, res.body)
				}
			case 403:
				if p := res.problem(t); p.Code != httpapi.CodeForbidden || !strings.Contains(p.Detail, "ops") {
					t.Errorf("403 problem %+v", p)
				}
			}
		})
	}
	// Every role allowed on a route gets in; the principal reaches the handler.
	for _, k := range []string{e.checkout, e.finance, e.ops} {
		if res := e.do(e.req("GET", "/v1/orders/x", k, ""), true); res.status != 404 {
			t.Errorf("GET with an allowed role: %d", res.status)
		}
	}
}

func TestPrincipalAndTenantIsolation(t *testing.T) {
	e := newEnv(t)
	res := e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", newIdemKey()), true)
	if res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	loc := res.header.Get("Location")
	if got := e.do(e.req("GET", loc, e.finance, ""), true); got.status != 200 || string(got.body) != string(res.body) {
		t.Errorf("same tenant read: %d %s", got.status, got.body)
	}
	if got := e.do(e.req("GET", loc, e.otherCheckout, ""), true); got.status != 404 {
		t.Errorf("other tenant read its neighbour's order: %d %s", got.status, got.body)
	}
}

func TestBodyLimitsAndContentType(t *testing.T) {
	e := newEnv(t, func(c *httpapi.Config) { c.MaxBodyBytes = 1024 })
	big := `{"currency":"USD","items":[` + strings.Repeat(`{"sku":"A","quantity":1,"unit_price":{"amount":"1.00","currency":"USD"}},`, 40) + `{"sku":"A","quantity":1,"unit_price":{"amount":"1.00","currency":"USD"}}]}`
	for _, tc := range []struct {
		name, body, ct string
		chunked        bool
		status         int
		code           httpapi.Code
	}{
		{"too large", big, "application/json", false, 413, httpapi.CodeTooLarge},
		{"too large, chunked", big, "application/json", true, 413, httpapi.CodeTooLarge},
		{"text/plain", orderBody, "text/plain", false, 415, httpapi.CodeUnsupportedMediaType},
		{"no content type", orderBody, "", false, 415, httpapi.CodeUnsupportedMediaType},
		{"latin1", orderBody, "application/json; charset=iso-8859-1", false, 415, httpapi.CodeUnsupportedMediaType},
		{"form", "a=b", "application/x-www-form-urlencoded", false, 415, httpapi.CodeUnsupportedMediaType},
		{"utf-8 ok", orderBody, "application/json; charset=UTF-8", false, 201, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.req("POST", "/v1/orders", e.checkout, tc.body, "Idempotency-Key", newIdemKey(), "Content-Type", tc.ct)
			if tc.chunked {
				r.ContentLength = -1
				r.Body = io.NopCloser(strings.NewReader(tc.body)) // unknown length: chunked
			}
			res := e.do(r, false)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			if tc.code != "" {
				if p := res.problem(t); p.Code != tc.code {
					t.Errorf("code %s, want %s", p.Code, tc.code)
				}
			}
		})
	}
	if n := e.app.executions.Load(); n != 1 {
		t.Errorf("%d executions, want 1 (only the valid request)", n)
	}
}

func TestStrictJSONOverHTTP(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, body string
		status     int
		field      string
		code       string
	}{
		{"unknown field", `{"currency":"USD","items":[{"sku":"A","quantity":1,"colour":"red","unit_price":{"amount":"1.00","currency":"USD"}}]}`, 400, "items[0].colour", "unknown_field"},
		{"case variant", `{"Currency":"USD","items":[]}`, 400, "Currency", "unknown_field"},
		{"duplicate", `{"currency":"USD","currency":"EUR","items":[]}`, 400, "currency", "duplicate_field"},
		{"number for money", `{"currency":"USD","items":[{"sku":"A","quantity":1,"unit_price":{"amount":1.5,"currency":"USD"}}]}`, 400, "items[0].unit_price.amount", "wrong_type"},
		{"string for int", `{"currency":"USD","items":[{"sku":"A","quantity":"1","unit_price":{"amount":"1.00","currency":"USD"}}]}`, 400, "items[0].quantity", "wrong_type"},
		{"trailing garbage", orderBody + `{"x":1}`, 400, "", ""},
		{"trailing junk", orderBody + `xyz`, 400, "", ""},
		{"not json", `{"currency":`, 400, "", ""},
		{"empty object array", `[]`, 400, "(body)", "wrong_type"},
		{"JPY decimals", `{"currency":"JPY","items":[{"sku":"A","quantity":1,"unit_price":{"amount":"1.5","currency":"JPY"}}]}`, 422, "items[0].unit_price.amount", "too_many_decimals"},
		{"exponent", `{"currency":"USD","items":[{"sku":"A","quantity":1,"unit_price":{"amount":"1e3","currency":"USD"}}]}`, 422, "items[0].unit_price.amount", "invalid_amount"},
		{"unknown currency", `{"currency":"USD","items":[{"sku":"A","quantity":1,"unit_price":{"amount":"1.00","currency":"usd"}}]}`, 422, "items[0].unit_price.currency", "unknown_currency"},
		{"too large", `{"currency":"USD","items":[{"sku":"A","quantity":1,"unit_price":{"amount":"100000000000000","currency":"USD"}}]}`, 422, "items[0].unit_price.amount", "out_of_range"},
		{"NaN", `{"currency":"USD","items":[{"sku":"A","quantity":1,"unit_price":{"amount":"NaN","currency":"USD"}}]}`, 422, "items[0].unit_price.amount", "invalid_amount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.do(e.req("POST", "/v1/orders", e.checkout, tc.body, "Idempotency-Key", newIdemKey()), false)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			p := res.problem(t)
			if tc.field == "" {
				return
			}
			for _, f := range p.Errors {
				if f.Field == tc.field && f.Code == tc.code {
					return
				}
			}
			t.Errorf("no field error %s/%s in %+v", tc.field, tc.code, p.Errors)
		})
	}
	if n := e.app.executions.Load(); n != 0 {
		t.Errorf("%d executions for rejected requests", n)
	}
}

func TestMetricsExposed(t *testing.T) {
	e := newEnv(t)
	e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", newIdemKey()), true)
	e.do(e.req("GET", "/v1/orders/none", e.checkout, ""), true)
	e.do(e.req("GET", "/v1/orders/none", "", ""), true)
	res := e.do(e.req("GET", "/metrics", "", ""), true)
	if res.status != 200 {
		t.Fatalf("/metrics: %d", res.status)
	}
	for _, want := range []string{
		`livecore_http_request_duration_seconds_bucket{method="POST",route="POST /v1/orders",status_class="2xx"`,
		`livecore_http_request_duration_seconds_count{method="GET",route="GET /v1/orders/{id}",status_class="4xx"} 2`,
		`livecore_http_idempotency_total{outcome="started"} 1`,
		`livecore_http_requests_in_flight 1`, // the /metrics request itself
	} {
		if !strings.Contains(string(res.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	fail := errors.New("dial tcp 10.0.0.7:5432: connection refused (password=hunter2)")
	var dbErr error
	e := newEnv(t, func(c *httpapi.Config) {
		c.ReadyChecks = []httpapi.ReadyCheck{
			{Name: "eventstore", Check: func(context.Context) error { return nil }},
			{Name: "readmodels", Check: func(context.Context) error { return dbErr }},
			{Name: "slow", Check: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
		}
		c.ReadyTimeout = 50 * time.Millisecond
	})
	if res := e.do(e.req("GET", "/healthz", "", ""), true); res.status != 200 || string(res.body) != "{\"status\":\"ok\"}\n" {
		t.Errorf("/healthz: %d %s", res.status, res.body)
	}
	dbErr = fail
	res := e.do(e.req("GET", "/readyz", "", ""), true)
	want := `{"status":"unavailable","checks":[{"name":"eventstore","status":"ok"},{"name":"readmodels","status":"fail"},{"name":"slow","status":"fail"}]}` + "\n"
	if res.status != 503 || string(res.body) != want {
		t.Errorf("/readyz: %d %s", res.status, res.body)
	}
	if strings.Contains(string(res.body), "hunter2") || !strings.Contains(e.logs.String(), "hunter2") {
		t.Errorf("check errors belong in the log, not the response")
	}
}

func TestRequestAndCorrelationIDsAndOneLogLinePerRequest(t *testing.T) {
	e := newEnv(t)
	e.do(e.req("GET", "/v1/orders/a", e.checkout, "", "X-Request-ID", "client-req-1", "X-Correlation-ID", "flow-9"), true)
	res := e.do(e.req("GET", "/v1/orders/b", e.checkout, "", "X-Request-ID", "bad id with spaces"), true)
	gen := res.header.Get("X-Request-ID")
	if gen == "" || gen == "bad id with spaces" || res.header.Get("X-Correlation-ID") != gen {
		t.Errorf("generated IDs: request %q correlation %q", gen, res.header.Get("X-Correlation-ID"))
	}
	lines := e.logs.requests(t)
	if len(lines) != 2 {
		t.Fatalf("%d request log lines, want 2:\n%s", len(lines), e.logs.String())
	}
	l := lines[0]
	for k, want := range map[string]any{"request_id": "client-req-1", "correlation_id": "flow-9", "tenant": "acme", "role": "checkout", "route": "GET /v1/orders/{id}", "status": float64(404), "code": "not_found"} {
		if l[k] != want {
			t.Errorf("log %s = %v, want %v", k, l[k], want)
		}
	}
	if lines[1]["request_id"] != gen {
		t.Errorf("second line request_id %v, want %s", lines[1]["request_id"], gen)
	}
}

// TestRequestLogFollowsTheLevel checks that with the log at WARN a request
// that went well leaves no line (the line is not even built) while a
// failed one is still logged, at ERROR.
func TestRequestLogFollowsTheLevel(t *testing.T) {
	warn := &logBuffer{}
	e := newEnv(t, func(c *httpapi.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(warn, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	e.do(e.req("GET", "/v1/orders/a", e.checkout, ""), true)
	if lines := warn.requests(t); len(lines) != 0 {
		t.Fatalf("a 404 was logged at WARN: %v", lines)
	}
	e.app.cancel = func(http.ResponseWriter, *http.Request) error { return errors.New("disk on fire") }
	e.do(e.req("POST", "/v1/orders/ord_1/cancel", e.checkout, `{"reason":"x"}`, "Idempotency-Key", newIdemKey()), true)
	lines := warn.requests(t)
	if len(lines) != 1 || lines[0]["level"] != "ERROR" || lines[0]["status"] != float64(500) || lines[0]["error"] == nil {
		t.Fatalf("a 500 at WARN: %v", lines)
	}
}

func TestMinPosition(t *testing.T) {
	e := newEnv(t, func(c *httpapi.Config) { c.MinPositionWait = 30 * time.Millisecond })
	applied := uint64(5)
	wait := func(ctx context.Context, pos uint64) error {
		if pos <= applied {
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	}
	e.srv.HandleForTest("GET /v1/plans/{id}", func(w http.ResponseWriter, r *http.Request) error {
		if err := e.srv.AwaitMinPositionForTest(w, r, wait); err != nil {
			return err
		}
		return httpapi.Errorf(httpapi.CodeNotFound, "no plan")
	}, httpapi.RoleCheckout)
	for _, tc := range []struct {
		header string
		status int
	}{{"", 404}, {"5", 404}, {"6", 503}, {"-1", 400}} {
		res := e.do(e.req("GET", "/v1/plans/p1", e.checkout, "", "X-Livecore-Min-Position", tc.header), tc.status != 400)
		if res.status != tc.status {
			t.Errorf("min position %q: status %d, want %d: %s", tc.header, res.status, tc.status, res.body)
		}
	}
}

func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	e := newEnv(t)
	e.app.gate = make(chan struct{})
	e.app.entered = make(chan struct{}, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- e.srv.Serve(ctx, ln, httpapi.ServeOptions{Grace: 5 * time.Second, DrainDelay: 300 * time.Millisecond})
	}()

	base := "http://" + ln.Addr().String()
	type out struct {
		status int
		err    error
	}
	done := make(chan out, 1)
	go func() {
		r, _ := http.NewRequest("POST", base+"/v1/orders", strings.NewReader(orderBody))
		r.Header.Set("Authorization", "Bearer "+e.checkout)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Idempotency-Key", newIdemKey())
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			done <- out{err: err}
			return
		}
		resp.Body.Close()
		done <- out{status: resp.StatusCode}
	}()
	<-e.app.entered // the request is in its handler
	stop()
	// During the drain delay the server still answers, but not ready.
	time.Sleep(50 * time.Millisecond)
	noKeepAlive := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := noKeepAlive.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("readyz while draining: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), `"draining"`) {
		t.Errorf("readyz while draining: %d %s", resp.StatusCode, b)
	}
	time.Sleep(400 * time.Millisecond) // past the drain delay: the listener is closed
	if _, err := noKeepAlive.Get(base + "/healthz"); err == nil {
		t.Error("a new connection was accepted during shutdown")
	}
	close(e.app.gate)
	if o := <-done; o.err != nil || o.status != 201 {
		t.Fatalf("in-flight request: %+v", o)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestRuntimeSpecValidation(t *testing.T) {
	e := newEnv(t, func(c *httpapi.Config) { c.ValidateRequests = true })
	// A negative amount passes the handler's decoding but not the spec's
	// MoneyInput pattern.
	body := strings.Replace(orderBody, `"19.99"`, `"-19.99"`, 1)
	res := e.do(e.req("POST", "/v1/orders", e.checkout, body, "Idempotency-Key", newIdemKey()), false)
	if res.status != 422 {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	p := res.problem(t)
	found := false
	for _, f := range p.Errors {
		found = found || f.Field == "items[0].unit_price.amount"
	}
	if !found {
		t.Errorf("no field error for items[0].unit_price.amount: %+v", p.Errors)
	}
	// A wrong path parameter is a 400.
	res = e.do(e.req("GET", "/v1/orders/bad%20id", e.checkout, ""), false)
	if res.status != 400 {
		t.Errorf("bad path parameter: %d %s", res.status, res.body)
	}
	if res := e.do(e.req("POST", "/v1/orders", e.checkout, orderBody, "Idempotency-Key", newIdemKey()), true); res.status != 201 {
		t.Errorf("valid request refused: %d %s", res.status, res.body)
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	res := e.do(e.req("GET", "/openapi.json", "", ""), true)
	want, err := httpapi.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	if res.status != 200 || res.header.Get("Content-Type") != "application/json" || string(res.body) != string(want) {
		t.Fatalf("/openapi.json: %d %s (%d bytes)", res.status, res.header.Get("Content-Type"), len(res.body))
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(res.body, &doc); err != nil || doc.OpenAPI != "3.1.0" || doc.Paths["/v1/orders/{id}/checkout"] == nil {
		t.Fatalf("served document: %v %q", err, doc.OpenAPI)
	}
}
