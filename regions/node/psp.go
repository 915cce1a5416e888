package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

// The payment provider of a multi-region deployment is outside every
// region (a PSP is a third party): the drill hosts the sandbox behind this
// small HTTP surface so every region's checkout driver talks to the same
// provider, with the same idempotency keys, and the drill can count
// charges per order in one ledger.

type pspAuthorize struct {
	IdempotencyKey string      `json:"idempotency_key"`
	PaymentID      string      `json:"payment_id"`
	Method         string      `json:"method"`
	Token          string      `json:"token"`
	Amount         money.Money `json:"amount"`
}

type pspResult struct {
	ProviderRef string      `json:"provider_ref"`
	Status      string      `json:"status"`
	Amount      money.Money `json:"amount"`
	Error       string      `json:"error,omitempty"`
	Code        string      `json:"code,omitempty"`
}

// PSPHandler serves a sandbox over HTTP: POST /authorize, GET /ledger.
func PSPHandler(sb *sandbox.Sandbox) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /authorize", func(w http.ResponseWriter, r *http.Request) {
		var req pspAuthorize
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, pspResult{Error: err.Error(), Code: "invalid"})
			return
		}
		m, err1 := payment.ParseMethod(req.Method)
		tok, err2 := payment.ParseToken(req.Token)
		if err := errors.Join(err1, err2); err != nil {
			writeJSON(w, http.StatusBadRequest, pspResult{Error: err.Error(), Code: "invalid"})
			return
		}
		res, err := sb.Authorize(r.Context(), payment.AuthorizeRequest{
			IdempotencyKey: req.IdempotencyKey, PaymentID: req.PaymentID, Method: m, Token: tok, Amount: req.Amount,
		})
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, pspResult{ProviderRef: res.ProviderRef, Status: res.Status.String(), Amount: res.Amount})
		case errors.Is(err, payment.ErrDeclined):
			writeJSON(w, http.StatusPaymentRequired, pspResult{Error: err.Error(), Code: "declined"})
		case errors.Is(err, payment.ErrIdempotencyKeyReused):
			writeJSON(w, http.StatusConflict, pspResult{Error: err.Error(), Code: "key_reused"})
		case errors.Is(err, payment.ErrUnknownOutcome):
			writeJSON(w, http.StatusGatewayTimeout, pspResult{Error: err.Error(), Code: "unknown_outcome"})
		default:
			writeJSON(w, http.StatusServiceUnavailable, pspResult{Error: err.Error(), Code: "unavailable"})
		}
	})
	mux.HandleFunc("GET /ledger", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, sb.Ledger())
	})
	return mux
}

// PSPClient is payment.Authorizer over PSPHandler.
type PSPClient struct {
	URL    string
	Client *http.Client
}

var _ payment.Authorizer = (*PSPClient)(nil)

// Authorize implements payment.Authorizer. A transport error after the
// request was sent is payment.ErrUnknownOutcome (retry with the same key).
func (c *PSPClient) Authorize(ctx context.Context, req payment.AuthorizeRequest) (payment.Result, error) {
	body, _ := json.Marshal(pspAuthorize{
		IdempotencyKey: req.IdempotencyKey, PaymentID: req.PaymentID, Method: req.Method.String(), Token: req.Token.String(), Amount: req.Amount,
	})
	hc := c.Client
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+"/authorize", bytes.NewReader(body))
	if err != nil {
		return payment.Result{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(hreq)
	if err != nil {
		return payment.Result{}, fmt.Errorf("%w: %v", payment.ErrUnknownOutcome, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out pspResult
	if err := json.Unmarshal(b, &out); err != nil {
		return payment.Result{}, fmt.Errorf("%w: psp answered %d: %s", payment.ErrUnknownOutcome, resp.StatusCode, b)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return payment.Result{ProviderRef: out.ProviderRef, Status: payment.ResultAuthorized, Amount: out.Amount}, nil
	case http.StatusPaymentRequired:
		return payment.Result{}, fmt.Errorf("%w: %s", payment.ErrDeclined, out.Error)
	case http.StatusConflict:
		return payment.Result{}, fmt.Errorf("%w: %s", payment.ErrIdempotencyKeyReused, out.Error)
	case http.StatusServiceUnavailable:
		return payment.Result{}, fmt.Errorf("%w: %s", payment.ErrProviderUnavailable, out.Error)
	default:
		return payment.Result{}, fmt.Errorf("%w: psp answered %d: %s", payment.ErrUnknownOutcome, resp.StatusCode, out.Error)
	}
}

// Ledger fetches the provider's ledger.
func (c *PSPClient) Ledger(ctx context.Context) ([]sandbox.Entry, error) {
	var out []sandbox.Entry
	err := getJSON(ctx, c.Client, strings.TrimRight(c.URL, "/")+"/ledger", &out)
	return out, err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func getJSON(ctx context.Context, hc *http.Client, url string, out any) error {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
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
