// Package httpapitest checks real HTTP exchanges against livecore's OpenAPI
// document (adapters/httpapi/openapi.yaml). End-to-end tests call
// ValidateExchange on every request they make, so the spec and the server
// cannot drift apart unnoticed.
package httpapitest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/livecore/livecore/adapters/httpapi"
)

var validator = sync.OnceValues(httpapi.NewSpecValidator)

// Validator returns the shared spec validator (loaded once per process).
func Validator() (*httpapi.SpecValidator, error) { return validator() }

// ValidateExchange fails t (Errorf) unless req conforms to its operation in
// the spec and resp to that operation's documented response for its status.
//
// req is the client request as sent: its body is read again through
// req.GetBody, which http.NewRequest sets for bytes, strings and
// bytes.Buffer bodies. resp's body is read and replaced by an equal reader,
// so the caller can still read it.
func ValidateExchange(t testing.TB, req *http.Request, resp *http.Response) {
	t.Helper()
	if err := CheckExchange(req, resp); err != nil {
		t.Errorf("%s %s -> %d: %v", req.Method, req.URL.Path, resp.StatusCode, err)
	}
}

// ValidateResponse is ValidateExchange for tests that send a request the
// spec forbids on purpose (a missing Idempotency-Key, an unknown field):
// only the response is checked.
func ValidateResponse(t testing.TB, req *http.Request, resp *http.Response) {
	t.Helper()
	if err := CheckResponse(req, resp); err != nil {
		t.Errorf("%s %s -> %d: %v", req.Method, req.URL.Path, resp.StatusCode, err)
	}
}

// CheckExchange is ValidateExchange returning the violations as an error.
func CheckExchange(req *http.Request, resp *http.Response) error {
	return check(req, resp, true)
}

// CheckResponse is ValidateResponse returning the violations as an error.
func CheckResponse(req *http.Request, resp *http.Response) error {
	return check(req, resp, false)
}

func check(req *http.Request, resp *http.Response, withRequest bool) error {
	v, err := validator()
	if err != nil {
		return fmt.Errorf("load spec: %w", err)
	}
	reqBody, err := requestBody(req)
	if err != nil {
		return err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err != nil {
		return fmt.Errorf("read response body: %w", err)
	}
	var errs []error
	if withRequest {
		if err := v.ValidateRequest(req.Context(), req, reqBody); err != nil {
			errs = append(errs, fmt.Errorf("request: %w", err))
		}
	}
	if err := v.ValidateResponse(req.Context(), req, reqBody, resp.StatusCode, resp.Header, respBody); err != nil {
		errs = append(errs, fmt.Errorf("response: %w", err))
	}
	return errors.Join(errs...)
}

func requestBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if req.GetBody == nil {
		return nil, errors.New("the request body cannot be read again: build the request with http.NewRequest and a bytes.Reader, strings.Reader or bytes.Buffer")
	}
	rc, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("request body: %w", err)
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Do sends req with c and validates the exchange (ValidateExchange). It
// fails the test if the request cannot be sent.
func Do(t testing.TB, c *http.Client, req *http.Request) *http.Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	ValidateExchange(t, req, resp)
	return resp
}
