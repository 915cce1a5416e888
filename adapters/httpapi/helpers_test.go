package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/adapters/httpapi/httpapitest"
	"github.com/livecore/livecore/domain/money"
)

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer collects JSON log lines from concurrent requests.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the decoded log records with msg "http request".
func (l *logBuffer) requests(t testing.TB) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["msg"] == "http request" {
			out = append(out, m)
		}
	}
	return out
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is a Server with stand-in endpoints behind a real HTTP listener.
type env struct {
	t      testing.TB
	srv    *httpapi.Server
	ts     *httptest.Server
	keys   *httpapi.Keys
	idem   httpapi.IdempotencyStore
	reg    *prometheus.Registry
	clock  *clock
	logs   *logBuffer
	app    *app
	client *http.Client

	checkout, finance, ops, otherCheckout string // plaintext keys
}

type envOption func(*httpapi.Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newEnvWith(t, httpapi.NewMemoryIdempotencyStore(), httpapi.NewMemoryKeyStore(), opts...)
}

func newEnvWith(t testing.TB, idem httpapi.IdempotencyStore, ks httpapi.KeyStore, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, idem: idem, reg: prometheus.NewRegistry(), clock: newClock(), logs: &logBuffer{}}
	e.keys = &httpapi.Keys{Store: ks, Now: e.clock.Now}
	cfg := httpapi.Config{
		Auth:        e.keys,
		Idempotency: idem,
		Logger:      slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:  e.reg,
		Gatherer:    e.reg,
		Now:         e.clock.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := httpapi.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.srv = srv
	e.app = newApp(srv, e.clock)
	e.app.register()
	e.ts = httptest.NewServer(srv)
	t.Cleanup(e.ts.Close)
	e.client = e.ts.Client()

	ctx := context.Background()
	mk := func(tenant httpapi.TenantID, role httpapi.Role) string {
		k, err := e.keys.CreateKey(ctx, tenant, role)
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		return k
	}
	e.checkout = mk("acme", httpapi.RoleCheckout)
	e.finance = mk("acme", httpapi.RoleFinance)
	e.ops = mk("acme", httpapi.RoleOps)
	e.otherCheckout = mk("globex", httpapi.RoleCheckout)
	return e
}

// req builds a request; body "" sends none. Headers come in pairs.
func (e *env) req(method, path, key, body string, headers ...string) *http.Request {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			r.Header.Del(headers[i])
			continue
		}
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

// result is a response read in full.
type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) problem(t testing.TB) httpapi.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != httpapi.ProblemContentType {
		t.Fatalf("Content-Type %q, want %s; body %s", ct, httpapi.ProblemContentType, r.body)
	}
	var p httpapi.Problem
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	return p
}

// do sends r; with validate the exchange is checked against the spec
// (request and response), otherwise only the response is.
func (e *env) do(r *http.Request, validate bool) result {
	e.t.Helper()
	resp, err := e.client.Do(r)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.Method, r.URL.Path, err)
	}
	defer resp.Body.Close()
	if validate {
		httpapitest.ValidateExchange(e.t, r, resp)
	} else {
		httpapitest.ValidateResponse(e.t, r, resp)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b}
}

func newIdemKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

const orderBody = `{"customer_id":"cus_1","currency":"USD","items":[{"sku":"TSHIRT-RED-M","quantity":2,"unit_price":{"amount":"19.99","currency":"USD"}},{"sku":"MUG-01","quantity":1,"unit_price":{"amount":"12.50","currency":"USD"}}]}`

// app is a stand-in for the endpoints that will call domain/app: it does
// what real endpoints will do with the infrastructure (decode, validate,
// principal, idempotency context, problems), and counts executions.
type app struct {
	srv   *httpapi.Server
	clock *clock

	executions atomic.Int64
	delay      time.Duration
	gate       chan struct{} // non-nil: createOrder waits on it after validation
	entered    chan struct{} // non-nil: createOrder signals here before waiting

	mu       sync.Mutex
	orders   map[httpapi.TenantID]map[string][]byte
	commands map[string]bool // command IDs seen

	cancel func(w http.ResponseWriter, r *http.Request) error
}

func newApp(s *httpapi.Server, c *clock) *app {
	return &app{srv: s, clock: c, orders: map[httpapi.TenantID]map[string][]byte{}, commands: map[string]bool{}}
}

func (a *app) register() {
	a.srv.HandleForTest("POST /v1/orders", a.createOrder, httpapi.RoleCheckout)
	a.srv.HandleForTest("GET /v1/orders/{id}", a.getOrder, httpapi.RoleCheckout, httpapi.RoleFinance, httpapi.RoleOps)
	a.srv.HandleForTest("POST /v1/orders/{id}/cancel", func(w http.ResponseWriter, r *http.Request) error {
		if a.cancel == nil {
			return httpapi.Errorf(httpapi.CodeConflict, "the order is already cancelled")
		}
		return a.cancel(w, r)
	}, httpapi.RoleCheckout)
}

type adjustmentIn struct {
	Label  string        `json:"label"`
	Amount httpapi.Money `json:"amount"`
}

type createOrderRequest struct {
	CustomerID *string `json:"customer_id"`
	Currency   string  `json:"currency"`
	Items      []struct {
		SKU       string        `json:"sku"`
		Quantity  int64         `json:"quantity"`
		UnitPrice httpapi.Money `json:"unit_price"`
	} `json:"items"`
	Discounts []adjustmentIn    `json:"discounts"`
	Taxes     []adjustmentIn    `json:"taxes"`
	Metadata  map[string]string `json:"metadata"`
}

