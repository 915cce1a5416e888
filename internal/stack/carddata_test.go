package stack_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/livecore/livecore/domain/event"
)

// The test cards sent, in the forms a client might write them.
var testPANs = []string{"4242424242424242", "4242 4242 4242 4242", "5555-5555-5555-4444", "4000000000000002"}

// countPANs counts occurrences of the test card numbers sent (as written,
// and as digits only) in b. Literal search, not a Luhn scan: the stores are
// full of hex hashes and IDs whose digit runs pass Luhn by chance.
func countPANs(b []byte) int {
	n := 0
	seen := map[string]bool{}
	for _, p := range testPANs {
		for _, form := range []string{p, strings.NewReplacer(" ", "", "-", "").Replace(p)} {
			if seen[form] {
				continue
			}
			seen[form] = true
			n += bytes.Count(b, []byte(form))
		}
	}
	return n
}

func testCardData(t *testing.T, p *product, checkout, ops, finance string) {
	ctx := context.Background()
	var ord orderResp
	p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: nextKey("cd"), strict: true, body: cartBody(nil)}, 201).json(t, &ord)
	now := time.Now().UTC()
	var drop struct{ ID string }
	p.want(t, call{method: "POST", path: "/v1/drops", key: ops, idem: nextKey("cd"), strict: true, body: map[string]any{
		"sku": "MUG-01", "quantity": 3, "price": map[string]any{"amount": "9.00", "currency": "USD"},
		"starts_at": now.Add(-time.Minute).Format(time.RFC3339), "ends_at": now.Add(time.Hour).Format(time.RFC3339),
	}}, 201).json(t, &drop)

	type attempt struct {
		what string
		c    call
	}
	var attempts []attempt
	for _, pan := range testPANs {
		item := func(sku string, qty any) []any {
			return []any{map[string]any{"sku": sku, "quantity": qty, "unit_price": map[string]any{"amount": "1.00", "currency": "USD"}}}
		}
		order := func(mod func(b map[string]any)) map[string]any {
			b := cartBody(nil)
			mod(b)
			return b
		}
		adj := []any{map[string]any{"label": "card " + pan, "amount": map[string]any{"amount": "1.00", "currency": "USD"}}}
		lines := []any{map[string]any{"line": 1, "quantity": 1}}
		o := "/v1/orders/" + ord.ID
		for _, a := range []attempt{
			{"customer_id", call{method: "POST", path: "/v1/orders", key: checkout, body: order(func(b map[string]any) { b["customer_id"] = pan })}},
			{"items[0].sku", call{method: "POST", path: "/v1/orders", key: checkout, body: order(func(b map[string]any) { b["items"] = item(pan, 1) })}},
			{"items[0].quantity (number)", call{method: "POST", path: "/v1/orders", key: checkout, body: strings.Replace(`{"currency":"USD","items":[{"sku":"A","quantity":PAN,"unit_price":{"amount":"1.00","currency":"USD"}}]}`, "PAN", strings.NewReplacer(" ", "", "-", "").Replace(pan), 1)}},
			{"discounts[0].label", call{method: "POST", path: "/v1/orders", key: checkout, body: order(func(b map[string]any) { b["discounts"] = adj })}},
			{"taxes[0].label", call{method: "POST", path: "/v1/orders", key: checkout, body: order(func(b map[string]any) { b["taxes"] = adj })}},
			{"payment.card_token", call{method: "POST", path: "/v1/orders", key: checkout, body: order(func(b map[string]any) { b["payment"] = map[string]any{"method": "card", "card_token": pan} })}},
			{"unknown member name", call{method: "POST", path: "/v1/orders", key: checkout, body: order(func(b map[string]any) { b["card_"+pan] = "x" })}},
			{"checkout card_token", call{method: "POST", path: o + "/checkout", key: checkout, body: map[string]any{"payment": map[string]any{"method": "card", "card_token": pan}}}},
			{"checkout card_token (tok_ prefixed)", call{method: "POST", path: o + "/checkout", key: checkout, body: map[string]any{"payment": map[string]any{"method": "card", "card_token": "tok_" + pan}}}},
			{"cancel reason", call{method: "POST", path: o + "/cancel", key: checkout, body: map[string]any{"reason": "card " + pan}}},
			{"shipment_id", call{method: "POST", path: o + "/shipments", key: ops, body: map[string]any{"shipment_id": pan, "status": "shipped", "items": lines, "occurred_at": "2026-05-01T10:00:00Z"}}},
			{"carrier", call{method: "POST", path: o + "/shipments", key: ops, body: map[string]any{"shipment_id": "s1", "status": "shipped", "items": lines, "carrier": pan, "occurred_at": "2026-05-01T10:00:00Z"}}},
			{"tracking_number", call{method: "POST", path: o + "/shipments", key: ops, body: map[string]any{"shipment_id": "s1", "status": "shipped", "items": lines, "tracking_number": pan, "occurred_at": "2026-05-01T10:00:00Z"}}},
			{"failure_reason", call{method: "POST", path: o + "/shipments", key: ops, body: map[string]any{"shipment_id": "s1", "status": "failed", "failure_reason": pan, "occurred_at": "2026-05-01T10:00:00Z"}}},
			{"refund reason", call{method: "POST", path: o + "/refunds", key: finance, body: map[string]any{"amount": map[string]any{"amount": "1.00", "currency": "USD"}, "reason": pan}}},
			{"return reason", call{method: "POST", path: o + "/returns", key: checkout, body: map[string]any{"items": lines, "reason": pan}}},
			{"stock reference", call{method: "POST", path: "/v1/inventory/MUG-01", key: ops, body: map[string]any{"quantity": 1, "reference": "PO " + pan}}},
			{"stock SKU in path", call{method: "POST", path: "/v1/inventory/" + strings.ReplaceAll(pan, " ", "-"), key: ops, body: map[string]any{"quantity": 1, "reference": "PO-1"}}},
			{"drop sku", call{method: "POST", path: "/v1/drops", key: ops, body: map[string]any{"sku": pan, "quantity": 1, "price": map[string]any{"amount": "1.00", "currency": "USD"}, "starts_at": "2026-05-01T10:00:00Z", "ends_at": "2036-05-01T10:00:00Z"}}},
			{"buy customer_id", call{method: "POST", path: "/v1/drops/" + drop.ID + "/buy", key: checkout, body: map[string]any{"customer_id": pan, "quantity": 1}}},
			{"order ID in path", call{method: "GET", path: "/v1/orders/" + strings.ReplaceAll(pan, " ", ""), key: checkout}},
			{"SKU in path", call{method: "GET", path: "/v1/inventory/" + strings.ReplaceAll(pan, " ", "-"), key: checkout}},
		} {
			if a.c.idem == "" && a.c.method == "POST" {
				a.c.idem = nextKey("pan")
			}
			a.what += " = " + pan
			attempts = append(attempts, a)
		}
	}
	api := func(e event.Envelope) bool { return strings.HasPrefix(e.Metadata.Actor, "api_key/") }
	before := countEvents(t, p, api)
	refused := 0
	for _, a := range attempts {
		// Request and correlation IDs carry the card too: they must be
		// replaced, not logged.
		a.c.header = map[string]string{"X-Request-ID": "req-4242424242424242", "X-Correlation-ID": "4242424242424242"}
		r := p.do(t, a.c)
		switch {
		case r.status >= 400 && r.status < 500:
			refused++
		default:
			t.Errorf("%s: %d %s", a.what, r.status, r.body)
		}
		if countPANs(r.body) > 0 || countPANs([]byte(strings.Join(r.header.Values("X-Request-ID"), ""))) > 0 {
			t.Errorf("%s: the response echoes the card number: %s", a.what, r.body)
		}
	}
	appended := countEvents(t, p, api) - before
	// Opaque headers are accepted, never stored as sent: an order placed
	// with a card number as its Idempotency-Key (kept as a digest) and as
	// its request and correlation IDs (replaced).
	accepted := 0
	for _, pan := range testPANs {
		pan = strings.ReplaceAll(pan, " ", "-") // header values have no spaces
		r := p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: pan, body: cartBody(nil), strict: true,
			header: map[string]string{"X-Request-ID": pan, "X-Correlation-ID": pan}}, 201)
		if countPANs(r.body) > 0 || countPANs([]byte(r.header.Get("X-Request-ID")+r.header.Get("X-Correlation-ID"))) > 0 {
			t.Errorf("the response echoes the card number: %v %s", r.header, r.body)
		}
		p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: pan, body: cartBody(nil), strict: true}, 201) // replay
		accepted++
	}

	// Events, logically: every event's data and metadata.
	envs, err := p.s.Store.ReadAll(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	inEvents := 0
	for _, e := range envs {
		md := e.Metadata
		inEvents += countPANs(e.Data) + countPANs([]byte(md.Tenant+" "+md.Actor+" "+md.CorrelationID+" "+md.CausationID+" "+md.Region+" "+e.StreamID))
	}

	// Kafka: every record the bridge published, read committed.
	inKafka, records := scanKafka(t, p, len(envs))

	// Every file of the data dir, as it is on disk (every append was
	// fsynced to Pebble's WAL, which holds the records uncompressed).
	files, bytesScanned, inFiles := 0, 0, 0
	err = filepath.WalkDir(p.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		bytesScanned += len(b)
		if n := countPANs(b); n > 0 {
			inFiles += n
			t.Errorf("card number in %s (%d times)", path, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := p.logs.Bytes()
	inLogs := countPANs(logs)
	t.Logf("card data: %d requests with a card number in a body field or path: %d refused, %d events appended by them; %d orders accepted with a card number as Idempotency-Key, X-Request-ID and X-Correlation-ID; "+
		"card numbers found: %d in %d files (%d bytes) of the data dir, %d in %d events, %d in %d Kafka records, %d in %d bytes of logs",
		len(attempts), refused, appended, accepted, inFiles, files, bytesScanned, inEvents, len(envs), inKafka, records, inLogs, len(logs))
	if appended != 0 || inEvents != 0 || inKafka != 0 || inLogs != 0 || refused != len(attempts) {
		t.Fatal("card data reached a store")
	}
}

func scanKafka(t *testing.T, p *product, events int) (found, records int) {
	t.Helper()
	if p.s.Broker == nil {
		t.Log("no embedded Kafka: topics not scanned")
		return 0, 0
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.s.Broker.Brokers()...), kgo.ConsumeRegex(), kgo.ConsumeTopics(`^livecore\..*`),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eventRecords := 0
	for eventRecords < events && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			records++
			if !strings.HasSuffix(r.Topic, "checkpoints.v1") {
				eventRecords++
			}
			b := append(append([]byte(nil), r.Key...), r.Value...)
			for _, h := range r.Headers {
				b = append(append(b, h.Key...), h.Value...)
			}
			found += countPANs(b)
		})
	}
	if eventRecords < events {
		t.Errorf("read %d event records from Kafka, want %d (the bridge lags)", eventRecords, events)
	}
	return found, records
}
