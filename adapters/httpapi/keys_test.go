package httpapi_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/httpapi"
)

type keyStore struct {
	name string
	open func(t testing.TB) (httpapi.KeyStore, *sql.DB)
}

func keyStores() []keyStore {
	sqlStore := func(open func(testing.TB) *sql.DB) func(testing.TB) (httpapi.KeyStore, *sql.DB) {
		return func(t testing.TB) (httpapi.KeyStore, *sql.DB) {
			db := open(t)
			s := httpapi.NewSQLKeyStore(db)
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			return s, db
		}
	}
	return []keyStore{
		{"memory", func(testing.TB) (httpapi.KeyStore, *sql.DB) { return httpapi.NewMemoryKeyStore(), nil }},
		{"sqlite", sqlStore(openSQLite)},
		{"postgres", sqlStore(openPostgres)},
	}
}

// TestKeyStoreConformance runs one suite against every key store, through
// Keys as the server uses them.
func TestKeyStoreConformance(t *testing.T) {
	for _, ks := range keyStores() {
		t.Run(ks.name, func(t *testing.T) {
			ctx := context.Background()
			store, db := ks.open(t)
			now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
			keys := &httpapi.Keys{Store: store, Now: func() time.Time { return now }}

			plain, err := keys.CreateKey(ctx, "acme", httpapi.RoleFinance)
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^lc_[0-9a-f]{16}_[a-z2-7]{52}$`).MatchString(plain) {
				t.Fatalf("key format: %q", plain)
			}
			p, err := keys.Authenticate(ctx, plain)
			want := httpapi.Principal{Tenant: "acme", Role: httpapi.RoleFinance, KeyID: httpapi.KeyID(plain)}
			if err != nil || p != want {
				t.Fatalf("Authenticate = %+v, %v; want %+v", p, err, want)
			}
			sk, err := store.LookupKey(ctx, p.KeyID)
			if err != nil || sk.Hash != sha256.Sum256([]byte(plain)) || !sk.CreatedAt.Equal(now) || !sk.RevokedAt.IsZero() {
				t.Fatalf("stored key %+v %v", sk, err)
			}

			// Wrong secrets, other formats, unknown IDs: all ErrUnauthenticated.
			flipped := plain[:len(plain)-1] + map[bool]string{true: "b", false: "a"}[strings.HasSuffix(plain, "a")]
			for _, bad := range []string{"", "lc_", plain + "x", flipped, "lc_ffffffffffffffff_" + strings.Repeat("a", 52), strings.ToUpper(plain)} {
				if _, err := keys.Authenticate(ctx, bad); !errors.Is(err, httpapi.ErrUnauthenticated) {
					t.Errorf("Authenticate(%q) = %v, want ErrUnauthenticated", bad, err)
				}
			}

			if err := store.InsertKey(ctx, sk); !errors.Is(err, httpapi.ErrKeyExists) {
				t.Errorf("duplicate insert: %v", err)
			}
			if _, err := store.LookupKey(ctx, "0000000000000000"); !errors.Is(err, httpapi.ErrKeyNotFound) {
				t.Errorf("lookup of unknown: %v", err)
			}
			if err := store.RevokeKey(ctx, "0000000000000000", now); !errors.Is(err, httpapi.ErrKeyNotFound) {
				t.Errorf("revoke unknown: %v", err)
			}
			if err := keys.RevokeKey(ctx, p.KeyID); err != nil {
				t.Fatal(err)
			}
			if err := store.RevokeKey(ctx, p.KeyID, now.Add(time.Hour)); err != nil { // idempotent
				t.Fatal(err)
			}
			if sk, _ := store.LookupKey(ctx, p.KeyID); !sk.RevokedAt.Equal(now) {
				t.Errorf("revoked at %v, want the first revocation %v", sk.RevokedAt, now)
			}
			if _, err := keys.Authenticate(ctx, plain); !errors.Is(err, httpapi.ErrUnauthenticated) {
				t.Errorf("revoked key: %v", err)
			}

			if _, err := keys.CreateKey(ctx, "Bad Tenant", httpapi.RoleOps); !errors.Is(err, httpapi.ErrInvalidTenant) {
				t.Errorf("bad tenant: %v", err)
			}
			if _, err := keys.CreateKey(ctx, "acme", httpapi.Role{}); !errors.Is(err, httpapi.ErrInvalidRole) {
				t.Errorf("zero role: %v", err)
			}

			// The plaintext (and its secret part) is nowhere in the database.
			if db != nil {
				secret := plain[strings.LastIndex(plain, "_")+1:]
				rows, err := db.QueryContext(ctx, `SELECT key_id, tenant, role, key_hash FROM http_api_keys`)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				n := 0
				for rows.Next() {
					var a, b, c, d string
					if err := rows.Scan(&a, &b, &c, &d); err != nil {
						t.Fatal(err)
					}
					n++
					if row := fmt.Sprint(a, b, c, d); strings.Contains(row, secret) {
						t.Errorf("the key's secret is stored: %s", row)
					}
				}
				t.Logf("%d stored keys scanned: 0 plaintext secrets", n)
			}
		})
	}
}

func TestParseRoleIsClosed(t *testing.T) {
	for _, r := range httpapi.Roles() {
		got, err := httpapi.ParseRole(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRole(%s) = %v, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "admin", "Checkout", "checkout "} {
		if _, err := httpapi.ParseRole(s); !errors.Is(err, httpapi.ErrInvalidRole) {
			t.Errorf("ParseRole(%q) = %v", s, err)
		}
	}
}
