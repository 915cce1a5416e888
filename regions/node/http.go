package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/regions"
	"github.com/livecore/livecore/regions/replicate"
)

// PlaceOrderRequest is the body of POST /v1/orders.
type PlaceOrderRequest struct {
	OrderID    string      `json:"order_id"`
	CustomerID string      `json:"customer_id"`
	Market     string      `json:"market"`
	Currency   string      `json:"currency"`
	Lines      []OrderLine `json:"lines"`
}

// OrderLine is one cart line.
type OrderLine struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice string `json:"unit_price"`
}

// CheckoutRequest is the body of POST /v1/orders/{id}/checkout.
type CheckoutRequest struct {
	Method string `json:"method"` // "card"
}

// OrderResponse is an order as a region sees it, and the answer of a write.
type OrderResponse struct {
	OrderID    string `json:"order_id"`
	Status     string `json:"status"`
	Version    uint64 `json:"version"`
	Position   uint64 `json:"position,omitempty"` // local $all position of the write
	Total      string `json:"total,omitempty"`
	PaymentRef string `json:"payment_ref,omitempty"`
	Region     string `json:"region"` // the region that answered
	Replayed   bool   `json:"replayed,omitempty"`
}

// Problem is an error answer (RFC 9457 fields plus the route on 421).
type Problem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail"`
	Region string         `json:"region"`
	Route  *regions.Route `json:"route,omitempty"`
}

func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders", n.ready(n.handlePlace))
	mux.HandleFunc("POST /v1/orders/{id}/checkout", n.ready(n.handleCheckout))
	mux.HandleFunc("GET /v1/orders/{id}", n.ready(n.handleGetOrder))
	mux.HandleFunc("GET /v1/route", n.ready(n.handleRoute))
	mux.HandleFunc("GET /healthz", n.handleHealth)
	mux.HandleFunc("GET /v1/dr/status", n.ready(n.handleStatus))
	mux.HandleFunc("GET /v1/dr/events", n.ready(n.handleEvents))
	mux.HandleFunc("POST /v1/dr/drain", n.ready(n.handleDrain))
	mux.HandleFunc("POST /v1/dr/catchup", n.ready(n.handleCatchUp))
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.prom, promhttp.HandlerOpts{}))
	return mux
}

// ready answers 503 until the node has reconciled and started.
func (n *Node) ready(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if n.state.Load() == "starting" {
			n.problem(w, http.StatusServiceUnavailable, "starting", "the region is starting (reconciling its log)", nil)
			return
		}
		if err := h(w, r); err != nil {
			n.writeErr(w, err)
		}
	}
}

func (n *Node) problem(w http.ResponseWriter, status int, typ, detail string, route *regions.Route) {
	w.Header().Set("Content-Type", "application/problem+json")
	if route != nil && route.URL != "" {
		w.Header().Set("Location", route.URL)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: detail, Region: n.cfg.Region, Route: route})
}

type httpError struct {
	status int
	typ    string
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, "invalid", fmt.Errorf(format, args...)}
}

// writeErr maps an error to its answer, once.
func (n *Node) writeErr(w http.ResponseWriter, err error) {
	var he *httpError
	var noe *regions.NotOwnerError
	switch {
	case errors.As(err, &he):
		n.problem(w, he.status, he.typ, he.Error(), nil)
	case errors.As(err, &noe):
		var rt *regions.Route
		if r, rerr := n.router.OwnerOfHome(noe.Home, ""); rerr == nil {
			rt = &r
		}
		if rt != nil && rt.Owner == n.cfg.Region {
			// We own it but may not write right now (lease being taken,
			// draining, lost): retry shortly.
			n.problem(w, http.StatusServiceUnavailable, "not_writable", err.Error(), rt)
			return
		}
		n.problem(w, http.StatusMisdirectedRequest, "not_owner", err.Error(), rt)
	case errors.Is(err, regions.ErrOwnershipLost), errors.Is(err, regions.ErrNotDurable):
		n.problem(w, http.StatusServiceUnavailable, "outcome_unknown", err.Error()+"; retry with the same Idempotency-Key", nil)
	case errors.Is(err, event.ErrWrongExpectedVersion), errors.Is(err, order.ErrAlreadyPlaced), errors.Is(err, order.ErrIllegalTransition):
		n.problem(w, http.StatusConflict, "conflict", err.Error(), nil)
	case errors.Is(err, order.ErrNotPlaced):
		n.problem(w, http.StatusNotFound, "not_found", err.Error(), nil)
	case errors.Is(err, app.ErrInvalidCommand), errors.Is(err, order.ErrInvalidInput), errors.Is(err, event.ErrInvalidAppend):
		n.problem(w, http.StatusUnprocessableEntity, "invalid", err.Error(), nil)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		n.problem(w, http.StatusServiceUnavailable, "outcome_unknown", err.Error(), nil)
	default:
		n.log.Error("request failed", "err", err)
		n.problem(w, http.StatusInternalServerError, "internal", "internal error", nil)
	}
}

func decode(r *http.Request, dst any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return badRequest("read body: %v", err)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return badRequest("body: %v", err)
	}
	return nil
}

