package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/adapters/httpapi/httpapitest"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/internal/stack"
)

// product is the whole product booted for end-to-end tests: stack.Build in
// a temp dir (Pebble, SQLite, embedded kfake and Temporal), the API on
// 127.0.0.1:0, logs captured.
type product struct {
	s    *stack.Stack
	base string
	dir  string
	logs *syncBuffer
	hc   *http.Client
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// bootProduct builds and serves the product in a temporary data dir; each
// tweak adjusts its configuration first (e.g. another event store).
func bootProduct(t *testing.T, tweaks ...func(*stack.Config)) *product {
	t.Helper()
	p, _ := bootProductIn(t, t.TempDir(), tweaks...)
	return p
}

// bootProductIn is bootProduct in dir; stop shuts the product down (the
// test's cleanup does too), so that another can start in dir.
func bootProductIn(t *testing.T, dir string, tweaks ...func(*stack.Config)) (p *product, stop func()) {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	cfg := stack.Config{DataDir: dir, Logger: log}
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	s, err := stack.Build(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Run(ctx) })
	wg.Go(func() {
		if err := s.ServeHTTP(ctx, ln); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			s.Close()
		})
	}
	t.Cleanup(stop)
	return &product{s: s, base: "http://" + ln.Addr().String(), dir: dir, logs: logs, hc: &http.Client{Timeout: 30 * time.Second}}, stop
}

// call is one request; strict validates the request against the spec too
// (off for requests that break it on purpose).
type call struct {
	method, path string
	key          string
	body         any // []byte/string sent as is; anything else as JSON
	idem         string
	header       map[string]string
	strict       bool
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %d %s: %v", r.status, r.body, err)
	}
}

