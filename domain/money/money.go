// Package money is exact monetary arithmetic: a decimal amount in an ISO 4217
// currency, never a float. Amounts always carry at most the currency's
// minor-unit digits; operations that could produce more (multiplication by a
// rate) round explicitly, and allocation splits a whole into parts that sum to
// it exactly.
package money

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/shopspring/decimal"
)

// Errors returned by this package. Each is wrapped with detail; match with
// errors.Is.
var (
	ErrUnknownCurrency   = errors.New("unknown currency")
	ErrInvalidAmount     = errors.New("invalid amount")
	ErrTooManyDecimals   = errors.New("too many decimal places for currency")
	ErrOutOfRange        = errors.New("amount out of range")
	ErrCurrencyMismatch  = errors.New("currency mismatch")
	ErrInvalidAllocation = errors.New("invalid allocation")
)

// MaxIntegerDigits bounds the integer part of any amount (up to
// 99,999,999,999,999 in major units). With the largest exponent (4) every
// amount's minor units fit in an int64, so no arithmetic of a few sums can
// overflow a downstream int64 column.
const MaxIntegerDigits = 14

var maxAbs = decimal.New(1, MaxIntegerDigits) // exclusive bound

// Money is an amount in a currency. The zero Money is invalid (no currency);
// use Zero, New, Parse or FromMinor. Money is a comparable-by-Equal value type,
// safe to copy and to share between goroutines.
type Money struct {
	amount decimal.Decimal
	cur    Currency
}

// Zero is 0 in c.
func Zero(c Currency) Money { return Money{amount: decimal.New(0, -c.exp), cur: c} }

// New returns amount in c. It refuses a zero currency, amounts with more
// decimals than the currency allows (ErrTooManyDecimals: 1.5 JPY is an
// error, not 2 JPY; 1.50 USD and 1.500 USD are the same amount) and amounts
// outside ±10^MaxIntegerDigits (ErrOutOfRange). The amount is stored with
// exactly the currency's decimals, whatever the exponent it came with.
//
// Its cost is bounded by the amount's digits, not by its exponent: an
// exponent such as -2^31 is refused from the coefficient's size alone, never
// by building the power of ten that comparing or rescaling it in the decimal
// library would (gigabytes, for minutes).
func New(amount decimal.Decimal, c Currency) (Money, error) {
	if c.IsZero() {
		return Money{}, fmt.Errorf("%w: zero currency", ErrUnknownCurrency)
	}
	coef := amount.Coefficient()
	if coef.Sign() == 0 {
		return Zero(c), nil
	}
	lo, hi := digitBounds(coef)
	exp := int64(amount.Exponent())
	if lo+exp >= MaxIntegerDigits { // |amount| >= 10^(lo+exp)
		return Money{}, fmt.Errorf("%w: %se%d %s", ErrOutOfRange, truncate(coef.String()), exp, c.code)
	}
	if hi+exp <= -int64(c.exp) { // 0 < |amount| < 10^(hi+exp): below one minor unit
		return Money{}, fmt.Errorf("%w: %se%d has more than %d decimals for %s", ErrTooManyDecimals, truncate(coef.String()), exp, c.exp, c.code)
	}
	// Now MaxIntegerDigits > exp > -(hi+c.exp): rescaling costs no more than
	// the coefficient's own digits.
	if amount.Abs().Cmp(maxAbs) >= 0 {
		return Money{}, fmt.Errorf("%w: %s %s", ErrOutOfRange, truncate(amount.String()), c.code)
	}
	fixed := amount.Round(c.exp)
	if !fixed.Equal(amount) {
		return Money{}, fmt.Errorf("%w: %s has more than %d decimals for %s", ErrTooManyDecimals, truncate(amount.String()), c.exp, c.code)
	}
	return Money{amount: fixed, cur: c}, nil
}

