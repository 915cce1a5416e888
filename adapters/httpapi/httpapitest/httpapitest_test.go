package httpapitest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/livecore/livecore/adapters/httpapi/httpapitest"
)

// recordingTB captures what ValidateExchange reports instead of failing.
type recordingTB struct {
	testing.TB
	errs []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

const validOrder = `{"id":"ord_1","customer_id":null,"status":"placed","currency":"USD",
"items":[{"line":1,"sku":"A","quantity":1,"unit_price":{"amount":"1.00","currency":"USD"},"amount":{"amount":"1.00","currency":"USD"},"fulfilled_quantity":0,"cancelled_quantity":0,"returned_quantity":0}],
"discounts":[],"taxes":[],"subtotal":{"amount":"1.00","currency":"USD"},"discount_total":{"amount":"0.00","currency":"USD"},
"tax_total":{"amount":"0.00","currency":"USD"},"total":{"amount":"1.00","currency":"USD"},"payment":null,
"created_at":"2026-05-01T10:00:00Z","updated_at":"2026-05-01T10:00:00Z","version":1,"consistency":{"position":7,"source":"read_model"}}`

// server answers GET /v1/orders/{id} with the given status and body.
func server(t *testing.T, status int, contentType, body string) *httptest.Server {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, ts *httptest.Server, path string) (*http.Request, *http.Response) {
	req, err := http.NewRequest("GET", ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer lc_x")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return req, resp
}

func TestValidateExchangeAcceptsAConformingExchange(t *testing.T) {
	ts := server(t, 200, "application/json", validOrder)
	req, resp := get(t, ts, "/v1/orders/ord_1")
	httpapitest.ValidateExchange(t, req, resp)
	// The body is still readable after validation.
	if b, _ := io.ReadAll(resp.Body); string(b) != validOrder {
		t.Errorf("body not restored: %q", b)
	}
}

func TestValidateExchangeCatchesViolations(t *testing.T) {
	for _, tc := range []struct {
		name, path, ct, body string
		status               int
		want                 string // in the reported error
	}{
		{"money as a number", "/v1/orders/ord_1", "application/json", strings.Replace(validOrder, `"total":{"amount":"1.00"`, `"total":{"amount":1.00`, 1), 200, "total"},
		{"missing required field", "/v1/orders/ord_1", "application/json", strings.Replace(validOrder, `"version":1,`, ``, 1), 200, "version"},
		{"unknown field", "/v1/orders/ord_1", "application/json", strings.Replace(validOrder, `"version":1,`, `"version":1,"secret":"x",`, 1), 200, "secret"},
		{"bad enum", "/v1/orders/ord_1", "application/json", strings.Replace(validOrder, `"placed"`, `"shipped"`, 1), 200, "status"},
		{"undocumented status", "/v1/orders/ord_1", "application/json", validOrder, 418, "status"},
		{"problem with the wrong media type", "/v1/orders/ord_1", "application/json", `{"type":"https://livecore.dev/problems/not_found","title":"Not found","status":404,"code":"not_found"}`, 404, "application/json"},
		{"problem with an unknown code", "/v1/orders/ord_1", "application/problem+json", `{"type":"https://livecore.dev/problems/oops","title":"Oops","status":404,"code":"oops"}`, 404, "code"},
		{"request violates the spec", "/v1/orders/not%20an%20id", "application/json", validOrder, 200, "request"},
		{"path not in the spec", "/v2/orders", "application/json", `{}`, 200, "not in the spec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := server(t, tc.status, tc.ct, tc.body)
			req, resp := get(t, ts, tc.path)
			rec := &recordingTB{TB: t}
			httpapitest.ValidateExchange(rec, req, resp)
			if len(rec.errs) == 0 {
				t.Fatalf("ValidateExchange accepted a violating exchange")
			}
			t.Log(strings.Join(rec.errs, "\n"))
			if !strings.Contains(strings.Join(rec.errs, "\n"), tc.want) {
				t.Errorf("report does not mention %q:\n%s", tc.want, rec.errs)
			}
		})
	}
}

func TestCheckResponseIgnoresTheRequest(t *testing.T) {
	ts := server(t, 400, "application/problem+json", `{"type":"https://livecore.dev/problems/malformed","title":"Malformed request","status":400,"code":"malformed","errors":[{"field":"id","code":"pattern","message":"bad"}]}`)
	req, resp := get(t, ts, "/v1/orders/not%20an%20id")
	if err := httpapitest.CheckExchange(req, resp); err == nil {
		t.Errorf("CheckExchange accepted a request the spec forbids")
	}
	if err := httpapitest.CheckResponse(req, resp); err != nil {
		t.Errorf("CheckResponse: %v", err)
	}
}