// route checks ownership before any work: 421 with the owner when the
// stream is written elsewhere.
func (n *Node) route(w http.ResponseWriter, stream string) bool {
	rt, err := n.router.Owner(stream)
	if err != nil {
		n.problem(w, http.StatusServiceUnavailable, "no_route", err.Error(), nil)
		return false
	}
	if !rt.Local {
		n.problem(w, http.StatusMisdirectedRequest, "not_owner",
			fmt.Sprintf("%s belongs to home %s, owned by %s at epoch %d", stream, rt.Home, rt.Owner, rt.Epoch), &rt)
		return false
	}
	return true
}

func commandID(r *http.Request, op string) (string, error) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" || len(key) > 200 {
		return "", badRequest("Idempotency-Key header required (1-200 characters)")
	}
	return "http/" + op + "/" + key, nil
}

func (n *Node) handlePlace(w http.ResponseWriter, r *http.Request) error {
	var req PlaceOrderRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	cmdID, err := commandID(r, "place")
	if err != nil {
		return err
	}
	stream := order.StreamID(req.OrderID)
	if req.OrderID == "" || event.ValidateStreamID(stream) != nil {
		return badRequest("order_id %q", req.OrderID)
	}
	if !n.route(w, stream) {
		return nil
	}
	cur, err := money.ParseCurrency(req.Currency)
	if err != nil {
		return badRequest("currency: %v", err)
	}
	cmd := order.PlaceOrder{OrderID: req.OrderID, CustomerID: req.CustomerID, Region: req.Market, Currency: cur}
	for i, l := range req.Lines {
		p, err := money.ParseIn(l.UnitPrice, cur)
		if err != nil {
			return badRequest("line %d: unit_price: %v", i+1, err)
		}
		cmd.Lines = append(cmd.Lines, order.LineItem{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: p})
	}
	return n.execute(w, r, stream, cmdID, http.StatusCreated, func(o *order.Order) ([]event.Event, error) {
		return o.Place(cmd, time.Now().UTC())
	})
}

func (n *Node) handleCheckout(w http.ResponseWriter, r *http.Request) error {
	var req CheckoutRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	cmdID, err := commandID(r, "checkout")
	if err != nil {
		return err
	}
	if req.Method != "" && req.Method != "card" {
		return badRequest("method %q: the drill node supports card only", req.Method)
	}
	stream := order.StreamID(r.PathValue("id"))
	if !n.route(w, stream) {
		return nil
	}
	return n.execute(w, r, stream, cmdID, http.StatusAccepted, func(o *order.Order) ([]event.Event, error) {
		return o.StartCheckout(order.MethodCard, order.PlanKind{}, time.Now().UTC())
	})
}

// execute runs one command through the fenced app service and acknowledges
// it according to the durability mode.
func (n *Node) execute(w http.ResponseWriter, r *http.Request, stream, cmdID string, status int, decide func(*order.Order) ([]event.Event, error)) error {
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.SyncTimeout+5*time.Second)
	defer cancel()
	cmd := app.Command{ID: cmdID, Metadata: event.Metadata{Actor: "api", CorrelationID: r.Header.Get("Idempotency-Key")}}
	res, err := app.Execute(ctx, n.svc, stream, func() *order.Order { return &order.Order{} }, cmd, decide)
	if err != nil {
		return err
	}
	resp := OrderResponse{OrderID: r.PathValue("id"), Region: n.cfg.Region, Version: res.LastVersion, Replayed: res.Replayed}
	if res.LastVersion > 0 {
		evs, err := n.store.ReadStream(ctx, stream, res.LastVersion, 1)
		if err != nil || len(evs) != 1 {
			return fmt.Errorf("read back %s v%d: %w", stream, res.LastVersion, err)
		}
		resp.Position = evs[0].Position
		if err := n.acker.Ack(ctx, event.AppendResult{LastPosition: resp.Position}); err != nil {
			return err
		}
	}
	o, v, err := app.Load(ctx, n.svc, stream, func() *order.Order { return &order.Order{} })
	if err == nil {
		resp.OrderID, resp.Status, resp.Version = o.ID(), o.Status().String(), v
	}
	writeJSON(w, status, resp)
	return nil
}

func (n *Node) handleGetOrder(w http.ResponseWriter, r *http.Request) error {
	stream := order.StreamID(r.PathValue("id"))
	o, v, err := app.Load(r.Context(), n.svc, stream, func() *order.Order { return &order.Order{} })
	if err != nil {
		return err
	}
	if v == 0 {
		n.problem(w, http.StatusNotFound, "not_found", "no such order here", nil)
		return nil
	}
	resp := OrderResponse{OrderID: o.ID(), Status: o.Status().String(), Version: v, Region: n.cfg.Region, PaymentRef: o.PaymentRef()}
	if t := o.Total(); t.IsValid() {
		resp.Total = t.String()
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (n *Node) handleRoute(w http.ResponseWriter, r *http.Request) error {
	rt, err := n.router.Owner(r.URL.Query().Get("stream"))
	if err != nil {
		return &httpError{http.StatusServiceUnavailable, "no_route", err}
	}
	writeJSON(w, http.StatusOK, rt)
	return nil
}

// Health is GET /healthz.
type Health struct {
	Region string `json:"region"`
	State  string `json:"state"` // starting, ok, fenced
	PID    int    `json:"pid"`
}

var pid = os.Getpid()

func (n *Node) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Health{Region: n.cfg.Region, State: n.state.Load().(string), PID: pid})
}

