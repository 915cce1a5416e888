package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"reflect"
)

// Test hooks for the external test package (httpapi_test), which registers
// stand-in endpoints the way real endpoint code does.

func (s *Server) HandleForTest(pattern string, h HandlerFunc, roles ...Role) {
	s.handle(pattern, h, roles...)
}

func (s *Server) DecodeForTest(r *http.Request, dst any) error { return s.decode(r, dst) }

func (s *Server) AwaitMinPositionForTest(w http.ResponseWriter, r *http.Request, wait func(context.Context, uint64) error) error {
	return s.awaitMinPosition(w, r, wait)
}

func WriteJSONForTest(w http.ResponseWriter, status int, v any) error { return writeJSON(w, status, v) }

func FingerprintForTest(method, path string, body []byte) string {
	return fingerprint(method, path, body)
}

// DecodeJSONWalkedForTest is DecodeJSON without its fast path.
func DecodeJSONWalkedForTest(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &Error{Code: CodeMalformed, Message: "a JSON request body is required"}
	}
	return decodeWalked(body, reflect.ValueOf(dst))
}

// ShapeOKForTest reports whether DecodeJSON's fast path accepts body for
// dst's type.
func ShapeOKForTest(body []byte, dst any) bool { return shapeOK(body, reflect.TypeOf(dst).Elem()) }

// CanonicalJSONForTest is the canonical form of body the fingerprint
// hashes; CanonicalDecodedForTest is the same without the fast path, and
// fast reports whether the fast path took body.
func CanonicalJSONForTest(body []byte) (canon, decoded []byte, fast bool) {
	_, fast = canonicalFast(body)
	return canonicalJSON(body), canonicalDecoded(body), fast
}