func (p *product) do(t testing.TB, c call) reply {
	t.Helper()
	var body []byte
	switch b := c.body.(type) {
	case nil:
	case []byte:
		body = b
	case string:
		body = []byte(b)
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(c.method, p.base+c.path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if c.idem != "" {
		req.Header.Set("Idempotency-Key", c.idem)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	if c.strict {
		httpapitest.ValidateExchange(t, req, resp)
	} else {
		httpapitest.ValidateResponse(t, req, resp)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func (p *product) want(t testing.TB, c call, status int) reply {
	t.Helper()
	r := p.do(t, c)
	if r.status != status {
		t.Fatalf("%s %s: status %d, want %d: %s", c.method, c.path, r.status, status, r.body)
	}
	return r
}

type orderResp struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Version     uint64 `json:"version"`
	Consistency struct {
		Position uint64 `json:"position"`
		Source   string `json:"source"`
	} `json:"consistency"`
	Total struct {
		Amount string `json:"amount"`
	} `json:"total"`
}

var idemSeq struct {
	mu sync.Mutex
	n  int
}

func nextKey(prefix string) string {
	idemSeq.mu.Lock()
	defer idemSeq.mu.Unlock()
	idemSeq.n++
	return fmt.Sprintf("%s-%d", prefix, idemSeq.n)
}

func cartBody(payment any) map[string]any {
	b := map[string]any{
		"customer_id": "cus_42",
		"currency":    "USD",
		"items": []any{
			map[string]any{"sku": "TSHIRT-RED-M", "quantity": 2, "unit_price": map[string]any{"amount": "19.99", "currency": "USD"}},
			map[string]any{"sku": "MUG-01", "quantity": 1, "unit_price": map[string]any{"amount": "12.50", "currency": "USD"}},
		},
		"discounts": []any{map[string]any{"label": "LIVE10", "amount": map[string]any{"amount": "5.00", "currency": "USD"}}},
	}
	if payment != nil {
		b["payment"] = payment
	}
	return b
}

// TestEndToEnd runs the product once and drives it over real HTTP: every
// request and response is validated against openapi.yaml.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the whole product")
	}
	p := bootProduct(t)
	checkout := p.s.DemoKeys["checkout"]
	ops := p.s.DemoKeys["ops"]
	finance := p.s.DemoKeys["finance"]

	t.Run("checkout", func(t *testing.T) { testCheckout(t, p, checkout, ops, finance) })
	t.Run("idempotency", func(t *testing.T) { testIdempotency(t, p, checkout) })
	t.Run("tenants", func(t *testing.T) { testTenantIsolation(t, p, checkout, ops, finance) })
	t.Run("card_data", func(t *testing.T) { testCardData(t, p, checkout, ops, finance) })
}

func testCheckout(t *testing.T, p *product, checkout, ops, finance string) {
	// A card order placed and checked out in one request.
	created := time.Now()
	var card orderResp
	r := p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: nextKey("card"), strict: true,
		body: cartBody(map[string]any{"method": "card", "card_token": "tok_visa_approve"})}, 201)
	r.json(t, &card)
	if card.Status != "checkout_started" || card.Total.Amount != "47.48" || card.Consistency.Source != "event_store" {
		t.Fatalf("card order: %s", r.body)
	}
	if got := r.header.Get("X-Livecore-Position"); got != fmt.Sprint(card.Consistency.Position) || got == "0" {
		t.Fatalf("position header %q, body %d", got, card.Consistency.Position)
	}
	tok, err := p.s.Commerce.PaymentToken(context.Background(), card.ID)
	if err != nil || tok.String() != "tok_visa_approve" {
		t.Fatalf("saved token %v %v", tok, err)
	}

	// A BNPL order: placed, then checked out.
	var bnpl orderResp
	p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: nextKey("bnpl"), strict: true, body: cartBody(nil)}, 201).json(t, &bnpl)
	if bnpl.Status != "placed" {
		t.Fatalf("bnpl order status %s", bnpl.Status)
	}
	var bnpl2 orderResp
	p.want(t, call{method: "POST", path: "/v1/orders/" + bnpl.ID + "/checkout", key: checkout, idem: nextKey("co"), strict: true,
		body: map[string]any{"payment": map[string]any{"method": "bnpl", "plan": "pay_in_4", "card_token": "tok_bnpl_approve"}}}, 202).json(t, &bnpl2)
	if bnpl2.Status != "checkout_started" || bnpl2.Version != 2 {
		t.Fatalf("bnpl checkout: %+v", bnpl2)
	}

	// Reads: strongly consistent, and X-Livecore-Min-Position is honoured.
	for _, key := range []string{checkout, finance, ops} {
		var got orderResp
		p.want(t, call{method: "GET", path: "/v1/orders/" + bnpl.ID, key: key, strict: true,
			header: map[string]string{"X-Livecore-Min-Position": fmt.Sprint(bnpl2.Consistency.Position)}}, 200).json(t, &got)
		if got.Status != "checkout_started" || got.Consistency.Position < bnpl2.Consistency.Position {
			t.Fatalf("read after write: %+v", got)
		}
	}
	p.want(t, call{method: "GET", path: "/v1/orders/ord_nope", key: checkout, strict: true}, 404)

	// Money fuzzing: every bad amount is a 422 naming the field, never a
	// 500, and appends nothing.
	api := func(e event.Envelope) bool { return strings.HasPrefix(e.Metadata.Actor, "api_key/") }
	before := countEvents(t, p, api)
	bad := 0
	for _, m := range []struct{ amount, currency string }{
		{"-1.00", "USD"}, {"-0", "USD"}, {"NaN", "USD"}, {"Infinity", "USD"}, {"1e400", "USD"}, {"1.5", "JPY"}, {"1.005", "USD"},
		{"12.30", "XYZ"}, {"12.30", "usd"}, {"", "USD"}, {"100000000000000", "USD"}, {"0x10", "USD"}, {" 1.00", "USD"}, {"1,00", "USD"},
	} {
		body := map[string]any{"currency": "USD", "items": []any{map[string]any{"sku": "MUG-01", "quantity": 1,
			"unit_price": map[string]any{"amount": m.amount, "currency": m.currency}}}}
		if m.currency == "JPY" {
			body["currency"] = "JPY"
		}
		r := p.do(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: nextKey("money"), body: body})
		if r.status != 422 || !bytes.Contains(r.body, []byte("items[0].unit_price")) {
			t.Errorf("amount %q %s: %d %s", m.amount, m.currency, r.status, r.body)
		}
		bad++
	}
	if n := countEvents(t, p, api) - before; n != 0 {
		t.Fatalf("bad amounts appended %d events", n)
	}
	t.Logf("money fuzzing: %d bad amounts, all 422 with the field named, 0 events, 0 panics", bad)

	// Confirmation: the dispatcher starts the checkout saga from the log;
	// it reserves stock, authorizes the card or opens the plan and
	// collects the first installment, and confirms.
	if !p.s.SagasWired() {
		t.Fatalf("the stack runs no sagas: orders %s and %s cannot be confirmed", card.ID, bnpl.ID)
	}
	for _, id := range []string{card.ID, bnpl.ID} {
		deadline := time.Now().Add(60 * time.Second)
		for {
			var o orderResp
			p.want(t, call{method: "GET", path: "/v1/orders/" + id, key: checkout, strict: true}, 200).json(t, &o)
			if o.Status == "confirmed" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("order %s still %s after 60s", id, o.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("card order %s and BNPL order %s: created -> confirmed within %v of the first create (polled over HTTP)", card.ID, bnpl.ID, time.Since(created).Round(time.Millisecond))
	p.want(t, call{method: "GET", path: "/v1/orders/" + bnpl.ID, key: checkout, strict: true,
		header: map[string]string{"X-Livecore-Min-Position": "99999999"}}, 503) // beyond the head: waits 5 s
	var plan struct {
		ID, Status   string
		Installments []struct{ Status string }
	}
	p.want(t, call{method: "GET", path: "/v1/plans/" + bnpl.ID, key: finance, strict: true}, 200).json(t, &plan)
	if plan.Status != "active" || len(plan.Installments) != 4 || plan.Installments[0].Status != "paid" {
		t.Fatalf("plan: %+v", plan)
	}
	// Early payoff: the request is recorded, the schedule saga collects.
	p.want(t, call{method: "POST", path: "/v1/plans/" + bnpl.ID + "/payoff", key: checkout, idem: nextKey("po"), strict: true,
		body: map[string]any{"expected_amount": map[string]any{"amount": "1.00", "currency": "USD"}}}, 409)
	p.want(t, call{method: "POST", path: "/v1/plans/" + bnpl.ID + "/payoff", key: checkout, idem: nextKey("po"), strict: true, body: map[string]any{}}, 202)
	for deadline := time.Now().Add(60 * time.Second); ; {
		p.want(t, call{method: "GET", path: "/v1/plans/" + bnpl.ID, key: finance, strict: true}, 200).json(t, &plan)
		if plan.Status == "paid_off" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plan %s still %s 60s after the payoff request", bnpl.ID, plan.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("BNPL plan %s paid off early through the schedule saga", bnpl.ID)

	// History, with actors and hash chain.
	var page struct {
		Events []struct {
			Type     string `json:"type"`
			Hash     string `json:"hash"`
			PrevHash string `json:"prev_hash"`
			Actor    struct {
				Kind, Role string
			} `json:"actor"`
		} `json:"events"`
	}
	p.want(t, call{method: "GET", path: "/v1/orders/" + card.ID + "/events", key: finance, strict: true}, 200).json(t, &page)
	if len(page.Events) < 3 || page.Events[0].Type != "order.placed.v2" || page.Events[1].PrevHash != page.Events[0].Hash || page.Events[0].Actor.Kind != "api_key" || page.Events[0].Actor.Role != "checkout" || page.Events[2].Actor.Kind != "saga" {
		t.Fatalf("history: %+v", page)
	}
	p.want(t, call{method: "GET", path: "/v1/audit/streams/order-" + card.ID + "/events?limit=1", key: finance, strict: true}, 200)

	// Audit: the log verifies, the journal (a read model) waits for the
	// position of the order's confirmation, the CSV export, state as of.
	var ver struct {
		OK            bool   `json:"ok"`
		CheckedEvents uint64 `json:"checked_events"`
	}
	p.want(t, call{method: "GET", path: "/v1/audit/verify", key: finance, strict: true}, 200).json(t, &ver)
	if !ver.OK || ver.CheckedEvents == 0 {
		t.Fatalf("verify: %+v", ver)
	}
	var cardNow orderResp
	p.want(t, call{method: "GET", path: "/v1/orders/" + card.ID, key: finance, strict: true}, 200).json(t, &cardNow)
	var jr struct {
		Entries []struct {
			Position uint64  `json:"position"`
			OrderID  *string `json:"order_id"`
			Lines    []struct {
				Debit, Credit struct{ Amount string }
			}
		} `json:"entries"`
		Consistency struct {
			Position uint64
			Source   string
		} `json:"consistency"`
	}
	p.want(t, call{method: "GET", path: "/v1/audit/journal?limit=1000", key: finance, strict: true,
		header: map[string]string{"X-Livecore-Min-Position": fmt.Sprint(cardNow.Consistency.Position)}}, 200).json(t, &jr)
	if jr.Consistency.Source != "read_model" || jr.Consistency.Position < cardNow.Consistency.Position || len(jr.Entries) == 0 {
		t.Fatalf("journal: %+v", jr)
	}
	// The same entries a page of one at a time, following next_cursor.
	var paged []uint64
	for cursor := ""; len(paged) < len(jr.Entries); {
		var pg struct {
			Entries    []struct{ Position uint64 } `json:"entries"`
			NextCursor *string                     `json:"next_cursor"`
		}
		p.want(t, call{method: "GET", path: "/v1/audit/journal?limit=1" + cursor, key: finance, strict: true}, 200).json(t, &pg)
		if len(pg.Entries) != 1 || pg.NextCursor == nil && len(paged)+1 < len(jr.Entries) {
			t.Fatalf("journal page %d: %+v", len(paged)+1, pg)
		}
		paged = append(paged, pg.Entries[0].Position)
		if pg.NextCursor != nil {
			cursor = "&cursor=" + *pg.NextCursor
		}
	}
	for i, e := range jr.Entries {
		if paged[i] != e.Position {
			t.Fatalf("journal entry %d: position %d paged one at a time, %d in one page", i, paged[i], e.Position)
		}
	}
	csv := p.want(t, call{method: "GET", path: "/v1/audit/journal.csv", key: finance, strict: true}, 200)
	if !bytes.HasPrefix(csv.body, []byte("position,line,")) {
		t.Fatalf("journal.csv: %.200s", csv.body)
	}
	var st struct {
		Version uint64 `json:"version"`
		State   struct {
			Status string `json:"Status"`
		} `json:"state"`
	}
	p.want(t, call{method: "GET", path: "/v1/audit/streams/order-" + card.ID + "/state?position=" + fmt.Sprint(card.Consistency.Position), key: finance, strict: true}, 200).json(t, &st)
	if st.Version != 2 {
		t.Fatalf("state as of the create: %+v", st)
	}
	p.want(t, call{method: "GET", path: "/v1/audit/streams/order-" + card.ID + "/state", key: finance, strict: true}, 422)
	t.Logf("audit: verify ok over %d events; journal %d entries at position %d (read model, waited for %d); csv %d bytes", ver.CheckedEvents, len(jr.Entries), jr.Consistency.Position, cardNow.Consistency.Position, len(csv.body))

	// After confirmation: refund, then the shipment the fulfillment saga
	// planned: shipped (the saga captures it), delivered; then a return.
	p.want(t, call{method: "POST", path: "/v1/orders/" + card.ID + "/refunds", key: finance, idem: nextKey("rf"), strict: true,
		body: map[string]any{"amount": map[string]any{"amount": "5.00", "currency": "USD"}, "reason": "damaged"}}, 202)
	p.want(t, call{method: "POST", path: "/v1/orders/" + card.ID + "/refunds", key: checkout, idem: nextKey("rf"), strict: true,
		body: map[string]any{"amount": map[string]any{"amount": "500.00", "currency": "USD"}, "reason": "too much"}}, 409)
	p.want(t, call{method: "POST", path: "/v1/orders/" + card.ID + "/returns", key: checkout, idem: nextKey("rt"), strict: true,
		body: map[string]any{"items": []any{map[string]any{"line": 1, "quantity": 1}}, "reason": "wrong size"}}, 409) // nothing shipped yet
	p.want(t, call{method: "POST", path: "/v1/orders/" + card.ID + "/shipments", key: ops, idem: nextKey("sh"), strict: true,
		body: map[string]any{"shipment_id": "shp_unplanned", "status": "shipped", "occurred_at": "2026-05-01T10:00:00Z"}}, 409)
	type shippedOrder struct {
		Items []struct {
			FulfilledQuantity int64 `json:"fulfilled_quantity"`
		} `json:"items"`
		Payment struct {
			Captured struct{ Amount string } `json:"captured"`
		} `json:"payment"`
		Shipments []struct {
			ID, Status string
		} `json:"shipments"`
	}
	poll := func(what string, done func(shippedOrder) bool) shippedOrder {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			var o shippedOrder
			p.want(t, call{method: "GET", path: "/v1/orders/" + card.ID, key: ops, strict: true}, 200).json(t, &o)
			if done(o) {
				return o
			}
			if time.Now().After(deadline) {
				t.Fatalf("order %s: no %s after 60s: %+v", card.ID, what, o)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	planned := poll("planned shipment", func(o shippedOrder) bool { return len(o.Shipments) > 0 })
	shp := planned.Shipments[0].ID
	p.want(t, call{method: "POST", path: "/v1/orders/" + card.ID + "/shipments", key: ops, idem: nextKey("sh"), strict: true,
		body: map[string]any{"shipment_id": shp, "status": "shipped", "carrier": "UPS", "tracking_number": "1Z999AA10123456784", "occurred_at": "2026-05-01T10:00:00Z"}}, 202)
	shipped := poll("capture", func(o shippedOrder) bool {
		return o.Payment.Captured.Amount != "0.00" && o.Payment.Captured.Amount != "" && o.Items[0].FulfilledQuantity > 0
	})
	p.want(t, call{method: "POST", path: "/v1/orders/" + card.ID + "/shipments", key: ops, idem: nextKey("sh"), strict: true,
		body: map[string]any{"shipment_id": shp, "status": "delivered", "occurred_at": "2026-05-02T10:00:00Z"}}, 202)
	var ret struct{ ID string }
	p.want(t, call{method: "POST", path: "/v1/orders/" + card.ID + "/returns", key: checkout, idem: nextKey("rt"), strict: true,
		body: map[string]any{"items": []any{map[string]any{"line": 1, "quantity": 1}}, "reason": "wrong size"}}, 202).json(t, &ret)
	p.want(t, call{method: "POST", path: "/v1/orders/" + card.ID + "/returns/ret_unknown/received", key: ops, idem: nextKey("rr"), strict: true,
		body: map[string]any{"items": []any{map[string]any{"line": 1, "quantity": 1}}}}, 404)
	p.want(t, call{method: "POST", path: "/v1/orders/" + card.ID + "/returns/" + ret.ID + "/received", key: ops, idem: nextKey("rr"), strict: true,
		body: map[string]any{"items": []any{map[string]any{"line": 1, "quantity": 1}}}}, 202)
	// The refund saga refunds the returned line's value (19.99).
	want := money.MustParse("19.99", "USD")
	var refunded string
	for deadline := time.Now().Add(60 * time.Second); ; {
		var o struct {
			Payment struct {
				Refunded struct{ Amount string } `json:"refunded"`
			} `json:"payment"`
		}
		p.want(t, call{method: "GET", path: "/v1/orders/" + card.ID, key: finance, strict: true}, 200).json(t, &o)
		refunded = o.Payment.Refunded.Amount
		if m, err := money.Parse(refunded, "USD"); err == nil && !m.LessThan(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s refunded %s 60s after the return was received, want %s", card.ID, refunded, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("shipment %s reported shipped: the fulfillment saga fulfilled the lines and captured %s USD; delivered; return %s received; refunded %s USD", shp, shipped.Payment.Captured.Amount, ret.ID, refunded)
	if envs, err := p.s.Store.ReadStream(context.Background(), "payment-"+card.ID, 1, 0); err == nil {
		var types []string
		for _, e := range envs {
			types = append(types, e.Type)
		}
		t.Logf("payment %s: %s", card.ID, strings.Join(types, ", "))
	}
	if alerts, err := p.s.Store.ReadStream(context.Background(), "alert-"+card.ID, 1, 0); err == nil {
		for _, a := range alerts {
			t.Logf("saga alert on %s: %s", card.ID, a.Data)
		}
	}
	p.want(t, call{method: "POST", path: "/v1/orders/" + bnpl.ID + "/shipments", key: checkout, idem: nextKey("sh"), strict: true,
		body: map[string]any{"shipment_id": "shp_1", "status": "delivered", "occurred_at": "2026-05-01T10:00:00Z"}}, 403)
	p.want(t, call{method: "GET", path: "/v1/plans/pln_unknown", key: finance, strict: true}, 404)

	var stock struct {
		OnHand, Available int64
	}
	p.want(t, call{method: "POST", path: "/v1/inventory/SNEAKER-LTD-42", key: ops, idem: nextKey("rcv"), strict: true,
		body: map[string]any{"quantity": 100, "reference": "PO-1"}}, 200).json(t, &stock)
	p.want(t, call{method: "GET", path: "/v1/inventory/SNEAKER-LTD-42", key: checkout, strict: true}, 200)
	now := time.Now().UTC()
	var drop struct {
		ID, Status string
		Remaining  int64
	}
	p.want(t, call{method: "POST", path: "/v1/drops", key: ops, idem: nextKey("drop"), strict: true, body: map[string]any{
		"sku": "SNEAKER-LTD-42", "quantity": 5, "price": map[string]any{"amount": "149.00", "currency": "USD"}, "per_customer_limit": 2,
		"starts_at": now.Add(-time.Minute).Format(time.RFC3339), "ends_at": now.Add(time.Hour).Format(time.RFC3339),
	}}, 201).json(t, &drop)
	if drop.Status != "open" || drop.Remaining != 5 {
		t.Fatalf("drop %+v", drop)
	}
	var bought orderResp
	p.want(t, call{method: "POST", path: "/v1/drops/" + drop.ID + "/buy", key: checkout, idem: nextKey("buy"), strict: true,
		body: map[string]any{"customer_id": "cus_1", "quantity": 2}}, 201).json(t, &bought)
	p.want(t, call{method: "POST", path: "/v1/drops/" + drop.ID + "/buy", key: checkout, idem: nextKey("buy"), strict: true,
		body: map[string]any{"customer_id": "cus_1", "quantity": 1}}, 409) // limit 2
	p.want(t, call{method: "POST", path: "/v1/orders/" + bought.ID + "/refunds", key: checkout, idem: nextKey("rf"), strict: true,
		body: map[string]any{"amount": map[string]any{"amount": "5.00", "currency": "USD"}, "reason": "not paid yet"}}, 409)
	p.want(t, call{method: "POST", path: "/v1/orders/" + bought.ID + "/cancel", key: checkout, idem: nextKey("cx"), strict: true,
		body: map[string]any{"reason": "changed my mind"}}, 200)
	p.want(t, call{method: "POST", path: "/v1/orders/" + bought.ID + "/cancel", key: checkout, idem: nextKey("cx"), strict: true,
		body: map[string]any{"reason": "again"}}, 409)
}

// countEvents counts $all events matching keep.
func countEvents(t *testing.T, p *product, keep func(event.Envelope) bool) int {
	t.Helper()
	envs, err := p.s.Store.ReadAll(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range envs {
		if keep(e) {
			n++
		}
	}
	return n
}

func testIdempotency(t *testing.T, p *product, checkout string) {
	ctx := context.Background()
	other, err := p.s.Keys.CreateKey(ctx, "tenant-b", httpapi.RoleCheckout)
	if err != nil {
		t.Fatal(err)
	}
	body := cartBody(map[string]any{"method": "card", "card_token": "tok_visa_approve"})
	key := nextKey("parallel")
	api := func(e event.Envelope) bool { return strings.HasPrefix(e.Metadata.Actor, "api_key/") }
	before := countEvents(t, p, api)

	// 50 identical requests at once: each retries on 409 (in flight) until
	// it gets the answer.
	const n = 50
	type outcome struct {
		r        reply
		conflict int
	}
	outs := make([]outcome, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			for {
				r := p.do(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: key, body: body, strict: true})
				if r.status == 409 {
					outs[i].conflict++
					time.Sleep(5 * time.Millisecond)
					continue
				}
				outs[i].r = r
				return
			}
		})
	}
	close(start)
	wg.Wait()
	conflicts, replayed := 0, 0
	for i, o := range outs {
		conflicts += o.conflict
		if o.r.status != 201 || !bytes.Equal(o.r.body, outs[0].r.body) {
			t.Fatalf("request %d: %d %s, want 201 %s", i, o.r.status, o.r.body, outs[0].r.body)
		}
		if o.r.header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	var first orderResp
	outs[0].r.json(t, &first)
	after := countEvents(t, p, api)
	orderEvents := countEvents(t, p, func(e event.Envelope) bool { return e.StreamID == "order-"+first.ID && api(e) })
	t.Logf("50 parallel identical creates: %d orders' worth of API events appended (%d API events on the order), %d answered 409 in flight and retried, %d replayed, identical bodies", (after-before)/2, orderEvents, conflicts, replayed)
	if after-before != 2 || orderEvents != 2 {
		t.Fatalf("appended %d events (%d on the order), want 2", after-before, orderEvents)
	}

	// Replay is the same status and body, byte for byte.
	again := p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: key, body: body, strict: true}, 201)
	if !bytes.Equal(again.body, outs[0].r.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay differs: %s", again.body)
	}
	// Same key, other body: 422; no key: 400; neither appends.
	other422 := cartBody(nil)
	p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: key, body: other422, strict: true}, 422)
	p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, body: body}, 400)
	// 409 deterministically: a request with this key and body is in
	// flight (its lock taken in the store, as a first request would), so
	// the retry is told to wait; once it is released, the retry runs.
	heldKey := nextKey("held")
	raw, _ := json.Marshal(body)
	ik, fp := httpapi.RequestIdempotency("demo", heldKey, "POST", "/v1/orders", raw)
	now := time.Now()
	if _, err := p.s.Idempotency.Begin(ctx, httpapi.BeginRequest{Key: ik, Fingerprint: fp, Lock: "held-by-test", Now: now, LockedUntil: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r409 := p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: heldKey, body: raw, strict: true}, 409)
	if !bytes.Contains(r409.body, []byte("idempotency_key_in_use")) || r409.header.Get("Retry-After") == "" {
		t.Fatalf("in flight: %v %s", r409.header, r409.body)
	}
	if err := p.s.Idempotency.Release(ctx, ik, "held-by-test"); err != nil {
		t.Fatal(err)
	}
	p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: heldKey, body: raw, strict: true}, 201)
	// Bad input stores nothing: the key can be used again for a good body.
	badKey := nextKey("bad")
	p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: badKey, body: map[string]any{"currency": "USD", "items": []any{}}}, 422)
	p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: badKey, body: body, strict: true}, 201)

	// The same key from another tenant is another request.
	var theirs orderResp
	r := p.want(t, call{method: "POST", path: "/v1/orders", key: other, idem: key, body: body, strict: true}, 201)
	r.json(t, &theirs)
	if theirs.ID == first.ID || r.header.Get("Idempotent-Replayed") != "" || bytes.Contains(r.body, []byte(first.ID)) {
		t.Fatalf("other tenant saw the first tenant's response: %s", r.body)
	}
	if got := countEvents(t, p, api) - after; got != 6 {
		t.Fatalf("appended %d events after the parallel phase, want 6 (held-key, bad-key and other tenant's orders)", got)
	}
	t.Logf("replay identical; key in flight 409 with Retry-After, then 201 once released; same key other body 422; no key 400; rejected request left the key free; other tenant's same key: new order %s, 0 cross-tenant replays", theirs.ID)
}