// digitBounds returns lo and hi with 10^lo <= |x| < 10^hi for a non-zero x,
// from its bit length b alone: 2^(b-1) <= |x| < 2^b and
// 0.30102 < log10(2) < 0.30103.
func digitBounds(x *big.Int) (lo, hi int64) {
	b := int64(x.BitLen())
	return (b - 1) * 30102 / 100000, b*30103/100000 + 1
}

// Parse reads a plain decimal string ("12.30", "-5", "0.125") in the currency
// with the given upper-case code. Exponents ("1e3"), NaN, infinities, signs
// other than a leading '-', spaces, thousands separators and an empty string
// are refused with ErrInvalidAmount; see New for the other errors. "-0" is 0.
func Parse(amount, code string) (Money, error) {
	c, err := ParseCurrency(code)
	if err != nil {
		return Money{}, err
	}
	return ParseIn(amount, c)
}

// ParseIn is Parse with an already parsed currency.
func ParseIn(amount string, c Currency) (Money, error) {
	if err := checkSyntax(amount); err != nil {
		return Money{}, err
	}
	d, err := decimal.NewFromString(amount)
	if err != nil { // unreachable after checkSyntax, kept as a guard
		return Money{}, fmt.Errorf("%w: %q", ErrInvalidAmount, amount)
	}
	return New(d, c)
}

