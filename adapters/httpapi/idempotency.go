package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Idempotency follows draft-ietf-httpapi-idempotency-key-header: every POST
// carries an Idempotency-Key; the first request with a key runs, and every
// later request with the same key (from the same tenant) gets that first
// response again, byte for byte, with "Idempotent-Replayed: true".
//
// A key's record moves through these states:
//
//	(none) --Begin--> in_flight --Complete (status < 400)--> completed --expiry/Purge--> (none)
//	                      |
//	                      +--Release (4xx/5xx, panic)--> (none)
//	                      +--lock expired (the process died)--> taken over by the next Begin
//
// Begin decides atomically (one INSERT ... ON CONFLICT DO NOTHING, or one
// conditional UPDATE for an expired record or a dead lock), so of any number
// of concurrent Begins for one key exactly one gets the lock; the others see
// the record and get ErrIdempotencyInFlight or, once it has completed, the
// replay. A different request fingerprint is ErrIdempotencyMismatch whatever
// the state.

// IdemKey identifies an idempotency record: the client's key within its
// tenant. The same key from two tenants is two records. The Server stores
// the key as storedKey(key), a digest, never as sent: keys are opaque to
// the server, and a client could put anything in one (even card data).
type IdemKey struct {
	Tenant TenantID
	Key    string
}

// StoredResponse is a completed response as replayed: the status, the
// headers that matter (see replayedHeaders) and the body, exactly.
type StoredResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// BeginRequest asks to start processing a request under a key.
type BeginRequest struct {
	Key IdemKey
	// Fingerprint identifies the request (fingerprint()); a later request
	// with the same key and another fingerprint is refused.
	Fingerprint string
	// Lock is a fresh random token; the winner of Begin passes it back to
	// Complete or Release, so a stale owner cannot touch a record that was
	// taken over.
	Lock string
	// Now is the current time; records with ExpiresAt <= Now are treated as
	// absent, and in-flight records with LockedUntil <= Now as abandoned.
	Now time.Time
	// LockedUntil is when this request's lock is presumed dead (the process
	// crashed); another request with the same key and fingerprint may take
	// over after it.
	LockedUntil time.Time
	// ExpiresAt is when the record may be forgotten.
	ExpiresAt time.Time
}

// Begun is the outcome of a Begin that returned no error: either the caller
// holds the lock (Replay nil) and must Complete or Release, or the key is
// completed and Replay is the response to send.
type Begun struct {
	Replay *StoredResponse
}

// Idempotency store errors.
var (
	// ErrIdempotencyInFlight: the key is being processed by another request.
	ErrIdempotencyInFlight = errors.New("idempotency key in flight")
	// ErrIdempotencyMismatch: the key was used for a request with another
	// fingerprint.
	ErrIdempotencyMismatch = errors.New("idempotency key used for another request")
	// ErrIdempotencyLockLost: Complete or Release with a lock that no longer
	// holds the record (it expired and was taken over, or was released).
	ErrIdempotencyLockLost = errors.New("idempotency lock lost")
)

// IdempotencyStore keeps idempotency records. Implementations must be safe
// for concurrent use by many processes sharing the store (the SQL one) or by
// goroutines (the memory one), and must decide Begin atomically.
type IdempotencyStore interface {
	// Begin takes the lock on a key, or reports its state: Begun with a
	// Replay for a completed key, ErrIdempotencyMismatch for another
	// fingerprint, ErrIdempotencyInFlight for a live lock.
	Begin(ctx context.Context, req BeginRequest) (Begun, error)
	// Complete stores resp for the key locked with lock and keeps it until
	// expiresAt; ErrIdempotencyLockLost if lock no longer holds it.
	Complete(ctx context.Context, key IdemKey, lock string, resp StoredResponse, expiresAt time.Time) error
	// Release forgets the key locked with lock, so the client can retry;
	// ErrIdempotencyLockLost if lock no longer holds it.
	Release(ctx context.Context, key IdemKey, lock string) error
	// Purge deletes every record with ExpiresAt <= before and returns how
	// many it deleted.
	Purge(ctx context.Context, before time.Time) (int64, error)
}

