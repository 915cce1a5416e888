// Package httpapi is livecore's HTTP API: the contract (openapi.yaml, served
// at /openapi.json) and the machinery every endpoint shares.
//
// An endpoint is a method returning an error:
//
//	func (s *Server) handleCancelOrder(w http.ResponseWriter, r *http.Request) error {
//		var req cancelOrderRequest
//		if err := s.decode(r, &req); err != nil {
//			return err
//		}
//		...
//		return writeJSON(w, http.StatusOK, resp)
//	}
//
// registered with the roles that may call it:
//
//	s.handle("POST /v1/orders/{id}/cancel", s.handleCancelOrder, RoleCheckout)
//
// Around it the Server
//   - authenticates the bearer API key (401) and checks the role (403);
//   - on POST, requires an Idempotency-Key, reads the body (413, 415),
//     and runs the handler at most once per key (409 in flight, 422 for a
//     reused key, replay of the stored response otherwise); a 4xx or 5xx
//     releases the key, so bad input leaves nothing behind;
//   - turns a returned error into an RFC 9457 problem (ErrorOf is the one
//     mapping), recovers panics as 500s, and never sends an internal
//     error's details;
//   - gives every request an X-Request-ID, logs one line per request and
//     records a latency histogram by route pattern and status class.
package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Header names of the API.
const (
	HeaderIdempotencyKey   = "Idempotency-Key"
	HeaderReplayed         = "Idempotent-Replayed"
	HeaderRequestID        = "X-Request-ID"
	HeaderCorrelationID    = "X-Correlation-ID"
	HeaderPosition         = "X-Livecore-Position"
	HeaderMinPosition      = "X-Livecore-Min-Position"
	defaultMaxBody         = 1 << 20
	defaultIdemTTL         = 7 * 24 * time.Hour
	defaultIdemLockTimeout = 2 * time.Minute
	defaultReadyTimeout    = 2 * time.Second
	defaultMinPositionWait = 5 * time.Second
	storeTimeout           = 10 * time.Second
)