// checkSyntax accepts -?DIGITS(.DIGITS)? with a bounded length, before the
// decimal library sees it (which would accept exponents and long inputs).
func checkSyntax(s string) error {
	if len(s) == 0 || len(s) > 64 {
		return fmt.Errorf("%w: %q", ErrInvalidAmount, truncate(s))
	}
	i := 0
	if s[0] == '-' {
		i = 1
	}
	intDigits, sigIntDigits, fracDigits, dot := 0, 0, 0, false
	for ; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= '0' && ch <= '9':
			if dot {
				fracDigits++
			} else {
				intDigits++
				if ch != '0' || sigIntDigits > 0 {
					sigIntDigits++
				}
			}
		case ch == '.' && !dot:
			dot = true
		default:
			return fmt.Errorf("%w: %q", ErrInvalidAmount, truncate(s))
		}
	}
	if intDigits == 0 || (dot && fracDigits == 0) {
		return fmt.Errorf("%w: %q", ErrInvalidAmount, truncate(s))
	}
	if sigIntDigits > MaxIntegerDigits {
		return fmt.Errorf("%w: %q", ErrOutOfRange, truncate(s))
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// MustParse is Parse for constants and tests; it panics on error.
func MustParse(amount, code string) Money {
	m, err := Parse(amount, code)
	if err != nil {
		panic(err)
	}
	return m
}

// FromMinor returns minor units of c (1234 USD cents is 12.34 USD).
func FromMinor(minor int64, c Currency) (Money, error) {
	return New(decimal.New(minor, -c.exp), c)
}

// Amount is the decimal amount in major units.
func (m Money) Amount() decimal.Decimal { return m.amount }

// Currency is m's currency.
func (m Money) Currency() Currency { return m.cur }

// IsValid reports whether m has a currency (the zero Money does not).
func (m Money) IsValid() bool { return !m.cur.IsZero() }

// MinorUnits is the amount in minor units (12.34 USD is 1234). Every valid
// Money fits in an int64 (see MaxIntegerDigits).
func (m Money) MinorUnits() int64 {
	return m.amount.Shift(m.cur.exp).IntPart()
}

// String formats as the amount with exactly the currency's decimals and the
// code: "12.30 USD", "1500 JPY".
func (m Money) String() string {
	return m.StringFixed() + " " + m.cur.code
}

// StringFixed formats the amount with exactly the currency's decimals
// ("12.30"); Parse(m.StringFixed(), code) returns m.
func (m Money) StringFixed() string { return m.amount.StringFixed(m.cur.exp) }

// IsZero, IsPositive and IsNegative report the amount's sign.
func (m Money) IsZero() bool     { return m.amount.IsZero() }
func (m Money) IsPositive() bool { return m.amount.IsPositive() }
func (m Money) IsNegative() bool { return m.amount.IsNegative() }

// SameCurrency reports whether m and o are in one currency.
func (m Money) SameCurrency(o Money) bool { return m.cur == o.cur }

func (m Money) check(o Money) error {
	if m.cur != o.cur {
		return fmt.Errorf("%w: %s and %s", ErrCurrencyMismatch, m.cur.code, o.cur.code)
	}
	return nil
}

// Add returns m+o; ErrCurrencyMismatch for different currencies,
// ErrOutOfRange past the bound.
func (m Money) Add(o Money) (Money, error) {
	if err := m.check(o); err != nil {
		return Money{}, err
	}
	return New(m.amount.Add(o.amount), m.cur)
}

// Sub returns m-o; errors as Add.
func (m Money) Sub(o Money) (Money, error) {
	if err := m.check(o); err != nil {
		return Money{}, err
	}
	return New(m.amount.Sub(o.amount), m.cur)
}

// Neg returns -m.
func (m Money) Neg() Money { return Money{amount: m.amount.Neg(), cur: m.cur} }

// Abs returns |m|.
func (m Money) Abs() Money { return Money{amount: m.amount.Abs(), cur: m.cur} }

// Cmp compares m and o (-1, 0, +1); ErrCurrencyMismatch for different
// currencies.
func (m Money) Cmp(o Money) (int, error) {
	if err := m.check(o); err != nil {
		return 0, err
	}
	return m.amount.Cmp(o.amount), nil
}

// Equal reports whether m and o have the same currency and amount.
func (m Money) Equal(o Money) bool { return m.cur == o.cur && m.amount.Equal(o.amount) }

// LessThan reports m < o; false for different currencies (use Cmp to tell).
func (m Money) LessThan(o Money) bool { c, err := m.Cmp(o); return err == nil && c < 0 }

// GreaterThan reports m > o; false for different currencies (use Cmp to tell).
func (m Money) GreaterThan(o Money) bool { c, err := m.Cmp(o); return err == nil && c > 0 }

// MulInt returns m*n exactly; ErrOutOfRange past the bound.
func (m Money) MulInt(n int64) (Money, error) {
	return New(m.amount.Mul(decimal.NewFromInt(n)), m.cur)
}

// MulRound returns m*f rounded half-to-even (banker's rounding) to the
// currency's minor unit: for rates, tax and interest. The rounding is the only
// inexact step, and it is explicit. ErrOutOfRange past the bound, and
// ErrUnknownCurrency for the zero Money. Like New, it never panics on f's
// exponent and its cost is bounded by f's digits: a product below a tenth of
// a minor unit is 0, and one of 10^MaxIntegerDigits or more is out of range,
// before the decimal library multiplies or rescales anything.
func (m Money) MulRound(f decimal.Decimal) (Money, error) {
	if !m.IsValid() {
		return Money{}, fmt.Errorf("%w: zero money", ErrUnknownCurrency)
	}
	mc, fc := m.amount.Coefficient(), f.Coefficient()
	if mc.Sign() == 0 || fc.Sign() == 0 {
		return Zero(m.cur), nil
	}
	mlo, mhi := digitBounds(mc)
	flo, fhi := digitBounds(fc)
	exp := int64(m.amount.Exponent()) + int64(f.Exponent())
	switch {
	case mlo+flo+exp >= MaxIntegerDigits: // |m*f| >= 10^(mlo+flo+exp)
		return Money{}, fmt.Errorf("%w: %s times %se%d", ErrOutOfRange, m, truncate(fc.String()), f.Exponent())
	case mhi+fhi+exp <= -int64(m.cur.exp)-1: // |m*f| < a tenth of a minor unit: rounds to 0
		return Zero(m.cur), nil
	}
	return New(m.amount.Mul(f).RoundBank(m.cur.exp), m.cur)
}

// Sum adds amounts of one currency; ErrCurrencyMismatch if they differ and
// ErrInvalidAmount for an empty list (its currency would be unknown).
func Sum(ms ...Money) (Money, error) {
	if len(ms) == 0 {
		return Money{}, fmt.Errorf("%w: sum of nothing", ErrInvalidAmount)
	}
	total := Zero(ms[0].cur)
	for _, m := range ms {
		var err error
		if total, err = total.Add(m); err != nil {
			return Money{}, err
		}
	}
	return total, nil
}

// Split divides m into n parts that differ by at most one minor unit and sum
// to m exactly; earlier parts get the extra units ("10.00 USD" in 3 is
// 3.34, 3.33, 3.33). n must be >= 1.
func (m Money) Split(n int) ([]Money, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: split into %d parts", ErrInvalidAllocation, n)
	}
	ratios := make([]int64, n)
	for i := range ratios {
		ratios[i] = 1
	}
	return m.Allocate(ratios...)
}

