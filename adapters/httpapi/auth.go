package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Role is what an API key may do. The set is closed: RoleCheckout,
// RoleFinance and RoleOps are the only values (the zero Role is none);
// strings become Roles only through ParseRole.
type Role struct{ name string }

// The roles.
var (
	// RoleCheckout: checkout integrations (orders, checkout, cancel,
	// refunds, returns, plans, drops).
	RoleCheckout = Role{"checkout"}
	// RoleFinance: finance teams (audit, event histories, read access).
	RoleFinance = Role{"finance"}
	// RoleOps: operators and warehouses (inventory, shipments).
	RoleOps = Role{"ops"}
)

// Roles lists every role.
func Roles() []Role { return []Role{RoleCheckout, RoleFinance, RoleOps} }

// ErrInvalidRole: ParseRole was given a name that is not a role.
var ErrInvalidRole = errors.New("invalid role")

// ParseRole returns the role named s ("checkout", "finance", "ops").
func ParseRole(s string) (Role, error) {
	for _, r := range Roles() {
		if r.name == s {
			return r, nil
		}
	}
	return Role{}, fmt.Errorf("%w: %q", ErrInvalidRole, s)
}

func (r Role) String() string { return r.name }

// IsZero reports whether r is the zero (no) role.
func (r Role) IsZero() bool { return r.name == "" }

// TenantID names a tenant: 1 to 64 characters of a-z, 0-9, '-' and '_',
// starting with a letter or digit.
type TenantID string

// ErrInvalidTenant: a tenant ID outside the allowed form.
var ErrInvalidTenant = errors.New("invalid tenant ID")