type orderItem struct {
	Line              int           `json:"line"`
	SKU               string        `json:"sku"`
	Quantity          int64         `json:"quantity"`
	UnitPrice         httpapi.Money `json:"unit_price"`
	Amount            httpapi.Money `json:"amount"`
	FulfilledQuantity int64         `json:"fulfilled_quantity"`
	CancelledQuantity int64         `json:"cancelled_quantity"`
	ReturnedQuantity  int64         `json:"returned_quantity"`
}

type consistency struct {
	Position uint64 `json:"position"`
	Source   string `json:"source"`
}

type orderResponse struct {
	ID            string          `json:"id"`
	CustomerID    *string         `json:"customer_id"`
	Status        string          `json:"status"`
	Currency      string          `json:"currency"`
	Items         []orderItem     `json:"items"`
	Discounts     []adjustmentIn  `json:"discounts"`
	Taxes         []adjustmentIn  `json:"taxes"`
	Subtotal      httpapi.Money   `json:"subtotal"`
	DiscountTotal httpapi.Money   `json:"discount_total"`
	TaxTotal      httpapi.Money   `json:"tax_total"`
	Total         httpapi.Money   `json:"total"`
	Payment       *struct{}       `json:"payment"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	Version       int64           `json:"version"`
	Consistency   consistency     `json:"consistency"`
	Tenant        string          `json:"-"`
	Extra         json.RawMessage `json:"extra,omitempty"` // set only to break the schema on purpose
}

func (a *app) createOrder(w http.ResponseWriter, r *http.Request) error {
	var req createOrderRequest
	if err := a.srv.DecodeForTest(r, &req); err != nil {
		return err
	}
	var v httpapi.Validator
	cur, err := money.ParseCurrency(req.Currency)
	if err != nil {
		v.Add("currency", "unknown_currency", fmt.Sprintf("%q is not an ISO 4217 currency code", req.Currency))
	}
	v.Check(len(req.Items) > 0, "items", "required", "at least one item is required")
	resp := orderResponse{CustomerID: req.CustomerID, Status: "placed", Currency: req.Currency, Discounts: []adjustmentIn{}, Taxes: []adjustmentIn{}}
	total := money.Zero(cur)
	for i, it := range req.Items {
		p := httpapi.Path("items").Index(i)
		v.Required(it.SKU, p.Key("sku"))
		v.Check(it.Quantity > 0, p.Key("quantity"), "out_of_range", "must be at least 1")
		price := v.Money(p.Key("unit_price"), it.UnitPrice)
		if !price.IsValid() || err != nil {
			continue
		}
		if v.Check(price.Currency() == cur, p.Key("unit_price").Key("currency"), "currency_mismatch", "must be the order's currency") {
			amt, mErr := price.MulInt(it.Quantity)
			if mErr == nil {
				total, mErr = total.Add(amt)
			}
			if mErr != nil {
				v.Add(p, "out_of_range", "amount too large")
				continue
			}
			resp.Items = append(resp.Items, orderItem{Line: i + 1, SKU: it.SKU, Quantity: it.Quantity, UnitPrice: httpapi.MoneyOf(price), Amount: httpapi.MoneyOf(amt)})
		}
	}
	if err := v.Err(); err != nil {
		return err
	}

	// Validation is over: from here on the request has side effects.
	if a.entered != nil {
		a.entered <- struct{}{}
	}
	if a.gate != nil {
		<-a.gate
	}
	n := a.executions.Add(1)
	if a.delay > 0 {
		time.Sleep(a.delay)
	}
	p, _ := httpapi.PrincipalFrom(r.Context())
	idem, ok := httpapi.IdempotencyFrom(r.Context())
	if !ok {
		return httpapi.Internal(fmt.Errorf("no idempotency context on a POST"))
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	resp.ID = fmt.Sprintf("ord_%d_%x", n, rnd)
	resp.Subtotal, resp.Total = httpapi.MoneyOf(total), httpapi.MoneyOf(total)
	resp.DiscountTotal, resp.TaxTotal = httpapi.MoneyOf(money.Zero(cur)), httpapi.MoneyOf(money.Zero(cur))
	resp.CreatedAt, resp.UpdatedAt = a.clock.Now(), a.clock.Now()
	resp.Version = 1
	resp.Consistency = consistency{Position: uint64(n), Source: "event_store"}
	b, err := json.Marshal(resp)
	if err != nil {
		return httpapi.Internal(err)
	}
	a.mu.Lock()
	if a.orders[p.Tenant] == nil {
		a.orders[p.Tenant] = map[string][]byte{}
	}
	a.orders[p.Tenant][resp.ID] = b
	a.commands[idem.CommandID] = true
	a.mu.Unlock()

	w.Header().Set("Location", "/v1/orders/"+resp.ID)
	httpapi.SetPosition(w, uint64(n))
	return httpapi.WriteJSONForTest(w, http.StatusCreated, json.RawMessage(b))
}

func (a *app) getOrder(w http.ResponseWriter, r *http.Request) error {
	p, _ := httpapi.PrincipalFrom(r.Context())
	a.mu.Lock()
	b, ok := a.orders[p.Tenant][r.PathValue("id")]
	a.mu.Unlock()
	if !ok {
		return httpapi.Errorf(httpapi.CodeNotFound, "no order %s", r.PathValue("id"))
	}
	return httpapi.WriteJSONForTest(w, http.StatusOK, json.RawMessage(b))
}