// Allocate divides m in proportion to non-negative ratios (at least one
// positive) with the largest-remainder method: each part is floor(m*r/R) in
// minor units, then the units left over go one each to the parts with the
// largest remainders (ties to the earlier part). The parts always sum to m
// exactly, and each differs from its exact share by less than one minor
// unit. A negative m is allocated as -(allocate |m|). Errors:
// ErrInvalidAllocation for no ratios, a negative ratio or ratios summing to
// zero; ErrUnknownCurrency for the zero Money. It costs O(n log n) in the
// number of ratios.
func (m Money) Allocate(ratios ...int64) ([]Money, error) {
	if !m.IsValid() {
		return nil, fmt.Errorf("%w: zero money", ErrUnknownCurrency)
	}
	if len(ratios) == 0 {
		return nil, fmt.Errorf("%w: no ratios", ErrInvalidAllocation)
	}
	total := new(big.Int)
	for _, r := range ratios {
		if r < 0 {
			return nil, fmt.Errorf("%w: negative ratio %d", ErrInvalidAllocation, r)
		}
		total.Add(total, big.NewInt(r))
	}
	if total.Sign() == 0 {
		return nil, fmt.Errorf("%w: ratios sum to zero", ErrInvalidAllocation)
	}
	minor := m.amount.Abs().Shift(m.cur.exp).BigInt()
	parts := make([]*big.Int, len(ratios))
	rems := make([]*big.Int, len(ratios))
	allocated := new(big.Int)
	for i, r := range ratios {
		num := new(big.Int).Mul(minor, big.NewInt(r))
		q, rem := new(big.Int).QuoRem(num, total, new(big.Int))
		parts[i], rems[i] = q, rem
		allocated.Add(allocated, q)
	}
	// The remainders sum to left*total and each is below total, so fewer than
	// len(ratios) units are left over, and they go only to parts whose
	// remainder is not zero (a zero ratio never gets one).
	if left := new(big.Int).Sub(minor, allocated).Int64(); left > 0 {
		order := make([]int, len(ratios))
		for i := range order {
			order[i] = i
		}
		// Stable: among equal remainders the earlier part comes first.
		slices.SortStableFunc(order, func(a, b int) int { return rems[b].Cmp(rems[a]) })
		one := big.NewInt(1)
		for _, i := range order[:left] {
			parts[i].Add(parts[i], one)
		}
	}
	out := make([]Money, len(ratios))
	for i, p := range parts {
		amt := decimal.NewFromBigInt(p, -m.cur.exp)
		if m.amount.IsNegative() {
			amt = amt.Neg()
		}
		out[i] = Money{amount: amt, cur: m.cur}
	}
	return out, nil
}

