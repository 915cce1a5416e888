package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/regions"
	"github.com/livecore/livecore/regions/node"
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

	mu     sync.Mutex
	routes map[string]string // home -> region believed to own it
	orders map[string]*orderRec
	acks   []ack
	direct []directWrite

	sent, retries atomic.Uint64
}

type orderRec struct {
	ID, Home                string
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
				id := regions.EntityID(home, fmt.Sprintf("%s-w%d-%d", l.runID, w, n))
				l.order(context.WithoutCancel(ctx), home, id)
			}
		})
	}
	wg.Wait()
}

func (l *load) order(ctx context.Context, home, id string) {
	rec := &orderRec{ID: id, Home: home, placeKey: "place-" + id, checkoutKey: "checkout-" + id, firstSent: time.Now()}
	l.mu.Lock()
	l.orders[id] = rec
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	body := node.PlaceOrderRequest{
		OrderID: id, CustomerID: "c-" + id, Market: "drill", Currency: "USD",
		Lines: []node.OrderLine{{SKU: "sku-live-1", Quantity: 1 + int64(len(id)%3), UnitPrice: "19.99"}},
	}
	resp, region, err := l.send(ctx, rec, home, "/v1/orders", rec.placeKey, body, &rec.placeTries)
	l.mu.Lock()
	if err != nil {
		rec.PlaceErr = err.Error()
		l.mu.Unlock()
		return
	}
	rec.PlacedAt, rec.PlacedBy, rec.PlacedPos = time.Now(), region, resp.Position
	l.acks = append(l.acks, ack{At: rec.PlacedAt, Home: home, Region: region, Kind: "place", Order: id})
	l.mu.Unlock()

	resp, region, err = l.send(ctx, rec, home, "/v1/orders/"+id+"/checkout", rec.checkoutKey, node.CheckoutRequest{Method: "card"}, &rec.checkTries)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		rec.CheckoutErr = err.Error()
		return
	}
	rec.CheckoutAt, rec.CheckoutBy, rec.CheckoutPos = time.Now(), region, resp.Position
	l.acks = append(l.acks, ack{At: rec.CheckoutAt, Home: home, Region: region, Kind: "checkout", Order: id})
}

// send posts until a 2xx (returned with the answering region) or ctx ends.
func (l *load) send(ctx context.Context, rec *orderRec, home, path, key string, body any, tries *int) (node.OrderResponse, string, error) {
	b, _ := json.Marshal(body)
	var last string
	for {
		if ctx.Err() != nil {
			return node.OrderResponse{}, "", fmt.Errorf("gave up after %d tries: %s", *tries, last)
		}
		l.mu.Lock()
		region := l.routes[home]
		*tries++
		rec.lastAttempt = time.Now()
		l.mu.Unlock()
		l.sent.Add(1)
		status, resp, prob, err := l.post(ctx, region, path, key, b)
		switch {
		case err == nil && status/100 == 2:
			return resp, region, nil
		case err == nil && status == http.StatusMisdirectedRequest && prob.Route != nil && prob.Route.Owner != "":
			l.mu.Lock()
			l.routes[home] = prob.Route.Owner
			rec.redirected++
			l.mu.Unlock()
			last = fmt.Sprintf("421 from %s: owner %s", region, prob.Route.Owner)
			if prob.Route.Pending {
				l.pause(ctx, 50*time.Millisecond)
			}
		case err == nil && status/100 == 4 && status != http.StatusMisdirectedRequest:
			return node.OrderResponse{}, "", fmt.Errorf("%d from %s: %s", status, region, prob.Detail)
		default:
			// 5xx, timeout or connection refused: the owner may be dead or
			// paused; ask the other regions where the home is now.
			if err != nil {
				last = fmt.Sprintf("%s: %v", region, err)
			} else {
				last = fmt.Sprintf("%d from %s: %s", status, region, prob.Detail)
			}
			l.mu.Lock()
			rec.unavailable++
			l.mu.Unlock()
			l.retries.Add(1)
			l.reroute(ctx, home, region)
			l.pause(ctx, 100*time.Millisecond)
		}
	}
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

func (l *load) post(ctx context.Context, region, path, key string, body []byte) (int, node.OrderResponse, node.Problem, error) {
	var resp node.OrderResponse
	var prob node.Problem
	r, err := l.topo.Region(region)
	if err != nil {
		return 0, resp, prob, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(r.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, resp, prob, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	hr, err := l.hc.Do(req)
	if err != nil {
		return 0, resp, prob, err
	}
	defer hr.Body.Close()
	b, _ := io.ReadAll(hr.Body)
	if hr.StatusCode/100 == 2 {
		err = json.Unmarshal(b, &resp)
	} else {
		json.Unmarshal(b, &prob)
	}
	return hr.StatusCode, resp, prob, err
}

// probe sends n writes for new orders of home straight to region (no
// routing, no retry) and records the answers.
func (l *load) probe(ctx context.Context, region, home string, n int) []directWrite {
	var out []directWrite
	for i := range n {
		id := regions.EntityID(home, fmt.Sprintf("%s-probe-%d", l.runID, i))
		b, _ := json.Marshal(node.PlaceOrderRequest{OrderID: id, CustomerID: "probe", Market: "drill", Currency: "USD",
			Lines: []node.OrderLine{{SKU: "sku-live-1", Quantity: 1, UnitPrice: "1.00"}}})
		status, _, prob, err := l.post(ctx, region, "/v1/orders", "probe-"+id, b)
		dw := directWrite{Region: region, Order: id, Status: status}
		if err != nil {
			dw.Err = err.Error()
		} else if status/100 != 2 {
			dw.Err = prob.Type + ": " + prob.Detail
		}
		out = append(out, dw)
	}
	l.mu.Lock()
	l.direct = append(l.direct, out...)
	l.mu.Unlock()
	return out
}

func getJSON(ctx context.Context, hc *http.Client, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %d: %s", url, resp.StatusCode, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}