// ReadyCheck is one named readiness check for /readyz (the event store, the
// read-model database, Temporal). Check returns nil when the dependency can
// serve.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Config configures a Server. Zero fields get the defaults documented on
// each; Auth and Idempotency are required.
type Config struct {
	// Auth resolves "Authorization: Bearer <key>" to a principal (required;
	// usually *Keys).
	Auth Authenticator
	// Idempotency stores idempotency records (required).
	Idempotency IdempotencyStore
	// Logger gets one line per request (default slog.Default()).
	Logger *slog.Logger
	// Registerer receives the HTTP metrics and Gatherer is served at
	// /metrics. Default: one new registry for both. Pass the process's
	// registry for both to expose every component's metrics.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// ReadyChecks run on every /readyz, concurrently.
	ReadyChecks []ReadyCheck
	// ReadyTimeout bounds all ReadyChecks together (default 2s).
	ReadyTimeout time.Duration
	// MaxBodyBytes limits request bodies (default 1 MiB); larger ones get
	// 413.
	MaxBodyBytes int64
	// IdempotencyTTL is how long a completed key is kept and replayed after
	// its response (default 7 days); after that, Purge forgets it and the
	// same key is a new request.
	IdempotencyTTL time.Duration
	// IdempotencyLockTimeout is how long a key stays "in flight" before a
	// retry may presume the first attempt dead and run again (default 2
	// minutes). Keep it above the longest a handler may run: a handler still
	// running after it could run twice (its late Complete then fails with
	// ErrIdempotencyLockLost and is logged).
	IdempotencyLockTimeout time.Duration
	// MinPositionWait bounds how long a read waits for
	// X-Livecore-Min-Position (default 5s); past it the read gets 503.
	MinPositionWait time.Duration
	// ProblemTypeBase prefixes problem codes into type URIs (default
	// DefaultProblemTypeBase).
	ProblemTypeBase string
	// ValidateRequests checks every request against openapi.yaml before
	// its handler runs (a development aid: it costs a schema validation per
	// request). A violation is a 400 or 422 problem.
	ValidateRequests bool
	// Backend runs the /v1 endpoints; nil serves only the operational
	// routes.
	Backend *Backend
	// MapError, if set, classifies an error before ErrorOf does (nil: not
	// its error). A multi-region deployment maps "another region owns
	// this" to CodeMisdirected with the owner's Location, and "the write's
	// outcome is unknown" to CodeUnavailable.
	MapError func(r *http.Request, err error) *Error
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Rand is the entropy for request IDs and idempotency locks (default
	// crypto/rand.Reader).
	Rand io.Reader
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registerer == nil && c.Gatherer == nil {
		reg := prometheus.NewRegistry()
		c.Registerer, c.Gatherer = reg, reg
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = defaultReadyTimeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = defaultMaxBody
	}
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = defaultIdemTTL
	}
	if c.IdempotencyLockTimeout == 0 {
		c.IdempotencyLockTimeout = defaultIdemLockTimeout
	}
	if c.MinPositionWait == 0 {
		c.MinPositionWait = defaultMinPositionWait
	}
	if c.ProblemTypeBase == "" {
		c.ProblemTypeBase = DefaultProblemTypeBase
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
}

// Validate reports the first missing or inconsistent setting.
func (c *Config) Validate() error {
	switch {
	case c.Auth == nil:
		return errors.New("httpapi: Config.Auth is required")
	case c.Idempotency == nil:
		return errors.New("httpapi: Config.Idempotency is required")
	case c.Registerer == nil || c.Gatherer == nil:
		return errors.New("httpapi: Config.Registerer and Config.Gatherer go together")
	case c.MaxBodyBytes < 0, c.IdempotencyTTL < 0, c.IdempotencyLockTimeout < 0, c.ReadyTimeout < 0, c.MinPositionWait < 0:
		return errors.New("httpapi: negative limit in Config")
	case c.IdempotencyLockTimeout > c.IdempotencyTTL:
		return errors.New("httpapi: Config.IdempotencyLockTimeout is longer than IdempotencyTTL")
	}
	if c.Backend != nil {
		if err := c.Backend.validate(); err != nil {
			return err
		}
	}
	for i, rc := range c.ReadyChecks {
		if rc.Name == "" || rc.Check == nil {
			return fmt.Errorf("httpapi: Config.ReadyChecks[%d] needs a Name and a Check", i)
		}
	}
	return nil
}

// Server is the HTTP API. Build it with New; it is an http.Handler, safe for
// concurrent use.
type Server struct {
	cfg      Config
	mux      *http.ServeMux
	metrics  *metrics
	spec     *SpecValidator // nil unless cfg.ValidateRequests
	draining atomic.Bool
	handler  http.Handler
	backend  *Backend
	tenants  tenantCache

	metricsHandler http.Handler
}

// HandlerFunc is an endpoint: it writes a response and returns nil, or
// returns an error (an *Error, or anything ErrorOf can classify) without
// having written, and the Server writes the problem.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// New builds a Server with the operational routes (/healthz, /readyz,
// /metrics, /openapi.json). It fails on a bad Config or when the metrics
// cannot be registered (a second Server on one registry).
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.metricsHandler = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})
	if cfg.ValidateRequests {
		if s.spec, err = NewSpecValidator(); err != nil {
			return nil, err
		}
	}
	s.handlePublic("GET /healthz", s.handleHealthz)
	s.handlePublic("GET /readyz", s.handleReadyz)
	s.handlePublic("GET /metrics", s.handleMetrics)
	s.handlePublic("GET /openapi.json", s.handleOpenAPI)
	if cfg.Backend != nil {
		s.backend = cfg.Backend
		s.tenants.max = 100_000
		s.routes()
	}
	s.handler = s.observe(http.HandlerFunc(s.dispatch))
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// handle registers an authenticated endpoint that principals with one of
// roles may call. POST endpoints are idempotent (see serveIdempotent).
// Registering with no roles is a wiring bug and panics.
func (s *Server) handle(pattern string, h HandlerFunc, roles ...Role) {
	if len(roles) == 0 {
		panic("httpapi: route " + pattern + " has no roles")
	}
	method, _, _ := strings.Cut(pattern, " ")
	idempotent := method == http.MethodPost
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoFrom(r.Context())
		info.route = r.Pattern
		p, err := s.authenticate(r)
		if err != nil {
			s.writeProblem(w, r, err)
			return
		}
		info.principal = p
		if !allowed(p, roles) {
			s.writeProblem(w, r, &Error{Code: CodeForbidden, Message: fmt.Sprintf("the %s role may not call %s", p.Role, pattern)})
			return
		}
		r = r.WithContext(WithPrincipal(r.Context(), p))
		if idempotent {
			s.serveIdempotent(w, r, h)
			return
		}
		if s.spec != nil {
			if err := s.spec.checkRequest(r, nil); err != nil {
				s.writeProblem(w, r, err)
				return
			}
		}
		s.run(w, r, h)
	}))
}