// wire is the JSON form: {"amount":"12.30","currency":"USD"}. The amount is a
// string so no JSON number (a float in most clients) ever carries money.
type wire struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// MarshalJSON encodes {"amount":"12.30","currency":"USD"}.
func (m Money) MarshalJSON() ([]byte, error) {
	if !m.IsValid() {
		return nil, fmt.Errorf("%w: zero money", ErrUnknownCurrency)
	}
	return json.Marshal(wire{Amount: m.StringFixed(), Currency: m.cur.code})
}

// UnmarshalJSON decodes the MarshalJSON form with Parse's rules.
//
// The canonical form MarshalJSON writes, {"amount":"12.30","currency":"USD"}
// with no more decimals than the currency has, is read by a fast path that
// builds the same Money without reflection or big-number arithmetic; any
// other input (other key order or case, spaces, escapes, extra keys, more
// decimals, out-of-range or malformed amounts, every error) goes the general
// way, so what is accepted and every error are unchanged.
func (m *Money) UnmarshalJSON(b []byte) error {
	if p, ok := unmarshalCanonical(b); ok {
		*m = p
		return nil
	}
	return m.unmarshalJSON(b)
}

// unmarshalJSON is the general UnmarshalJSON: encoding/json into the wire
// form, then Parse.
func (m *Money) unmarshalJSON(b []byte) error {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidAmount, err)
	}
	p, err := Parse(w.Amount, w.Currency)
	if err != nil {
		return err
	}
	*m = p
	return nil
}

// unmarshalCanonical reads exactly {"amount":"A","currency":"C"} where C is
// a known code and A is -?DIGITS(.DIGITS)? of at most 64 bytes, with at
// most MaxIntegerDigits significant integer digits and at most the
// currency's decimals. Those are precisely the inputs for which Parse(A, C)
// succeeds without rescaling down; the Money returned is the one it returns
// (minor units with the currency's exponent). ok is false for anything else,
// which the caller hands to the general path.
func unmarshalCanonical(b []byte) (m Money, ok bool) {
	const pre, mid, post = `{"amount":"`, `","currency":"`, `"}`
	if len(b) < len(pre)+1+len(mid)+len(post) || string(b[:len(pre)]) != pre || string(b[len(b)-len(post):]) != post {
		return Money{}, false
	}
	rest := b[len(pre) : len(b)-len(post)]
	end := 0
	for end < len(rest) && rest[end] != '"' {
		end++
	}
	amount, tail := rest[:end], rest[end:]
	if len(tail) < len(mid) || string(tail[:len(mid)]) != mid {
		return Money{}, false
	}
	exp, known := iso4217[string(tail[len(mid):])] // no allocation: map index by converted bytes
	if !known || len(amount) == 0 || len(amount) > 64 {
		return Money{}, false
	}
	i, neg := 0, false
	if amount[0] == '-' {
		i, neg = 1, true
	}
	var coef int64
	intDigits, sigIntDigits, fracDigits, dot := 0, 0, 0, false
	for ; i < len(amount); i++ {
		ch := amount[i]
		switch {
		case ch >= '0' && ch <= '9':
			if dot {
				fracDigits++
				if fracDigits > int(exp) {
					return Money{}, false // more decimals than the currency: general path
				}
			} else {
				intDigits++
				if ch != '0' || sigIntDigits > 0 {
					sigIntDigits++
					if sigIntDigits > MaxIntegerDigits {
						return Money{}, false // out of range: general path
					}
				}
			}
			// At most MaxIntegerDigits+4 significant digits: fits an int64.
			coef = coef*10 + int64(ch-'0')
		case ch == '.' && !dot:
			dot = true
		default:
			return Money{}, false
		}
	}
	if intDigits == 0 || (dot && fracDigits == 0) {
		return Money{}, false
	}
	for ; fracDigits < int(exp); fracDigits++ {
		coef *= 10
	}
	if neg {
		coef = -coef
	}
	c := Currency{code: currencyCodes[string(tail[len(mid):])], exp: exp}
	return Money{amount: decimal.New(coef, -exp), cur: c}, true
}
