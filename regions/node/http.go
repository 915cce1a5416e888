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
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/regions"
	"github.com/livecore/livecore/regions/replicate"
)

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
	mux.HandleFunc("GET /v1/route", n.ready(n.handleRoute))
	mux.HandleFunc("GET /healthz", n.handleHealth)
	mux.HandleFunc("GET /v1/dr/status", n.ready(n.handleStatus))
	mux.HandleFunc("GET /v1/dr/events", n.ready(n.handleEvents))
	mux.HandleFunc("POST /v1/dr/drain", n.ready(n.handleDrain))
	mux.HandleFunc("POST /v1/dr/catchup", n.ready(n.handleCatchUp))
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		g := prometheus.Gatherers{n.prom}
		if p := n.product.Load(); p != nil {
			g = append(g, p.Metrics)
		}
		promhttp.HandlerFor(g, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	})
	// Everything else is the product's API, once it is built.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p := n.product.Load()
		if p == nil || n.state.Load() == "starting" {
			n.problem(w, http.StatusServiceUnavailable, "starting", "the region is starting (reconciling its log)", nil)
			return
		}
		p.API.ServeHTTP(w, r)
	})
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
	switch {
	case errors.As(err, &he):
		n.problem(w, he.status, he.typ, he.Error(), nil)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		n.problem(w, http.StatusServiceUnavailable, "timeout", err.Error(), nil)
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

// place homes a new order (httpapi.Backend.Placement): market is a market
// of the topology or a home's name; "" is the first home this region
// prefers. A home this region cannot write now is refused with
// *regions.NotOwnerError (mapError: 421 with the owner, or 503).
func (n *Node) place(ctx context.Context, market string) (string, error) {
	home := ""
	switch h, ok := n.cfg.Topology.HomeOfMarket(market); {
	case market == "":
		if hs := n.cfg.Topology.HomesPreferring(n.cfg.Region); len(hs) > 0 {
			home = hs[0]
		} else {
			home = n.cfg.Topology.Homes[0].Name
		}
	case ok:
		home = h
	default:
		if _, ok := n.cfg.Topology.Home(market); !ok {
			return "", &httpapi.Error{Code: httpapi.CodeInvalid, Message: "unknown market " + strconv.Quote(market),
				Fields: []httpapi.FieldError{{Field: "market", Code: "unknown_market", Message: "must be a market or home of the deployment"}}}
		}
		home = market
	}
	g, err := n.leases.Enter(home)
	if err != nil {
		return "", err
	}
	g.Exit()
	return home, nil
}

// acknowledge holds an API write's answer per the durability mode.
func (n *Node) acknowledge(ctx context.Context, position uint64) error {
	return n.acker.Ack(ctx, event.AppendResult{LastPosition: position})
}

// mapError gives the API's answers to ownership and durability errors.
func (n *Node) mapError(r *http.Request, err error) *httpapi.Error {
	var noe *regions.NotOwnerError
	switch {
	case errors.As(err, &noe):
		rt, rerr := n.router.OwnerOfHome(noe.Home, "")
		if rerr != nil || rt.Owner == "" || rt.Owner == n.cfg.Region || rt.URL == "" {
			// This region owns the home but may not write it right now
			// (lease being taken, draining, lost), or nobody is known to.
			return &httpapi.Error{Code: httpapi.CodeUnavailable, Err: err,
				Message: "home " + noe.Home + " cannot be written here right now (" + noe.Reason + "); retry shortly, with the same Idempotency-Key"}
		}
		return &httpapi.Error{Code: httpapi.CodeMisdirected, Err: err, Location: strings.TrimRight(rt.URL, "/") + r.URL.RequestURI(),
			Message: fmt.Sprintf("home %s is owned by region %s (epoch %d): nothing was written here; retry at Location with the same Idempotency-Key", noe.Home, rt.Owner, rt.Epoch)}
	case errors.Is(err, regions.ErrOwnershipLost), errors.Is(err, regions.ErrNotDurable):
		return &httpapi.Error{Code: httpapi.CodeUnavailable, Err: err,
			Message: "the write's outcome is unknown (" + err.Error() + "); retry with the same Idempotency-Key"}
	}
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
	Sagas      SagaStats              `json:"sagas"`
	// Unreplicated is the last loss report written by this region when it
	// came back after a forced failover (nil: none).
	Unreplicated *Unreplicated `json:"unreplicated,omitempty"`
	Uptime       float64       `json:"uptime_seconds"`
}

func (n *Node) status(ctx context.Context) Status {
	s := Status{Region: n.cfg.Region, State: n.state.Load().(string), Durability: n.cfg.Durability.String(),
		Published: n.bridge.Published(), BridgeErr: n.bridgeErr.Load().(string), Leases: n.leases.States(),
		Peers: n.rep.Status(), Fence: n.fence.Stats(), Sagas: n.sagas.stats(), Unreplicated: n.lost,
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