// handlePublic registers an unauthenticated operational route.
func (s *Server) handlePublic(pattern string, h HandlerFunc) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoFrom(r.Context()).route = r.Pattern
		s.run(w, r, h)
	}))
}

// dispatch routes through the mux, answering unknown paths and methods
// with problems instead of the mux's plain text.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.mux.ServeHTTP(&fallbackWriter{ResponseWriter: w, s: s, r: r}, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// fallbackWriter turns the mux's own 404 and 405 into problems; redirects
// (path cleaning) pass through.
type fallbackWriter struct {
	http.ResponseWriter
	s       *Server
	r       *http.Request
	swallow bool
}

func (f *fallbackWriter) WriteHeader(code int) {
	switch code {
	case http.StatusNotFound:
		f.swallow = true
		f.s.writeProblem(f.ResponseWriter, f.r, &Error{Code: CodeNotFound, Message: "no route for " + f.r.Method + " " + redactPAN(f.r.URL.Path)})
	case http.StatusMethodNotAllowed:
		f.swallow = true
		f.s.writeProblem(f.ResponseWriter, f.r, &Error{Code: CodeMethodNotAllowed, Message: f.r.Method + " is not allowed on " + redactPAN(f.r.URL.Path) + "; allowed: " + f.Header().Get("Allow")})
	default:
		f.ResponseWriter.WriteHeader(code)
	}
}

func (f *fallbackWriter) Write(b []byte) (int, error) {
	if f.swallow {
		return len(b), nil
	}
	return f.ResponseWriter.Write(b)
}

// run calls h, recovering a panic as an internal error, and writes the
// problem for a returned error. If h had already written, the error can
// only be logged.
func (s *Server) run(w http.ResponseWriter, r *http.Request, h HandlerFunc) {
	err := s.call(w, r, h)
	if err == nil {
		return
	}
	if rec, ok := w.(*recorder); ok {
		rec.reset()
	} else if sw, ok := w.(*statusWriter); ok && sw.wrote {
		info := infoFrom(r.Context())
		info.err = ErrorOf(err)
		info.lateErr = true
		return
	}
	s.writeProblem(w, r, err)
}

func (s *Server) call(w http.ResponseWriter, r *http.Request, h HandlerFunc) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			err = Internal(fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
		}
	}()
	return h(w, r)
}

// serveIdempotent runs h at most once per (tenant, Idempotency-Key).
//
// Order: key present and well-formed (400), body within the limit (413) and
// JSON (415), the spec (dev), then Begin. Nothing is stored before Begin, so
// every rejection up to there leaves nothing behind. After Begin the
// response is buffered; a status below 400 is stored (Complete) before it is
// sent, so a client that sees it will get the same bytes on retry; any
// other status releases the key.
func (s *Server) serveIdempotent(w http.ResponseWriter, r *http.Request, h HandlerFunc) {
	info := infoFrom(r.Context())
	p, _ := PrincipalFrom(r.Context())
	key, err := parseIdempotencyKey(r.Header)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	body, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	if fields := scanBodyForPANs(body); fields != nil {
		s.writeProblem(w, r, &Error{Code: CodeInvalid, Message: fieldsMessage(fields, "card data is not accepted"), Fields: fields})
		return
	}
	if s.spec != nil {
		if err := s.spec.checkRequest(r, body); err != nil {
			s.writeProblem(w, r, err)
			return
		}
	}
	ik := IdemKey{Tenant: p.Tenant, Key: storedKey(key)}
	fp := fingerprint(r.Method, r.URL.Path, body)
	lock, err := s.token()
	if err != nil {
		s.writeProblem(w, r, Internal(err))
		return
	}
	now := s.cfg.Now()
	begun, err := s.cfg.Idempotency.Begin(r.Context(), BeginRequest{
		Key: ik, Fingerprint: fp, Lock: lock, Now: now,
		LockedUntil: now.Add(s.cfg.IdempotencyLockTimeout),
		ExpiresAt:   now.Add(s.cfg.IdempotencyTTL),
	})
	switch {
	case errors.Is(err, ErrIdempotencyInFlight):
		info.idem = "in_flight"
		s.metrics.idem.WithLabelValues("in_flight").Inc()
		w.Header().Set("Retry-After", "1")
		s.writeProblem(w, r, err)
		return
	case errors.Is(err, ErrIdempotencyMismatch):
		info.idem = "mismatch"
		s.metrics.idem.WithLabelValues("mismatch").Inc()
		s.writeProblem(w, r, err)
		return
	case err != nil:
		s.writeProblem(w, r, Internal(err))
		return
	case begun.Replay != nil:
		info.idem = "replayed"
		s.metrics.idem.WithLabelValues("replayed").Inc()
		writeStored(w, *begun.Replay, true)
		return
	}
	info.idem = "started"
	s.metrics.idem.WithLabelValues("started").Inc()

	ctx := context.WithValue(r.Context(), idemCtxKey{}, Idempotency{Key: ik, Fingerprint: fp, CommandID: commandID(ik, fp)})
	r = r.WithContext(ctx)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	info.body, info.bodyRead = body, true

	rec := newRecorder()
	s.run(rec, r, h)
	resp := rec.stored()

	// The outcome must be recorded even if the client has gone.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimeout)
	defer cancel()
	if resp.Status < 400 {
		if err := s.cfg.Idempotency.Complete(sctx, ik, lock, resp, s.cfg.Now().Add(s.cfg.IdempotencyTTL)); err != nil {
			// The side effect happened and the client gets its answer; a
			// retry may run the handler again once the lock times out, and
			// the command ID (same key and body) keeps that retry from
			// appending twice.
			info.idemErr = fmt.Errorf("complete idempotency key: %w", err)
		}
	} else if err := s.cfg.Idempotency.Release(sctx, ik, lock); err != nil {
		info.idemErr = fmt.Errorf("release idempotency key: %w", err)
	}
	rec.copyTo(w)
}

