package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// handleHealthz is liveness: the process serves HTTP. It checks nothing
// else, so a slow dependency never gets the process restarted.
func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type checkResult struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, fail
}

type readiness struct {
	Status string        `json:"status"` // ok, unavailable, draining
	Checks []checkResult `json:"checks"`
}

// handleReadyz is readiness: every ReadyCheck passes within ReadyTimeout
// and the server is not shutting down; else 503. Check errors are logged,
// not sent (they may name hosts or credentials).
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	res := readiness{Status: "ok", Checks: make([]checkResult, len(s.cfg.ReadyChecks))}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(s.cfg.ReadyChecks))
	for i, c := range s.cfg.ReadyChecks {
		wg.Go(func() {
			errs[i] = runCheck(ctx, c)
		})
	}
	wg.Wait()
	for i, c := range s.cfg.ReadyChecks {
		res.Checks[i] = checkResult{Name: c.Name, Status: "ok"}
		if errs[i] != nil {
			res.Checks[i].Status = "fail"
			res.Status = "unavailable"
			s.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "readiness check failed",
				slog.String("check", c.Name), slog.String("error", errs[i].Error()),
				slog.String("request_id", RequestID(r.Context())))
		}
	}
	if s.draining.Load() {
		res.Status = "draining"
	}
	status := http.StatusOK
	if res.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, status, res)
}

// runCheck runs c, turning a panic or an overrun into an error.
func runCheck(ctx context.Context, c ReadyCheck) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	done := make(chan error, 1)
	go func() { done <- c.Check(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("check %s: %w", c.Name, ctx.Err())
	}
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metricsHandler.ServeHTTP(w, r)
	return nil
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, _ *http.Request) error {
	b, err := OpenAPIJSON()
	if err != nil {
		return Internal(err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

// ServeOptions tunes Serve. Zero fields get the defaults shown.
type ServeOptions struct {
	// Grace bounds how long shutdown waits for in-flight requests (default
	// 25s, inside a typical 30s termination grace period).
	Grace time.Duration
	// DrainDelay keeps serving, with /readyz answering 503, for this long
	// after ctx ends, so load balancers stop sending before the listener
	// closes (default 0).
	DrainDelay time.Duration
	// ReadHeaderTimeout (default 10s), ReadTimeout (default 30s),
	// WriteTimeout (default 60s), IdleTimeout (default 120s) are set on the
	// http.Server. Keep WriteTimeout below Config.IdempotencyLockTimeout.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

func (o *ServeOptions) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.Grace, 25*time.Second)
	def(&o.ReadHeaderTimeout, 10*time.Second)
	def(&o.ReadTimeout, 30*time.Second)
	def(&o.WriteTimeout, 60*time.Second)
	def(&o.IdleTimeout, 120*time.Second)
}

// Serve serves on ln until ctx is done, then shuts down gracefully: /readyz
// turns 503 ("draining"), after DrainDelay the listener closes, and requests
// in flight run to completion (their contexts are not cancelled by ctx) for
// up to Grace; past that the remaining connections are closed and an error
// is returned. It returns nil after a clean shutdown, or the serve error.
func (s *Server) Serve(ctx context.Context, ln net.Listener, opts ServeOptions) error {
	opts.setDefaults()
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
		// Requests outlive ctx: shutdown waits for them instead.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	if opts.DrainDelay > 0 {
		t := time.NewTimer(opts.DrainDelay)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return fmt.Errorf("serve: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.Grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serr)
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: in-flight requests still running after %s: %w", opts.Grace, err)
	}
	return nil
}

// PurgeIdempotencyKeys deletes idempotency records whose time is up. Run it
// periodically (RunPurger); correctness does not depend on it (Begin treats
// an expired record as absent), only table size does.
func (s *Server) PurgeIdempotencyKeys(ctx context.Context) (int64, error) {
	return s.cfg.Idempotency.Purge(ctx, s.cfg.Now())
}

// RunPurger calls PurgeIdempotencyKeys every interval until ctx is done,
// logging failures.
func (s *Server) RunPurger(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.PurgeIdempotencyKeys(ctx)
		if err != nil {
			s.cfg.Logger.Warn("purge idempotency keys", "error", err)
			continue
		}
		if n > 0 {
			s.cfg.Logger.Info("purged idempotency keys", "count", n)
		}
	}
}

// MinPosition reads X-Livecore-Min-Position: the $all position a read must
// reflect (the client's own last write). 0 when absent; CodeMalformed when
// it is not a non-negative integer.
func MinPosition(r *http.Request) (uint64, error) {
	v := r.Header.Get(HeaderMinPosition)
	if v == "" {
		return 0, nil
	}
	p, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, &Error{Code: CodeMalformed, Message: HeaderMinPosition + " must be a non-negative integer",
			Fields: []FieldError{{Field: HeaderMinPosition, Code: "invalid_header", Message: "must be a non-negative integer"}}}
	}
	return p, nil
}

// SetPosition sets X-Livecore-Position: the $all position a response
// reflects (after a write: the write's last position; on a read: what the
// read model had applied).
func SetPosition(w http.ResponseWriter, pos uint64) {
	w.Header().Set(HeaderPosition, strconv.FormatUint(pos, 10))
}

// awaitMinPosition blocks until wait reports the request's
// X-Livecore-Min-Position applied, for at most MinPositionWait: then
// CodeUnavailable (503, Retry-After 1). Without the header it returns at once.
// wait is usually a projection runner's WaitFor for the read model the
// endpoint reads.
func (s *Server) awaitMinPosition(w http.ResponseWriter, r *http.Request, wait func(ctx context.Context, pos uint64) error) error {
	pos, err := MinPosition(r)
	if err != nil || pos == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.MinPositionWait)
	defer cancel()
	if err := wait(ctx, pos); err != nil {
		if ctx.Err() != nil {
			w.Header().Set("Retry-After", "1")
			return &Error{Code: CodeUnavailable, Message: fmt.Sprintf("the data did not reach position %d within %s; retry", pos, s.cfg.MinPositionWait), Err: err}
		}
		return Internal(err)
	}
	return nil
}