// testTenantIsolation hits every /v1 endpoint with another tenant's keys
// (each role) and the first tenant's object IDs.
func testTenantIsolation(t *testing.T, p *product, checkout, ops, finance string) {
	ctx := context.Background()
	const secretSKU = "ISOLATED-SKU-7"
	// Tenant A's objects.
	var ord orderResp
	p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: nextKey("iso"), strict: true, body: cartBody(map[string]any{"method": "card", "card_token": "tok_visa_approve"})}, 201).json(t, &ord)
	p.want(t, call{method: "POST", path: "/v1/inventory/" + secretSKU, key: ops, idem: nextKey("iso"), strict: true, body: map[string]any{"quantity": 777, "reference": "PO-A"}}, 200)
	now := time.Now().UTC()
	var drop struct{ ID string }
	p.want(t, call{method: "POST", path: "/v1/drops", key: ops, idem: nextKey("iso"), strict: true, body: map[string]any{
		"sku": secretSKU, "quantity": 50, "price": map[string]any{"amount": "9.00", "currency": "USD"},
		"starts_at": now.Add(-time.Minute).Format(time.RFC3339), "ends_at": now.Add(time.Hour).Format(time.RFC3339),
	}}, 201).json(t, &drop)
	secrets := []string{ord.ID, drop.ID, secretSKU, "cus_42", "LIVE10", "47.48"}

	keys := map[string]string{}
	for _, role := range httpapi.Roles() {
		k, err := p.s.Keys.CreateKey(ctx, "intruder", role)
		if err != nil {
			t.Fatal(err)
		}
		keys[role.String()] = k
	}
	type probe struct {
		method, path string
		body         any
	}
	item := []any{map[string]any{"line": 1, "quantity": 1}}
	probes := []probe{
		{"GET", "/v1/orders/" + ord.ID, nil},
		{"POST", "/v1/orders/" + ord.ID + "/checkout", map[string]any{"payment": map[string]any{"method": "card", "card_token": "tok_visa_approve"}}},
		{"POST", "/v1/orders/" + ord.ID + "/cancel", map[string]any{"reason": "x"}},
		{"POST", "/v1/orders/" + ord.ID + "/shipments", map[string]any{"shipment_id": "s1", "status": "shipped", "items": item, "occurred_at": "2026-05-01T10:00:00Z"}},
		{"POST", "/v1/orders/" + ord.ID + "/refunds", map[string]any{"amount": map[string]any{"amount": "1.00", "currency": "USD"}, "reason": "x"}},
		{"POST", "/v1/orders/" + ord.ID + "/returns", map[string]any{"items": item, "reason": "x"}},
		{"POST", "/v1/orders/" + ord.ID + "/returns/ret_x/received", map[string]any{"items": item}},
		{"GET", "/v1/orders/" + ord.ID + "/events", nil},
		{"GET", "/v1/audit/streams/order-" + ord.ID + "/events", nil},
		{"GET", "/v1/audit/streams/inventory-demo%2F" + secretSKU + "@main/events", nil},
		{"GET", "/v1/plans/" + ord.ID, nil},
		{"POST", "/v1/plans/" + ord.ID + "/payoff", map[string]any{}},
		{"GET", "/v1/audit/streams/order-" + ord.ID + "/state?position=1", nil},
		{"GET", "/v1/inventory/" + secretSKU, nil},
		{"POST", "/v1/drops/" + drop.ID + "/buy", map[string]any{"customer_id": "c1", "quantity": 1}},
	}
	intruder := func(e event.Envelope) bool { return e.Metadata.Tenant == "intruder" }
	before := countEvents(t, p, intruder)
	tried, leaks := 0, 0
	for _, pr := range probes {
		for role, key := range keys {
			r := p.do(t, call{method: pr.method, path: pr.path, key: key, body: pr.body, idem: nextKey("intr"), strict: true})
			tried++
			if r.status == 403 {
				continue // the role may not call it at all
			}
			bad := r.status != 404
			// The problem's "instance" is the intruder's own request path;
			// everything else must hold nothing of tenant A's.
			var prob map[string]any
			_ = json.Unmarshal(r.body, &prob)
			delete(prob, "instance")
			rest, _ := json.Marshal(prob)
			for _, s := range secrets {
				if bytes.Contains(rest, []byte(s)) {
					bad = true
				}
			}
			if bad {
				leaks++
				t.Errorf("%s %s as intruder/%s: %d %s", pr.method, pr.path, role, r.status, r.body)
			}
		}
	}
	// Write endpoints whose path names no object of A's: they act in the
	// intruder's own namespace and must show none of A's data.
	r := p.do(t, call{method: "POST", path: "/v1/inventory/" + secretSKU, key: keys["ops"], idem: nextKey("intr"), body: map[string]any{"quantity": 1, "reference": "x"}, strict: true})
	var st struct {
		OnHand int64 `json:"on_hand"`
	}
	r.json(t, &st)
	if r.status != 200 || st.OnHand != 1 {
		leaks++
		t.Errorf("intruder receiving %s saw %d %s", secretSKU, r.status, r.body)
	}
	r = p.do(t, call{method: "POST", path: "/v1/drops", key: keys["ops"], idem: nextKey("intr"), strict: true, body: map[string]any{
		"sku": secretSKU, "quantity": 50, "price": map[string]any{"amount": "9.00", "currency": "USD"},
		"starts_at": now.Format(time.RFC3339), "ends_at": now.Add(time.Hour).Format(time.RFC3339)}})
	if r.status != 409 || bytes.Contains(r.body, []byte("777")) {
		leaks++
		t.Errorf("intruder opening a drop of %s: %d %s", secretSKU, r.status, r.body)
	}
	// The journal and its export: the intruder's own (empty) books.
	for _, path := range []string{"/v1/audit/journal", "/v1/audit/journal.csv", "/v1/audit/verify"} {
		r := p.do(t, call{method: "GET", path: path, key: keys["finance"], strict: true})
		for _, sec := range secrets {
			if r.status != 200 || bytes.Contains(r.body, []byte(sec)) {
				leaks++
				t.Errorf("intruder GET %s: %d %s", path, r.status, r.body)
				break
			}
		}
		tried++
	}
	tried += 2
	appended := countEvents(t, p, intruder) - before
	// Only the intruder's own stock receipt may have been appended.
	foreign := countEvents(t, p, func(e event.Envelope) bool {
		return e.Metadata.Tenant == "intruder" && e.StreamID != "inventory-intruder/"+secretSKU+"@main"
	})
	t.Logf("tenant isolation: %d requests with another tenant's keys (3 roles x %d endpoints + 2 own-namespace writes + journal, csv, verify): %d leaks; %d events appended (all in the intruder's own stock stream: %v)", tried, len(probes), leaks, appended, foreign == 0)
	if foreign != 0 {
		t.Errorf("%d intruder events outside its own stock stream", foreign)
	}
}
