package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/adapters/psp/sandboxhttp"
)

// The payment provider of a multi-region deployment is outside every
// region (a PSP is a third party): the drill hosts the sandbox behind
// PSPHandler so every region's sagas call the same provider, with the same
// idempotency keys, and the drill can count charges per order in one
// ledger.

// PSPHandler serves a sandbox over HTTP: the payment-provider port
// (sandboxhttp: POST /v1/authorize, /v1/capture, /v1/void, /v1/refund) and
// GET /ledger.
func PSPHandler(sb *sandbox.Sandbox) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", sandboxhttp.Handler(sb))
	mux.HandleFunc("GET /ledger", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, sb.Ledger())
	})
	return mux
}

// PSPClient reads PSPHandler's ledger (the sagas call the provider with
// sandboxhttp.Client).
type PSPClient struct {
	URL    string
	Client *http.Client
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
