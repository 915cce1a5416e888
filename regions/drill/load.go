package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/regions"
)

// load drives checkouts the way an integration would: place an order at
// its home's owner, then check it out, each with an Idempotency-Key it
// keeps across retries; follow 421 redirects; on a dead or unanswering
// region, ask another region where the home is now and retry.
type load struct {
	topo    regions.Topology
	hc      *http.Client
	rate    float64
	workers int
	runID   string
	// checkoutKey is the drill tenant's API key (role checkout); skus
	// names each home's SKU (its stock is homed with it).
	checkoutKey string
	skus        map[string]string

	mu     sync.Mutex
	routes map[string]string    // home -> region believed to own it
	orders map[string]*orderRec // by Key
	acks   []ack
	direct []directWrite

	sent, retries atomic.Uint64
}

type orderRec struct {
	// Key is the client's reference (the map key); ID is the order's ID,
	// known once the placement is acknowledged.
	Key, ID, Home           string
	PlacedAt, CheckoutAt    time.Time // acknowledgement times (zero: not acknowledged)
	PlacedBy, CheckoutBy    string
	PlacedPos, CheckoutPos  uint64
	PlaceErr, CheckoutErr   string
	placeKey, checkoutKey   string
	placeTries, checkTries  int
	firstSent, lastAttempt  time.Time
	redirected, unavailable int
}

type ack struct {
	At     time.Time
	Home   string
	Region string
	Kind   string // place | checkout
	Order  string
}

// directWrite is a write sent straight to a region regardless of routing
// (the split-brain probe).
type directWrite struct {
	Region string `json:"region"`
	Order  string `json:"order"`
	Status int    `json:"status"`
	Err    string `json:"err,omitempty"`
}

func newLoad(topo regions.Topology, rate float64, workers int, runID string) *load {
	l := &load{
		topo: topo, rate: rate, workers: workers, runID: runID,
		hc:     &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		routes: map[string]string{}, orders: map[string]*orderRec{},
	}
	for _, h := range topo.Homes {
		l.routes[h.Name] = h.Region
	}
	return l
}

// run places and checks out orders until ctx ends; each order is finished
// (or given up after a minute) even after ctx ends, so what was started is
// either acknowledged or known unacknowledged.
func (l *load) run(ctx context.Context) {
	var wg sync.WaitGroup
	mean := float64(time.Second) * float64(l.workers) / max(l.rate, 0.1)
	for w := range l.workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for n := 0; ; n++ {
				// Poisson arrivals per client: faults land at random
				// points of requests, not on a tick.
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Duration(rng.ExpFloat64() * mean)):
				}
				home := l.topo.Homes[rng.IntN(len(l.topo.Homes))].Name
				l.order(context.WithoutCancel(ctx), home, fmt.Sprintf("%s-%s-w%d-%d", l.runID, home, w, n))
			}
		})
	}
	wg.Wait()
}

func (l *load) order(ctx context.Context, home, key string) {
	rec := &orderRec{Key: key, Home: home, placeKey: "place-" + key, checkoutKey: "checkout-" + key, firstSent: time.Now()}
	l.mu.Lock()
	l.orders[key] = rec
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	body := map[string]any{
		"customer_id": "c-" + strings.ReplaceAll(key, ".", "-"), "market": home, "currency": "USD",
		"items": []map[string]any{{"sku": l.skus[home], "quantity": 1 + len(key)%3, "unit_price": map[string]string{"amount": "19.99", "currency": "USD"}}},
	}
	resp, region, err := l.send(ctx, rec, home, "/v1/orders", rec.placeKey, l.checkoutKey, body, &rec.placeTries)
	l.mu.Lock()
	if err != nil {
		rec.PlaceErr = err.Error()
		l.mu.Unlock()
		return
	}
	rec.ID = resp.ID
	rec.PlacedAt, rec.PlacedBy, rec.PlacedPos = time.Now(), region, resp.Position
	l.acks = append(l.acks, ack{At: rec.PlacedAt, Home: home, Region: region, Kind: "place", Order: rec.ID})
	l.mu.Unlock()

	pay := map[string]any{"payment": map[string]string{"method": "card", "card_token": "tok_visa_approve"}}
	resp, region, err = l.send(ctx, rec, home, "/v1/orders/"+rec.ID+"/checkout", rec.checkoutKey, l.checkoutKey, pay, &rec.checkTries)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		rec.CheckoutErr = err.Error()
		return
	}
	rec.CheckoutAt, rec.CheckoutBy, rec.CheckoutPos = time.Now(), region, resp.Position
	l.acks = append(l.acks, ack{At: rec.CheckoutAt, Home: home, Region: region, Kind: "checkout", Order: rec.ID})
}