// replayedHeaders are the response headers stored and replayed with a
// completed key. Others (Date, X-Request-ID, Content-Length) are per
// response.
var replayedHeaders = []string{"Content-Type", "Location", HeaderPosition, "Cache-Control"}

// Idempotency is the idempotency context of a POST, for the handler.
type Idempotency struct {
	Key         IdemKey
	Fingerprint string
	// CommandID is the ID of the command the request carries: a digest of
	// tenant, key and fingerprint. Use it as the command ID from which event
	// IDs are derived (event.DeriveID): a retry of the same request yields
	// the same events (the event store stores them once), and a different
	// request reusing a released key yields different ones.
	CommandID string
}

type idemCtxKey struct{}

// IdempotencyFrom returns the idempotency context of a POST request.
func IdempotencyFrom(ctx context.Context) (Idempotency, bool) {
	v, ok := ctx.Value(idemCtxKey{}).(Idempotency)
	return v, ok
}

// fingerprint is the SHA-256 (hex) of method, path and the canonical form of
// the body: JSON re-encoded with sorted members and no insignificant
// whitespace, so that formatting does not make two equal requests differ. A
// body that is not JSON is hashed as is.
func fingerprint(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(canonicalJSON(body))
	return hex.EncodeToString(h.Sum(nil))
}

func canonicalJSON(body []byte) []byte {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if out, ok := canonicalFast(body); ok {
		return out
	}
	return canonicalDecoded(body)
}

// canonicalDecoded is canonicalJSON by decoding and re-encoding.
func canonicalDecoded(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers keep their literal text: 1.10 stays 1.10
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	if dec.More() {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// commandID derives the command ID of an idempotent request.
func commandID(k IdemKey, fp string) string {
	h := sha256.New()
	h.Write([]byte("livecore.http-command.v1\x00"))
	h.Write([]byte(k.Tenant))
	h.Write([]byte{0})
	h.Write([]byte(k.Key))
	h.Write([]byte{0})
	h.Write([]byte(fp))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// maxIdempotencyKeyLen bounds a key; UUIDs and ULIDs fit easily.
const maxIdempotencyKeyLen = 255

// parseIdempotencyKey reads the header. The draft defines the value as a
// Structured Field String ("..."); clients commonly send it bare, so both
// are accepted and mean the same key. Allowed: 1 to 255 visible ASCII
// characters.
func parseIdempotencyKey(h http.Header) (string, error) {
	vs := h.Values(HeaderIdempotencyKey)
	if len(vs) == 0 {
		return "", &Error{Code: CodeIdempotencyKeyMissing, Message: "POST requests need an Idempotency-Key header (a unique value per operation, e.g. a UUID); retries of the operation send the same value",
			Fields: []FieldError{{Field: HeaderIdempotencyKey, Code: "required", Message: "is required"}}}
	}
	bad := func(msg string) error {
		return &Error{Code: CodeMalformed, Message: "the Idempotency-Key header is not valid: " + msg,
			Fields: []FieldError{{Field: HeaderIdempotencyKey, Code: "invalid_header", Message: msg}}}
	}
	if len(vs) > 1 {
		return "", bad("it must be sent once")
	}
	v := vs[0]
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" {
		return "", bad("it is empty")
	}
	if len(v) > maxIdempotencyKeyLen {
		return "", bad("it is longer than 255 characters")
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e || v[i] == '"' || v[i] == '\\' {
			return "", bad("only visible ASCII characters other than '\"' and '\\' are allowed")
		}
	}
	return v, nil
}

// storedKey is the form an Idempotency-Key is stored and logged in.
func storedKey(key string) string {
	sum := sha256.Sum256([]byte("livecore.idempotency-key.v1\x00" + key))
	return hex.EncodeToString(sum[:])
}

// RequestIdempotency returns the IdemKey and fingerprint under which the
// Server records a request (tenant, Idempotency-Key as sent, method, path,
// body): for tests and tools that inspect or seed an IdempotencyStore.
func RequestIdempotency(tenant TenantID, key, method, path string, body []byte) (IdemKey, string) {
	return IdemKey{Tenant: tenant, Key: storedKey(key)}, fingerprint(method, path, body)
}