// writeStored sends a stored response: its status, stored headers and body.
func writeStored(w http.ResponseWriter, resp StoredResponse, replayed bool) {
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = append([]string(nil), vs...)
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	if replayed {
		h.Set(HeaderReplayed, "true")
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

// token returns 16 random bytes in hex.
func (s *Server) token() (string, error) {
	for {
		var b [16]byte
		if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
			return "", fmt.Errorf("random token: %w", err)
		}
		// Request IDs end up in logs and event metadata: never one that
		// looks like a card number (hex has decimal runs by chance).
		if t := hex.EncodeToString(b[:]); !containsPAN(t) {
			return t, nil
		}
	}
}

// decode reads the request body into dst with DecodeJSON's rules. On POST
// routes the body was already read (and limited) before the handler ran.
func (s *Server) decode(r *http.Request, dst any) error {
	info := infoFrom(r.Context())
	body := info.body
	if !info.bodyRead {
		b, err := readBody(r, s.cfg.MaxBodyBytes)
		if err != nil {
			return err
		}
		body = b
		info.body, info.bodyRead = b, true
	}
	return DecodeJSON(body, dst)
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return Internal(fmt.Errorf("encode response: %w", err))
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return nil
}

// recorder buffers a response so it can be stored before it is sent, and
// discarded if the handler fails after writing part of it.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (rc *recorder) Header() http.Header { return rc.header }

func (rc *recorder) WriteHeader(code int) {
	if rc.status == 0 {
		rc.status = code
	}
}

func (rc *recorder) Write(b []byte) (int, error) {
	if rc.status == 0 {
		rc.status = http.StatusOK
	}
	return rc.body.Write(b)
}

func (rc *recorder) reset() {
	rc.header = http.Header{}
	rc.status = 0
	rc.body.Reset()
}

// stored is the response as the idempotency store keeps it.
func (rc *recorder) stored() StoredResponse {
	status := rc.status
	if status == 0 {
		status = http.StatusOK
	}
	h := http.Header{}
	for _, k := range replayedHeaders {
		if vs := rc.header.Values(k); len(vs) > 0 {
			h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
		}
	}
	return StoredResponse{Status: status, Header: h, Body: bytes.Clone(rc.body.Bytes())}
}

// copyTo sends the buffered response, all headers included.
func (rc *recorder) copyTo(w http.ResponseWriter) {
	h := w.Header()
	for k, vs := range rc.header {
		h[k] = vs
	}
	status := rc.status
	if status == 0 {
		status = http.StatusOK
	}
	h.Set("Content-Length", strconv.Itoa(rc.body.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(rc.body.Bytes())
}