// Status is GET /v1/dr/status.
type Status struct {
	Region     string                 `json:"region"`
	State      string                 `json:"state"`
	Durability string                 `json:"durability"`
	Head       uint64                 `json:"head"`
	Published  uint64                 `json:"published"`
	BridgeErr  string                 `json:"bridge_error,omitempty"`
	Leases     []regions.LeaseState   `json:"leases"`
	Owners     []regions.Ownership    `json:"owners"`
	Peers      []replicate.PeerStatus `json:"peers"`
	Fence      regions.FenceStats     `json:"fence"`
	Driver     DriverStats            `json:"driver"`
	// Unreplicated is the last loss report written by this region when it
	// came back after a forced failover (nil: none).
	Unreplicated *Unreplicated `json:"unreplicated,omitempty"`
	Uptime       float64       `json:"uptime_seconds"`
}

func (n *Node) status(ctx context.Context) Status {
	s := Status{Region: n.cfg.Region, State: n.state.Load().(string), Durability: n.cfg.Durability.String(),
		Published: n.bridge.Published(), BridgeErr: n.bridgeErr.Load().(string), Leases: n.leases.States(),
		Peers: n.rep.Status(), Fence: n.fence.Stats(), Driver: n.drv.stats(), Unreplicated: n.lost,
		Uptime: time.Since(n.started).Seconds()}
	s.Head, _ = n.store.Head(ctx)
	s.Owners, _ = n.leases.Owners()
	return s
}

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, n.status(r.Context()))
	return nil
}

func (n *Node) handleEvents(w http.ResponseWriter, r *http.Request) error {
	from, _ := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	limit, _ := strconv.Atoi(r.URL.Query().Get("max"))
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	evs, err := n.store.ReadAll(r.Context(), max(from, 1), limit)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []event.Envelope{}
	}
	writeJSON(w, http.StatusOK, evs)
	return nil
}

// DrainRequest / DrainResponse: POST /v1/dr/drain.
type DrainRequest struct {
	Home string `json:"home"`
}

type DrainResponse struct {
	Home  string `json:"home"`
	Epoch uint64 `json:"epoch"`
	Cut   uint64 `json:"cut"`
}

// handleDrain is the old owner's side of a planned handover: close the
// home's gate and wait for its writes in flight, wait until the bridge has
// committed everything up to the head to Kafka, and release the home with
// the head as its cut. On any failure the gate reopens.
func (n *Node) handleDrain(w http.ResponseWriter, r *http.Request) error {
	var req DrainRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	n.drainMu.Lock()
	defer n.drainMu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	epoch, err := n.leases.Drain(ctx, req.Home)
	if err != nil {
		return &httpError{http.StatusConflict, "not_owner", err}
	}
	ok := false
	defer func() {
		if !ok {
			n.leases.Reopen(req.Home)
		}
	}()
	head, err := n.store.Head(ctx)
	if err != nil {
		return err
	}
	if err := n.bridge.WaitPublished(ctx, head); err != nil {
		return fmt.Errorf("drain %s: publish up to %d: %w", req.Home, head, err)
	}
	if err := n.leases.Release(ctx, req.Home, epoch, head); err != nil {
		return &httpError{http.StatusConflict, "stale", err}
	}
	ok = true
	n.log.Info("home released for a planned handover", "home", req.Home, "epoch", epoch, "cut", head)
	writeJSON(w, http.StatusOK, DrainResponse{Home: req.Home, Epoch: epoch, Cut: head})
	return nil
}

// CatchUpRequest: POST /v1/dr/catchup.
type CatchUpRequest struct {
	Peer    string  `json:"peer"`
	Timeout float64 `json:"timeout_seconds"`
}

// CatchUpResponse says where the region stands after catching up.
type CatchUpResponse struct {
	Peer   string               `json:"peer"`
	Head   uint64               `json:"head"`
	Took   float64              `json:"took_seconds"`
	Lag    replicate.PeerStatus `json:"replication"`
	Leases []regions.LeaseState `json:"leases"`
}

func (n *Node) handleCatchUp(w http.ResponseWriter, r *http.Request) error {
	var req CatchUpRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	timeout := time.Duration(req.Timeout * float64(time.Second))
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	start := time.Now()
	if err := n.val.Refresh(ctx); err != nil {
		return err
	}
	if err := n.rep.CaughtUp(ctx, req.Peer); err != nil {
		return &httpError{http.StatusGatewayTimeout, "not_caught_up", err}
	}
	resp := CatchUpResponse{Peer: req.Peer, Took: time.Since(start).Seconds(), Leases: n.leases.States()}
	resp.Head, _ = n.store.Head(ctx)
	for _, p := range n.rep.Status() {
		if p.Peer == req.Peer {
			resp.Lag = p
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
