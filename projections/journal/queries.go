package journal

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/projections"
)

// AsOf cuts the journal at a moment: postings of events recorded at or
// before Time and at or before Position. Zero fields do not cut.
type AsOf struct {
	Time     time.Time
	Position uint64
}

func (a AsOf) where(args []any) (string, []any) {
	cond := ""
	if !a.Time.IsZero() {
		args = append(args, projections.Timestamp(a.Time))
		cond += fmt.Sprintf(" AND recorded_at <= $%d", len(args))
	}
	if a.Position > 0 {
		args = append(args, int64(a.Position))
		cond += fmt.Sprintf(" AND position <= $%d", len(args))
	}
	return cond, args
}

// Balance is an account's totals in one currency. Amounts are minor units.
type Balance struct {
	Account       Account
	Currency      string
	Debit, Credit int64
}

// Net is debit minus credit.
func (b Balance) Net() int64 { return b.Debit - b.Credit }

// TrialBalance lists every account's balance per currency and the totals.
type TrialBalance struct {
	AsOf     AsOf
	Tenant   string // "" for all tenants
	Balances []Balance
	// Totals per currency: debits and credits over all accounts. They are
	// equal when the journal balances.
	Totals map[string]Balance
}

// Nets reports whether debits equal credits in every currency.
func (tb TrialBalance) Nets() bool {
	for _, t := range tb.Totals {
		if t.Debit != t.Credit {
			return false
		}
	}
	return true
}

// Get returns the balance of account a in currency cur (zero if none).
func (tb TrialBalance) Get(a Account, cur string) Balance {
	for _, b := range tb.Balances {
		if b.Account == a && b.Currency == cur {
			return b
		}
	}
	return Balance{Account: a, Currency: cur}
}

// GetTrialBalance sums the postings as of at, for one tenant or (tenant
// "") all. It reads the active generation's view fin_postings.
func GetTrialBalance(ctx context.Context, db *projections.DB, tenant string, at AsOf) (TrialBalance, error) {
	where, args := "WHERE 1 = 1", []any{}
	if tenant != "" {
		args = append(args, tenant)
		where += " AND tenant = $1"
	}
	cond, args := at.where(args)
	rows, err := db.QueryContext(ctx, `SELECT account, currency, CAST(SUM(debit) AS BIGINT), CAST(SUM(credit) AS BIGINT)
		FROM fin_postings `+where+cond+` GROUP BY account, currency`, args...)
	if err != nil {
		return TrialBalance{}, fmt.Errorf("trial balance: %w", err)
	}
	defer rows.Close()
	tb := TrialBalance{AsOf: at, Tenant: tenant, Totals: map[string]Balance{}}
	for rows.Next() {
		var code string
		var b Balance
		if err := rows.Scan(&code, &b.Currency, &b.Debit, &b.Credit); err != nil {
			return TrialBalance{}, fmt.Errorf("trial balance: %w", err)
		}
		if b.Account, err = ParseAccount(code); err != nil {
			return TrialBalance{}, err
		}
		tb.Balances = append(tb.Balances, b)
		t := tb.Totals[b.Currency]
		t.Currency = b.Currency
		t.Debit += b.Debit
		t.Credit += b.Credit
		tb.Totals[b.Currency] = t
	}
	if err := rows.Err(); err != nil {
		return TrialBalance{}, fmt.Errorf("trial balance: %w", err)
	}
	sort.Slice(tb.Balances, func(i, j int) bool {
		if tb.Balances[i].Currency != tb.Balances[j].Currency {
			return tb.Balances[i].Currency < tb.Balances[j].Currency
		}
		return tb.Balances[i].Account.Code() < tb.Balances[j].Account.Code()
	})
	return tb, nil
}

// Filter selects postings. Zero fields do not filter.
type Filter struct {
	Tenant  string
	Account Account
	AsOf    AsOf
	// After skips postings at or before this position (a page's cursor).
	After uint64
	// FromTime bounds recorded-at from below (inclusive).
	FromTime time.Time
}

// EachPosting calls fn for each posting matching f, in position and line
// order, streaming (for exports of any size). fn's error stops it.
func EachPosting(ctx context.Context, db *projections.DB, f Filter, fn func(PostingRow) error) error {
	where, args := "WHERE 1 = 1", []any{}
	add := func(cond string, v any) {
		args = append(args, v)
		where += fmt.Sprintf(" AND "+cond, len(args))
	}
	if f.Tenant != "" {
		add("tenant = $%d", f.Tenant)
	}
	if f.Account.Code() != "" {
		add("account = $%d", f.Account.Code())
	}
	if f.After > 0 {
		add("position > $%d", int64(f.After))
	}
	if !f.FromTime.IsZero() {
		add("recorded_at >= $%d", projections.Timestamp(f.FromTime))
	}
	cond, args := f.AsOf.where(args)
	rows, err := db.QueryContext(ctx, `SELECT `+postingsSpec.Columns()+` FROM fin_postings `+where+cond+` ORDER BY position, line_no`, args...)
	if err != nil {
		return fmt.Errorf("postings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r PostingRow
		if err := rows.Scan(postingsSpec.Fields(&r)...); err != nil {
			return fmt.Errorf("postings: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// FormatAmount writes minor units of a currency as a plain decimal string
// with the currency's decimals ("1234" USD is "12.34", "-5" JPY is "-5",
// "-7" USD is "-0.07"). An unknown currency is written as minor units.
func FormatAmount(minor int64, currency string) string {
	c, err := money.ParseCurrency(currency)
	if err != nil || c.Exponent() == 0 {
		return strconv.FormatInt(minor, 10)
	}
	sign := ""
	u := uint64(minor)
	if minor < 0 {
		sign, u = "-", uint64(-minor)
	}
	unit := uint64(1)
	for range c.Exponent() {
		unit *= 10
	}
	frac := strconv.FormatUint(u%unit, 10)
	for len(frac) < int(c.Exponent()) {
		frac = "0" + frac
	}
	return sign + strconv.FormatUint(u/unit, 10) + "." + frac
}