// answer is what the drill reads of a 2xx: the resource's ID and the
// position of the write (X-Livecore-Position).
type answer struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Position uint64 `json:"-"`
}

// problem is what the drill reads of an RFC 9457 answer.
type problem struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
	// Location is the Location header (421: the owner's URL).
	Location string `json:"-"`
}

// send posts until a 2xx (returned with the answering region) or ctx ends.
func (l *load) send(ctx context.Context, rec *orderRec, home, path, idemKey, apiKey string, body any, tries *int) (answer, string, error) {
	b, _ := json.Marshal(body)
	var last string
	for {
		if ctx.Err() != nil {
			return answer{}, "", fmt.Errorf("gave up after %d tries: %s", *tries, last)
		}
		l.mu.Lock()
		region := l.routes[home]
		*tries++
		if rec != nil {
			rec.lastAttempt = time.Now()
		}
		l.mu.Unlock()
		l.sent.Add(1)
		status, resp, prob, err := l.post(ctx, region, path, idemKey, apiKey, b)
		owner := l.regionOf(prob.Location)
		switch {
		case err == nil && status/100 == 2:
			return resp, region, nil
		case err == nil && status == http.StatusMisdirectedRequest && owner != "":
			l.mu.Lock()
			l.routes[home] = owner
			if rec != nil {
				rec.redirected++
			}
			l.mu.Unlock()
			last = fmt.Sprintf("421 from %s: owner %s", region, owner)
			if owner == region {
				l.pause(ctx, 50*time.Millisecond)
			}
		case err == nil && status == http.StatusConflict && prob.Code == "idempotency_key_in_use":
			last = fmt.Sprintf("409 from %s: %s", region, prob.Detail)
			l.pause(ctx, 100*time.Millisecond)
		case err == nil && status/100 == 4 && status != http.StatusMisdirectedRequest:
			return answer{}, "", fmt.Errorf("%d from %s: %s: %s", status, region, prob.Code, prob.Detail)
		default:
			// 5xx, timeout or connection refused: the owner may be dead or
			// paused; ask the other regions where the home is now.
			if err != nil {
				last = fmt.Sprintf("%s: %v", region, err)
			} else {
				last = fmt.Sprintf("%d from %s: %s", status, region, prob.Detail)
			}
			l.mu.Lock()
			if rec != nil {
				rec.unavailable++
			}
			l.mu.Unlock()
			l.retries.Add(1)
			l.reroute(ctx, home, region)
			l.pause(ctx, 100*time.Millisecond)
		}
	}
}

// regionOf names the region whose URL begins location ("" if none).
func (l *load) regionOf(location string) string {
	for _, r := range l.topo.Regions {
		if base := strings.TrimRight(r.URL, "/"); location != "" && strings.HasPrefix(location, base+"/") {
			return r.Name
		}
	}
	return ""
}

func (l *load) pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// reroute asks any region other than bad who owns home.
func (l *load) reroute(ctx context.Context, home, bad string) {
	stream := order.StreamID(regions.EntityID(home, "route"))
	for _, r := range l.topo.Regions {
		if r.Name == bad {
			continue
		}
		var rt regions.Route
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err := getJSON(cctx, l.hc, strings.TrimRight(r.URL, "/")+"/v1/route?stream="+stream, &rt)
		cancel()
		if err == nil && rt.Owner != "" {
			l.mu.Lock()
			l.routes[home] = rt.Owner
			l.mu.Unlock()
			return
		}
	}
}

