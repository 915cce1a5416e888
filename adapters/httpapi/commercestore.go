package httpapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

// The checkout side tables: payment tokens per order (for the checkout
// saga) and the commercial terms of live drops. Same SQL dialect rules as
// sqlstore.go (SQLite and PostgreSQL).

const tokenSchema = `CREATE TABLE IF NOT EXISTS http_payment_tokens (
	order_id   TEXT   PRIMARY KEY,
	tenant     TEXT   NOT NULL,
	token      TEXT   NOT NULL,
	updated_at BIGINT NOT NULL
)`

const dropSchema = `CREATE TABLE IF NOT EXISTS http_drops (
	drop_id   TEXT   NOT NULL,
	tenant    TEXT   NOT NULL,
	sku       TEXT   NOT NULL,
	price     TEXT   NOT NULL,
	currency  TEXT   NOT NULL,
	starts_at BIGINT NOT NULL,
	ends_at   BIGINT NOT NULL,
	PRIMARY KEY (tenant, drop_id)
)`

// SQLCommerceStore is a TokenStore and a DropStore in SQL tables. Safe for
// concurrent use.
type SQLCommerceStore struct {
	db *sql.DB
}

// NewSQLCommerceStore returns a store over db. Call Migrate once before use.
func NewSQLCommerceStore(db *sql.DB) *SQLCommerceStore { return &SQLCommerceStore{db: db} }

var (
	_ TokenStore = (*SQLCommerceStore)(nil)
	_ DropStore  = (*SQLCommerceStore)(nil)
)

// Migrate creates the tables if they do not exist.
func (s *SQLCommerceStore) Migrate(ctx context.Context) error {
	for _, q := range []string{tokenSchema, dropSchema} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate commerce tables: %w", err)
		}
	}
	return nil
}

// SavePaymentToken implements TokenStore.
func (s *SQLCommerceStore) SavePaymentToken(ctx context.Context, tenant TenantID, orderID string, tok payment.Token) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO http_payment_tokens (order_id, tenant, token, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (order_id) DO UPDATE SET token = excluded.token, updated_at = excluded.updated_at
		WHERE http_payment_tokens.tenant = excluded.tenant`,
		orderID, string(tenant), tok.String(), time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("save payment token of %s: %w", orderID, err)
	}
	return nil
}

// ErrNoPaymentToken: no checkout with a token was accepted for the order.
var ErrNoPaymentToken = errors.New("no payment token for order")

// PaymentToken returns the token of an order's checkout (it satisfies the
// checkout saga's TokenSource); ErrNoPaymentToken if none.
func (s *SQLCommerceStore) PaymentToken(ctx context.Context, orderID string) (payment.Token, error) {
	var tok string
	err := s.db.QueryRowContext(ctx, `SELECT token FROM http_payment_tokens WHERE order_id = $1`, orderID).Scan(&tok)
	if errors.Is(err, sql.ErrNoRows) {
		return payment.Token{}, fmt.Errorf("%s: %w", orderID, ErrNoPaymentToken)
	}
	if err != nil {
		return payment.Token{}, fmt.Errorf("payment token of %s: %w", orderID, err)
	}
	return payment.ParseToken(tok)
}

// PutDrop implements DropStore.
func (s *SQLCommerceStore) PutDrop(ctx context.Context, d DropTerms) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO http_drops (drop_id, tenant, sku, price, currency, starts_at, ends_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, drop_id) DO NOTHING`,
		d.ID, string(d.Tenant), d.SKU, d.Price.StringFixed(), d.Price.Currency().Code(), d.StartsAt.UnixMicro(), d.EndsAt.UnixMicro())
	if err != nil {
		return fmt.Errorf("put drop %s: %w", d.ID, err)
	}
	return nil
}

// GetDrop implements DropStore.
func (s *SQLCommerceStore) GetDrop(ctx context.Context, tenant TenantID, id string) (DropTerms, error) {
	var (
		sku, price, cur string
		starts, ends    int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT sku, price, currency, starts_at, ends_at FROM http_drops WHERE tenant = $1 AND drop_id = $2`,
		string(tenant), id).Scan(&sku, &price, &cur, &starts, &ends)
	if errors.Is(err, sql.ErrNoRows) {
		return DropTerms{}, fmt.Errorf("%s: %w", id, ErrDropNotFound)
	}
	if err != nil {
		return DropTerms{}, fmt.Errorf("get drop %s: %w", id, err)
	}
	m, err := money.Parse(price, cur)
	if err != nil {
		return DropTerms{}, fmt.Errorf("drop %s: stored price: %w", id, err)
	}
	return DropTerms{ID: id, Tenant: tenant, SKU: sku, Price: m, StartsAt: time.UnixMicro(starts).UTC(), EndsAt: time.UnixMicro(ends).UTC()}, nil
}

// MemoryCommerceStore is a TokenStore and DropStore in maps, for tests.
type MemoryCommerceStore struct {
	mu     sync.Mutex
	tokens map[string]payment.Token
	drops  map[IdemKey]DropTerms
}

// NewMemoryCommerceStore returns an empty store.
func NewMemoryCommerceStore() *MemoryCommerceStore {
	return &MemoryCommerceStore{tokens: map[string]payment.Token{}, drops: map[IdemKey]DropTerms{}}
}

// SavePaymentToken implements TokenStore.
func (m *MemoryCommerceStore) SavePaymentToken(_ context.Context, _ TenantID, orderID string, tok payment.Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[orderID] = tok
	return nil
}

// PaymentToken returns the order's token; ErrNoPaymentToken if none.
func (m *MemoryCommerceStore) PaymentToken(_ context.Context, orderID string) (payment.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[orderID]
	if !ok {
		return payment.Token{}, fmt.Errorf("%s: %w", orderID, ErrNoPaymentToken)
	}
	return t, nil
}

// PutDrop implements DropStore.
func (m *MemoryCommerceStore) PutDrop(_ context.Context, d DropTerms) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := IdemKey{Tenant: d.Tenant, Key: d.ID}
	if _, ok := m.drops[k]; !ok {
		m.drops[k] = d
	}
	return nil
}

// GetDrop implements DropStore.
func (m *MemoryCommerceStore) GetDrop(_ context.Context, tenant TenantID, id string) (DropTerms, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.drops[IdemKey{Tenant: tenant, Key: id}]
	if !ok {
		return DropTerms{}, fmt.Errorf("%s: %w", id, ErrDropNotFound)
	}
	return d, nil
}
