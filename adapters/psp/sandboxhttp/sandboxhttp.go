// Package sandboxhttp carries the payment-provider port over HTTP, so a
// provider (the sandbox) can live in one process and be called from
// another: the saga fault tests run the sandbox in the test process and
// SIGKILL a worker process that calls it, and the sandbox's ledger outlives
// the worker.
//
// Handler serves any payment.Provider; Client implements payment.Provider
// against it. Port errors survive the trip (a decline with its reason and
// reference, limit errors with their amounts, every sentinel of the port).
// A transport failure before the request was sent is
// payment.ErrProviderUnavailable; after it, payment.ErrUnknownOutcome
// (retry with the same idempotency key).
//
// Routes: POST /v1/authorize, /v1/capture, /v1/void, /v1/refund. Bodies
// and answers are JSON; a refused call answers 422 (business), 503
// (unavailable, unknown outcome) or 400 (malformed) with {"error": {...}}.
package sandboxhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

type request struct {
	IdempotencyKey string         `json:"idempotency_key"`
	PaymentID      string         `json:"payment_id,omitempty"`
	Method         payment.Method `json:"method,omitzero"`
	Token          payment.Token  `json:"token,omitzero"`
	ProviderRef    string         `json:"provider_ref,omitempty"`
	Amount         money.Money    `json:"amount,omitzero"`
}

type result struct {
	ProviderRef string      `json:"provider_ref"`
	Status      string      `json:"status"`
	Amount      money.Money `json:"amount,omitzero"`
	ExpiresAt   time.Time   `json:"expires_at,omitzero"`
}

type wireError struct {
	Code        string      `json:"code"`
	Message     string      `json:"message"`
	Reason      string      `json:"reason,omitempty"`
	ProviderRef string      `json:"provider_ref,omitempty"`
	Requested   money.Money `json:"requested,omitzero"`
	Available   money.Money `json:"available,omitzero"`
}

type answer struct {
	Result *result    `json:"result,omitempty"`
	Error  *wireError `json:"error,omitempty"`
}

// sentinels maps error codes to the port's sentinel errors.
var sentinels = []struct {
	code string
	err  error
}{
	{"unknown_outcome", payment.ErrUnknownOutcome},
	{"unavailable", payment.ErrProviderUnavailable},
	{"key_reused", payment.ErrIdempotencyKeyReused},
	{"unknown_ref", payment.ErrUnknownProviderRef},
	{"invalid_token", payment.ErrInvalidToken},
	{"nothing_to_void", payment.ErrNothingToVoid},
	{"voided", payment.ErrAuthorizationVoided},
	{"expired", payment.ErrAuthorizationExpired},
	{"currency_mismatch", money.ErrCurrencyMismatch},
	{"invalid_command", payment.ErrInvalidCommand},
}

var limits = []struct {
	code string
	err  error
}{
	{"capture_exceeds", payment.ErrCaptureExceedsAuthorized},
	{"refund_exceeds", payment.ErrRefundExceedsCaptured},
}

func encodeErr(err error) (int, *wireError) {
	w := &wireError{Code: "internal", Message: err.Error()}
	var de *payment.DeclinedError
	var le *payment.LimitError
	switch {
	case errors.As(err, &de):
		w.Code, w.Reason, w.ProviderRef = "declined", de.Reason.String(), de.ProviderRef
		return http.StatusUnprocessableEntity, w
	case errors.As(err, &le):
		for _, l := range limits {
			if errors.Is(le.Err, l.err) {
				w.Code, w.Requested, w.Available = l.code, le.Requested, le.Available
				return http.StatusUnprocessableEntity, w
			}
		}
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			w.Code = s.code
			switch s.err {
			case payment.ErrUnknownOutcome, payment.ErrProviderUnavailable:
				return http.StatusServiceUnavailable, w
			case payment.ErrInvalidCommand, money.ErrCurrencyMismatch, payment.ErrInvalidToken:
				return http.StatusBadRequest, w
			}
			return http.StatusUnprocessableEntity, w
		}
	}
	return http.StatusInternalServerError, w
}

func decodeErr(w *wireError) error {
	switch w.Code {
	case "declined":
		r, err := payment.ParseDeclineReason(w.Reason)
		if err != nil {
			r = payment.DeclineDoNotHonor
		}
		return &payment.DeclinedError{Reason: r, ProviderRef: w.ProviderRef}
	}
	for _, l := range limits {
		if l.code == w.Code {
			return &payment.LimitError{Err: l.err, Requested: w.Requested, Available: w.Available}
		}
	}
	for _, s := range sentinels {
		if s.code == w.Code {
			return fmt.Errorf("sandboxhttp: %w: %s", s.err, w.Message)
		}
	}
	// The provider failed in an unexpected way: it may have acted.
	return fmt.Errorf("sandboxhttp: %w: %s", payment.ErrUnknownOutcome, w.Message)
}

var statuses = map[string]payment.ResultStatus{}

func init() {
	for _, s := range []payment.ResultStatus{payment.ResultAuthorized, payment.ResultCaptured, payment.ResultVoided, payment.ResultRefunded} {
		statuses[s.String()] = s
	}
}

