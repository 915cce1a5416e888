package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// reqInfo is what the layers of one request tell its log line and metrics.
// Only the request's own goroutine touches it.
type reqInfo struct {
	requestID     string
	correlationID string
	route         string // the mux pattern; "" when no route matched
	principal     Principal
	idem          string // "", started, replayed, in_flight, mismatch
	idemErr       error  // a failed Complete/Release (the response was sent)
	err           *Error // the error behind a problem response
	lateErr       bool   // the handler failed after writing: err was not sent
	body          []byte // the request body, once read
	bodyRead      bool
}

type infoKey struct{}

// infoFrom returns the request's info; a zero one (discarded) when the
// request did not come through observe, so that callers need no nil check.
func infoFrom(ctx context.Context) *reqInfo {
	if i, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

// RequestID returns the request's ID (X-Request-ID, accepted from the client
// or generated), for handlers that pass it on.
func RequestID(ctx context.Context) string { return infoFrom(ctx).requestID }

// CorrelationID returns the request's correlation ID (X-Correlation-ID, or
// the request ID when the client sent none).
func CorrelationID(ctx context.Context) string { return infoFrom(ctx).correlationID }

// validID accepts client-chosen request and correlation IDs: 1 to 128
// characters of letters, digits and "-_.:". Anything else is replaced, so
// no log line carries client-controlled garbage.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 || containsPAN(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// statusWriter records what was written, for the log and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (sw *statusWriter) WriteHeader(code int) {
	if !sw.wrote {
		sw.status, sw.wrote = code, true
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(b []byte) (int, error) {
	if !sw.wrote {
		sw.status, sw.wrote = http.StatusOK, true
	}
	n, err := sw.ResponseWriter.Write(b)
	sw.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// observe is the outermost layer: request and correlation IDs, the panic
// backstop, metrics and the one log line per request.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{requestID: r.Header.Get(HeaderRequestID), correlationID: r.Header.Get(HeaderCorrelationID)}
		if !validID(info.requestID) {
			t, err := s.token()
			if err != nil {
				t = strconv.FormatInt(start.UnixNano(), 36)
			}
			info.requestID = t
		}
		if !validID(info.correlationID) {
			info.correlationID = info.requestID
		}
		w.Header().Set(HeaderRequestID, info.requestID)
		w.Header().Set(HeaderCorrelationID, info.correlationID)
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		sw := &statusWriter{ResponseWriter: w}
		s.metrics.inFlight.Inc()

		defer func() {
			s.metrics.inFlight.Dec()
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				// A panic outside a handler (handlers' own are caught in
				// run): answer if nothing was sent yet.
				info.err = Internal(fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
				if !sw.wrote {
					s.writeProblem(sw, r, info.err)
				}
			}
			if !sw.wrote {
				sw.status = http.StatusOK
			}
			elapsed := time.Since(start)
			route := info.route
			if route == "" {
				route = "unmatched"
			}
			s.metrics.duration.WithLabelValues(r.Method, route, statusClass(sw.status)).Observe(elapsed.Seconds())
			s.logRequest(r, info, sw, route, elapsed)
		}()
		next.ServeHTTP(sw, r)
	})
}

func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}

// logRequest writes the request's one log line: Info below 500, Error for
// 5xx (with the internal cause, which the client never sees). Bodies are
// never logged (they may hold card tokens and personal data).
func (s *Server) logRequest(r *http.Request, info *reqInfo, sw *statusWriter, route string, elapsed time.Duration) {
	level := slog.LevelInfo
	if info.err != nil && (info.err.Code == CodeInternal || info.lateErr) || info.idemErr != nil || sw.status >= 500 {
		level = slog.LevelError
	}
	gone := r.Context().Err() != nil
	if gone && level == slog.LevelError && info.err != nil && errors.Is(info.err, context.Canceled) {
		// The client went away; what failed is most likely its cancelled
		// context, not the server.
		level = slog.LevelWarn
	}
	if !s.cfg.Logger.Enabled(r.Context(), level) {
		return // nothing to build: a line per request costs more than some requests
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.String("path", redactPAN(r.URL.Path)),
		slog.Int("status", sw.status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.Int64("bytes", sw.bytes),
		slog.String("request_id", info.requestID),
		slog.String("correlation_id", info.correlationID),
	}
	if info.principal.Tenant != "" {
		attrs = append(attrs,
			slog.String("tenant", string(info.principal.Tenant)),
			slog.String("role", info.principal.Role.String()),
			slog.String("key_id", info.principal.KeyID))
	}
	if info.idem != "" {
		attrs = append(attrs, slog.String("idempotency", info.idem))
	}
	if info.err != nil {
		attrs = append(attrs, slog.String("code", string(info.err.Code)))
		if info.err.Code == CodeInternal || info.lateErr {
			attrs = append(attrs, slog.String("error", info.err.Error()))
		} else if info.err.Err != nil {
			attrs = append(attrs, slog.String("cause", info.err.Err.Error()))
		}
	}
	if info.idemErr != nil {
		attrs = append(attrs, slog.String("idempotency_error", info.idemErr.Error()))
	}
	if gone {
		attrs = append(attrs, slog.Bool("client_gone", true))
	}
	s.cfg.Logger.LogAttrs(r.Context(), level, "http request", attrs...)
}

// metrics are the Server's Prometheus collectors.
type metrics struct {
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	idem     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "livecore_http_request_duration_seconds",
			Help:    "HTTP request latency by method, route pattern and status class.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status_class"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "livecore_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		idem: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livecore_http_idempotency_total",
			Help: "Idempotency-Key outcomes of POST requests: started, replayed, in_flight (409), mismatch (422).",
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.duration, m.inFlight, m.idem} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("httpapi: register metrics: %w", err)
		}
	}
	return m, nil
}