// ParseTenantID checks s's form.
func ParseTenantID(s string) (TenantID, error) {
	if len(s) == 0 || len(s) > 64 {
		return "", fmt.Errorf("%w: %q: 1 to 64 characters", ErrInvalidTenant, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_')
		if !ok {
			return "", fmt.Errorf("%w: %q: only a-z, 0-9, '-' and '_', starting with a letter or digit", ErrInvalidTenant, s)
		}
	}
	return TenantID(s), nil
}

// Principal is who made a request: the tenant, the key's role and the key's
// public ID (safe to log; never the secret).
type Principal struct {
	Tenant TenantID
	Role   Role
	KeyID  string
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the authenticated principal of a request's context.
// Every route but the operational ones (/healthz, /readyz, /metrics,
// /openapi.json) runs only with one, so handlers may rely on ok.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// StoredKey is an API key as a KeyStore keeps it: never the plaintext, only
// its SHA-256. The plaintext has 256 bits of entropy, so a plain (unsalted,
// fast) hash is enough: there is nothing to brute-force.
type StoredKey struct {
	ID        string // public, unique: the middle part of the plaintext
	Tenant    TenantID
	Role      Role
	Hash      [sha256.Size]byte
	CreatedAt time.Time
	RevokedAt time.Time // zero: active
}

// KeyStore errors.
var (
	// ErrKeyNotFound: no key with that ID.
	ErrKeyNotFound = errors.New("api key not found")
	// ErrKeyExists: InsertKey with an ID already stored.
	ErrKeyExists = errors.New("api key ID already exists")
	// ErrUnauthenticated: the presented key is missing, malformed, unknown,
	// revoked or wrong. Authenticate never says which (the log does).
	ErrUnauthenticated = errors.New("unauthenticated")
)

// KeyStore keeps API keys. Implementations are safe for concurrent use.
type KeyStore interface {
	// InsertKey stores k; ErrKeyExists if its ID is taken.
	InsertKey(ctx context.Context, k StoredKey) error
	// LookupKey returns the key with that ID; ErrKeyNotFound if none.
	LookupKey(ctx context.Context, id string) (StoredKey, error)
	// RevokeKey marks the key revoked at the given time (idempotent: a
	// revoked key keeps its first revocation time); ErrKeyNotFound if none.
	RevokeKey(ctx context.Context, id string, at time.Time) error
}

// Keys creates and checks API keys over a KeyStore.
//
// A key reads "lc_<id>_<secret>": id is 16 hex digits (public, for lookup,
// logs and revocation), secret is 52 base32 characters (256 random bits).
// The tenant is not in the key: it comes from the store, so a key never
// reveals whose it is and a tenant can be renamed without reissuing keys.
type Keys struct {
	Store KeyStore
	// Rand is the entropy source (default crypto/rand.Reader).
	Rand io.Reader
	// Now is the clock (default time.Now).
	Now func() time.Time
}

const keyPrefix = "lc_"

var secretEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func (k *Keys) rand() io.Reader {
	if k.Rand != nil {
		return k.Rand
	}
	return rand.Reader
}

func (k *Keys) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// CreateKey makes a key for tenant with role and returns its plaintext. The
// plaintext exists only in this return value: store it now, it cannot be
// shown again.
func (k *Keys) CreateKey(ctx context.Context, tenant TenantID, role Role) (string, error) {
	if _, err := ParseTenantID(string(tenant)); err != nil {
		return "", err
	}
	if role.IsZero() {
		return "", fmt.Errorf("%w: zero role", ErrInvalidRole)
	}
	var id [8]byte
	var secret [32]byte
	if _, err := io.ReadFull(k.rand(), id[:]); err != nil {
		return "", fmt.Errorf("create key: %w", err)
	}
	if _, err := io.ReadFull(k.rand(), secret[:]); err != nil {
		return "", fmt.Errorf("create key: %w", err)
	}
	plain := keyPrefix + hex.EncodeToString(id[:]) + "_" + secretEncoding.EncodeToString(secret[:])
	sk := StoredKey{
		ID:        hex.EncodeToString(id[:]),
		Tenant:    tenant,
		Role:      role,
		Hash:      sha256.Sum256([]byte(plain)),
		CreatedAt: k.now().UTC(),
	}
	if err := k.Store.InsertKey(ctx, sk); err != nil {
		return "", fmt.Errorf("create key: %w", err)
	}
	return plain, nil
}

// KeyID returns the public ID inside a plaintext key, or "" if it is not
// one of ours.
func KeyID(plain string) string {
	rest, ok := strings.CutPrefix(plain, keyPrefix)
	if !ok {
		return ""
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || len(secret) != 52 {
		return ""
	}
	if _, err := hex.DecodeString(id); err != nil {
		return ""
	}
	return id
}

// dummyHash is compared against when the key ID is unknown, so an unknown
// ID and a wrong secret cost the same.
var dummyHash = sha256.Sum256([]byte("livecore.dummy-key"))

// Authenticate returns the principal of a plaintext key. Every failure is
// ErrUnauthenticated (wrapped with the reason, for the log); a store failure
// is returned as is. The secret is compared in constant time.
func (k *Keys) Authenticate(ctx context.Context, plain string) (Principal, error) {
	id := KeyID(plain)
	if id == "" {
		return Principal{}, fmt.Errorf("%w: not a livecore API key", ErrUnauthenticated)
	}
	sk, err := k.Store.LookupKey(ctx, id)
	want := sk.Hash
	if errors.Is(err, ErrKeyNotFound) {
		want = dummyHash
	} else if err != nil {
		return Principal{}, fmt.Errorf("look up key %s: %w", id, err)
	}
	got := sha256.Sum256([]byte(plain))
	match := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	switch {
	case errors.Is(err, ErrKeyNotFound):
		return Principal{}, fmt.Errorf("%w: key %s unknown", ErrUnauthenticated, id)
	case !match:
		return Principal{}, fmt.Errorf("%w: key %s: wrong secret", ErrUnauthenticated, id)
	case !sk.RevokedAt.IsZero():
		return Principal{}, fmt.Errorf("%w: key %s revoked", ErrUnauthenticated, id)
	}
	return Principal{Tenant: sk.Tenant, Role: sk.Role, KeyID: sk.ID}, nil
}

// RevokeKey revokes the key with that public ID; later requests with it get
// 401.
func (k *Keys) RevokeKey(ctx context.Context, id string) error {
	return k.Store.RevokeKey(ctx, id, k.now().UTC())
}

// Authenticator turns a bearer token into a principal. *Keys implements it.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

var _ Authenticator = (*Keys)(nil)

// bearer extracts the token of "Authorization: Bearer <token>" (scheme
// case-insensitive, RFC 9110 section 11.1).
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// authenticate resolves the request's principal or returns an *Error
// (401, or 500 when the key store fails).
func (s *Server) authenticate(r *http.Request) (Principal, error) {
	tok, ok := bearer(r)
	if !ok {
		return Principal{}, &Error{Code: CodeUnauthorized, Message: "an API key is required: Authorization: Bearer <key>"}
	}
	p, err := s.cfg.Auth.Authenticate(r.Context(), tok)
	if err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			return Principal{}, &Error{Code: CodeUnauthorized, Message: "the API key is not valid", Err: err}
		}
		return Principal{}, Internal(err)
	}
	return p, nil
}

// allowed reports whether p's role is one of roles.
func allowed(p Principal, roles []Role) bool {
	for _, r := range roles {
		if p.Role == r {
			return true
		}
	}
	return false
}
