package httpapi

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// CachedAuth remembers successful authentications for TTL, so a busy
// client costs one key-store lookup per TTL instead of one per request. A
// revoked key keeps working for at most TTL. Failures are not cached (an
// attacker's guesses reach the store, which compares in constant time).
// Safe for concurrent use.
type CachedAuth struct {
	next Authenticator
	ttl  time.Duration
	now  func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]cachedPrincipal
}

type cachedPrincipal struct {
	p       Principal
	expires time.Time
}

// maxCachedKeys bounds the cache; past it, it starts over.
const maxCachedKeys = 10_000

// NewCachedAuth wraps next with a cache of ttl.
func NewCachedAuth(next Authenticator, ttl time.Duration) *CachedAuth {
	return &CachedAuth{next: next, ttl: ttl, now: time.Now, m: map[[sha256.Size]byte]cachedPrincipal{}}
}

var _ Authenticator = (*CachedAuth)(nil)

// Authenticate implements Authenticator.
func (c *CachedAuth) Authenticate(ctx context.Context, token string) (Principal, error) {
	h := sha256.Sum256([]byte(token))
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[h]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.p, nil
	}
	p, err := c.next.Authenticate(ctx, token)
	if err != nil {
		return p, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedKeys {
		c.m = map[[sha256.Size]byte]cachedPrincipal{}
	}
	c.m[h] = cachedPrincipal{p: p, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return p, nil
}
