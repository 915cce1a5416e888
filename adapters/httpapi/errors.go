package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/livecore/livecore/domain/money"
)

// Code is the stable, machine-readable class of an API error. Clients branch
// on it (it is the problem's "code" member and the last segment of its "type"
// URI); the set is closed: the values below are the only ones, and each maps
// to exactly one HTTP status in status.
type Code string

// The error codes. Their names are part of the API contract (openapi.yaml
// lists them): never rename one.
const (
	// CodeMalformed: the request cannot be read: bad JSON, an unknown or
	// duplicated field, a value of the wrong JSON type, a bad header. 400.
	CodeMalformed Code = "malformed"
	// CodeInvalid: the request is well-formed but its values break a rule
	// (a bad amount, an empty cart, a refund above the captured amount). 422.
	CodeInvalid Code = "invalid"
	// CodeUnauthorized: no API key, or one that is unknown or revoked. 401.
	CodeUnauthorized Code = "unauthorized"
	// CodeForbidden: the key is valid but its role may not do this. 403.
	CodeForbidden Code = "forbidden"
	// CodeNotFound: no such resource (for this tenant) or route. 404.
	CodeNotFound Code = "not_found"
	// CodeMethodNotAllowed: the route exists but not with this method. 405.
	CodeMethodNotAllowed Code = "method_not_allowed"
	// CodeConflict: the request clashes with the resource's current state
	// (the order is already cancelled, stock ran out). 409.
	CodeConflict Code = "conflict"
	// CodeIdempotencyKeyMissing: a POST without an Idempotency-Key. 400.
	CodeIdempotencyKeyMissing Code = "idempotency_key_missing"
	// CodeIdempotencyKeyInUse: a request with this key is still being
	// processed; retry later. 409.
	CodeIdempotencyKeyInUse Code = "idempotency_key_in_use"
	// CodeIdempotencyKeyReused: the key was used for a different request
	// (method, path or body). 422.
	CodeIdempotencyKeyReused Code = "idempotency_key_reused"
	// CodeTooLarge: the body is over the configured limit. 413.
	CodeTooLarge Code = "too_large"
	// CodeUnsupportedMediaType: the body is not application/json. 415.
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	// CodeMisdirected: in a multi-region deployment, another region owns
	// the resource's home; nothing was written here. Retry the request
	// (same Idempotency-Key) at Location. 421.
	CodeMisdirected Code = "misdirected"
	// CodeUnavailable: a dependency is down or a read did not catch up in
	// time; retry later. 503.
	CodeUnavailable Code = "unavailable"
	// CodeInternal: a bug or an unexpected failure; details are logged
	// under the request ID, never sent. 500.
	CodeInternal Code = "internal"
)

// codeInfo is the one place codes meet HTTP: status and title.
var codeInfo = map[Code]struct {
	status int
	title  string
}{
	CodeMalformed:             {http.StatusBadRequest, "Malformed request"},
	CodeInvalid:               {http.StatusUnprocessableEntity, "Invalid request"},
	CodeUnauthorized:          {http.StatusUnauthorized, "Unauthorized"},
	CodeForbidden:             {http.StatusForbidden, "Forbidden"},
	CodeNotFound:              {http.StatusNotFound, "Not found"},
	CodeMethodNotAllowed:      {http.StatusMethodNotAllowed, "Method not allowed"},
	CodeConflict:              {http.StatusConflict, "Conflict"},
	CodeIdempotencyKeyMissing: {http.StatusBadRequest, "Idempotency-Key missing"},
	CodeIdempotencyKeyInUse:   {http.StatusConflict, "Idempotency-Key in use"},
	CodeIdempotencyKeyReused:  {http.StatusUnprocessableEntity, "Idempotency-Key reused"},
	CodeTooLarge:              {http.StatusRequestEntityTooLarge, "Request body too large"},
	CodeUnsupportedMediaType:  {http.StatusUnsupportedMediaType, "Unsupported media type"},
	CodeMisdirected:           {http.StatusMisdirectedRequest, "Misdirected request"},
	CodeUnavailable:           {http.StatusServiceUnavailable, "Service unavailable"},
	CodeInternal:              {http.StatusInternalServerError, "Internal error"},
}

// Codes lists every Code (for the spec test and documentation).
func Codes() []Code {
	out := make([]Code, 0, len(codeInfo))
	for c := range codeInfo {
		out = append(out, c)
	}
	return out
}

// Status is the HTTP status of c; 500 for a code outside the set (a bug).
func (c Code) Status() int {
	if i, ok := codeInfo[c]; ok {
		return i.status
	}
	return http.StatusInternalServerError
}

// Title is the short, fixed, human summary of c (the problem's "title").
func (c Code) Title() string {
	if i, ok := codeInfo[c]; ok {
		return i.title
	}
	return codeInfo[CodeInternal].title
}

// FieldError says what is wrong with one input field. Field is a path into
// the request in the JSON names the client sent: "items[0].unit_price.amount";
// headers are named as such ("Idempotency-Key"). Code is a stable,
// lower_snake reason ("required", "unknown_field", "too_many_decimals");
// Message is for humans.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is the one error type handlers return to produce a non-2xx response.
// Message is shown to the client as the problem's "detail" (except for
// CodeInternal, whose message is replaced by a generic one); Err is the
// cause, logged with the request ID and never sent.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
	Err     error
	// Location, if set, is sent as the Location header (CodeMisdirected:
	// where to retry).
	Location string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: %s", f.Field, f.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted message (no %w: use Wrap for a
// cause).
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with code and message around cause.
func Wrap(code Code, cause error, message string) *Error {
	return &Error{Code: code, Message: message, Err: cause}
}

// Internal wraps an unexpected failure; the client sees only a generic
// message and the request ID.
func Internal(cause error) *Error { return &Error{Code: CodeInternal, Err: cause} }

// ErrorOf classifies any error into an *Error. This function is the one place
// where errors from below the API (ports, domain rules, the standard library)
// get their code: an *Error anywhere in the chain wins; known sentinels map
// to their code; everything else is CodeInternal, cause kept for the log.
// As domain packages land, their rule errors are added here, not in handlers.
func ErrorOf(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		if _, ok := codeInfo[e.Code]; !ok {
			return &Error{Code: CodeInternal, Err: err}
		}
		return e
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &Error{Code: CodeTooLarge, Message: fmt.Sprintf("the request body is over the limit of %d bytes", mbe.Limit), Err: err}
	case errors.Is(err, money.ErrUnknownCurrency),
		errors.Is(err, money.ErrInvalidAmount),
		errors.Is(err, money.ErrTooManyDecimals),
		errors.Is(err, money.ErrOutOfRange),
		errors.Is(err, money.ErrCurrencyMismatch),
		errors.Is(err, money.ErrInvalidAllocation):
		return &Error{Code: CodeInvalid, Message: err.Error(), Err: err}
	case errors.Is(err, ErrIdempotencyInFlight):
		return &Error{Code: CodeIdempotencyKeyInUse, Message: "a request with this Idempotency-Key is still being processed; retry later", Err: err}
	case errors.Is(err, ErrIdempotencyMismatch):
		return &Error{Code: CodeIdempotencyKeyReused, Message: "this Idempotency-Key was used with a different request (method, path or body)", Err: err}
	case errors.Is(err, ErrUnauthenticated):
		return &Error{Code: CodeUnauthorized, Message: "a valid API key is required: Authorization: Bearer <key>", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeUnavailable, Message: "the request timed out; retry later", Err: err}
	}
	if e := domainError(err); e != nil {
		return e
	}
	return &Error{Code: CodeInternal, Err: err}
}