// Handler serves p over HTTP.
func Handler(p payment.Provider) http.Handler {
	mux := http.NewServeMux()
	route := func(op string, call func(ctx context.Context, r request) (payment.Result, error)) {
		mux.HandleFunc("POST /v1/"+op, func(w http.ResponseWriter, hr *http.Request) {
			var r request
			var a answer
			code := http.StatusOK
			if err := json.NewDecoder(hr.Body).Decode(&r); err != nil {
				code, a.Error = encodeErr(fmt.Errorf("%w: %v", payment.ErrInvalidCommand, err))
			} else if res, err := call(hr.Context(), r); err != nil {
				code, a.Error = encodeErr(err)
			} else {
				a.Result = &result{ProviderRef: res.ProviderRef, Status: res.Status.String(), Amount: res.Amount, ExpiresAt: res.ExpiresAt}
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(a)
		})
	}
	route("authorize", func(ctx context.Context, r request) (payment.Result, error) {
		return p.Authorize(ctx, payment.AuthorizeRequest{IdempotencyKey: r.IdempotencyKey, PaymentID: r.PaymentID, Method: r.Method, Token: r.Token, Amount: r.Amount})
	})
	route("capture", func(ctx context.Context, r request) (payment.Result, error) {
		return p.Capture(ctx, payment.CaptureRequest{IdempotencyKey: r.IdempotencyKey, ProviderRef: r.ProviderRef, Amount: r.Amount})
	})
	route("void", func(ctx context.Context, r request) (payment.Result, error) {
		return p.Void(ctx, payment.VoidRequest{IdempotencyKey: r.IdempotencyKey, ProviderRef: r.ProviderRef})
	})
	route("refund", func(ctx context.Context, r request) (payment.Result, error) {
		return p.Refund(ctx, payment.RefundRequest{IdempotencyKey: r.IdempotencyKey, ProviderRef: r.ProviderRef, Amount: r.Amount})
	})
	return mux
}

// Client is a payment.Provider that calls a Handler. It is safe for
// concurrent use.
type Client struct {
	base string
	hc   *http.Client
}

var _ payment.Provider = (*Client)(nil)

// NewClient returns a client of the handler at baseURL
// ("http://127.0.0.1:8081"). hc defaults to a client with a 30s timeout.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc}
}

// Authorize implements payment.Authorizer.
func (c *Client) Authorize(ctx context.Context, req payment.AuthorizeRequest) (payment.Result, error) {
	return c.call(ctx, "authorize", request{IdempotencyKey: req.IdempotencyKey, PaymentID: req.PaymentID, Method: req.Method, Token: req.Token, Amount: req.Amount})
}

// Capture implements payment.Capturer.
func (c *Client) Capture(ctx context.Context, req payment.CaptureRequest) (payment.Result, error) {
	return c.call(ctx, "capture", request{IdempotencyKey: req.IdempotencyKey, ProviderRef: req.ProviderRef, Amount: req.Amount})
}

// Void implements payment.Voider.
func (c *Client) Void(ctx context.Context, req payment.VoidRequest) (payment.Result, error) {
	return c.call(ctx, "void", request{IdempotencyKey: req.IdempotencyKey, ProviderRef: req.ProviderRef})
}

// Refund implements payment.Refunder.
func (c *Client) Refund(ctx context.Context, req payment.RefundRequest) (payment.Result, error) {
	return c.call(ctx, "refund", request{IdempotencyKey: req.IdempotencyKey, ProviderRef: req.ProviderRef, Amount: req.Amount})
}

func (c *Client) call(ctx context.Context, op string, r request) (payment.Result, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return payment.Result{}, fmt.Errorf("sandboxhttp %s: %w: %v", op, payment.ErrInvalidCommand, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/"+op, bytes.NewReader(body))
	if err != nil {
		return payment.Result{}, fmt.Errorf("sandboxhttp %s: %w", op, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(hr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return payment.Result{}, fmt.Errorf("sandboxhttp: %w: %v", payment.ErrProviderUnavailable, err)
		}
		return payment.Result{}, fmt.Errorf("sandboxhttp: %w: %v", payment.ErrUnknownOutcome, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return payment.Result{}, fmt.Errorf("sandboxhttp: %w: %v", payment.ErrUnknownOutcome, err)
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		return payment.Result{}, fmt.Errorf("sandboxhttp: %w: status %d: %v", payment.ErrUnknownOutcome, resp.StatusCode, err)
	}
	if a.Error != nil {
		return payment.Result{}, decodeErr(a.Error)
	}
	if a.Result == nil {
		return payment.Result{}, fmt.Errorf("sandboxhttp: %w: status %d without a result", payment.ErrUnknownOutcome, resp.StatusCode)
	}
	st, ok := statuses[a.Result.Status]
	if !ok {
		return payment.Result{}, fmt.Errorf("sandboxhttp: %w: unknown result status %q", payment.ErrUnknownOutcome, a.Result.Status)
	}
	return payment.Result{ProviderRef: a.Result.ProviderRef, Status: st, Amount: a.Result.Amount, ExpiresAt: a.Result.ExpiresAt}, nil
}