func (l *load) post(ctx context.Context, region, path, idemKey, apiKey string, body []byte) (int, answer, problem, error) {
	var resp answer
	var prob problem
	r, err := l.topo.Region(region)
	if err != nil {
		return 0, resp, prob, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(r.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, resp, prob, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idemKey)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	hr, err := l.hc.Do(req)
	if err != nil {
		return 0, resp, prob, err
	}
	defer hr.Body.Close()
	b, _ := io.ReadAll(hr.Body)
	if hr.StatusCode/100 == 2 {
		err = json.Unmarshal(b, &resp)
		resp.Position, _ = strconv.ParseUint(hr.Header.Get("X-Livecore-Position"), 10, 64)
	} else {
		json.Unmarshal(b, &prob)
		prob.Location = hr.Header.Get("Location")
	}
	return hr.StatusCode, resp, prob, err
}

// probe sends n writes for new orders of home straight to region (no
// routing, no retry) and records the answers.
func (l *load) probe(ctx context.Context, region, home string, n int) []directWrite {
	var out []directWrite
	for i := range n {
		key := fmt.Sprintf("%s-probe-%s-%d", l.runID, home, i)
		b, _ := json.Marshal(map[string]any{"customer_id": "probe", "market": home, "currency": "USD",
			"items": []map[string]any{{"sku": l.skus[home], "quantity": 1, "unit_price": map[string]string{"amount": "1.00", "currency": "USD"}}}})
		status, resp, prob, err := l.post(ctx, region, "/v1/orders", key, l.checkoutKey, b)
		dw := directWrite{Region: region, Order: resp.ID, Status: status}
		if err != nil {
			dw.Err = err.Error()
		} else if status/100 != 2 {
			dw.Err = prob.Code + ": " + prob.Detail
		}
		out = append(out, dw)
	}
	l.mu.Lock()
	l.direct = append(l.direct, out...)
	l.mu.Unlock()
	return out
}

func getJSON(ctx context.Context, hc *http.Client, url string, out any) error {
	b, err := get(ctx, hc, url)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// get reads url's body; a status other than 2xx is an error.
func get(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("GET %s: %d: %.300s", url, resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, nil
}

// drillTenant is the tenant the drill's load runs as.
const drillTenant = "drill"

// provision creates the drill tenant's keys in the control-plane database
// (shared by every region), picks one SKU per home whose stock stream is
// homed there (the checkout saga reserves in the order's home: cross-home
// reservations are not routed), and receives stock for it at its owner.
func (d *drill) provision(ctx context.Context) error {
	t, err := httpapi.ParseTenantID(drillTenant)
	if err != nil {
		return err
	}
	store := httpapi.NewSQLKeyStore(d.cp.DB())
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	keys := &httpapi.Keys{Store: store}
	if d.load.checkoutKey, err = keys.CreateKey(ctx, t, httpapi.RoleCheckout); err != nil {
		return err
	}
	ops, err := keys.CreateKey(ctx, t, httpapi.RoleOps)
	if err != nil {
		return err
	}
	d.load.skus = map[string]string{}
	for _, h := range d.topo.Homes {
		for i := 0; ; i++ {
			sku := fmt.Sprintf("live-%s-%d", h.Name, i)
			if d.topo.HomeOf(inventory.StreamID(httpapi.StockSKU(t, sku), httpapi.StockLocation)) == h.Name {
				d.load.skus[h.Name] = sku
				break
			}
		}
		tries := 0
		body := map[string]any{"quantity": 10_000_000, "reference": "dr drill " + d.load.runID}
		if _, _, err := d.load.send(ctx, nil, h.Name, "/v1/inventory/"+d.load.skus[h.Name], "stock-"+d.load.runID+"-"+h.Name, ops, body, &tries); err != nil {
			return fmt.Errorf("stock %s: %w", d.load.skus[h.Name], err)
		}
	}
	d.say("tenant %q provisioned: keys in the control plane, SKUs %v stocked", drillTenant, d.load.skus)
	return nil
}
