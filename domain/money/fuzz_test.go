package money_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"regexp"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/livecore/livecore/domain/money"
)

// plainDecimal is the only amount syntax Parse may accept.
var plainDecimal = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// FuzzParse checks that Parse never panics, fails only with this package's
// sentinels, and that what it accepts is plain decimal syntax, equals the
// exact rational value of the input, fits the currency's minor unit and the
// range, and survives StringFixed, MinorUnits and JSON unchanged.
func FuzzParse(f *testing.F) {
	for _, seed := range []struct{ amount, code string }{
		{"0", "USD"}, {"12.30", "USD"}, {"1500", "JPY"}, {"1.234", "BHD"}, {"0.0001", "CLF"},
		{"-0", "USD"}, {"-0.00", "JPY"}, {"007.50", "EUR"}, {"99999999999999.99", "USD"},
		{"-99999999999999.9999", "CLF"}, {"100000000000000", "USD"}, {"99999999999999.995", "USD"},
		{"1.5", "JPY"}, {"0.001", "USD"}, {"1.230", "USD"},
		{"", "USD"}, {" 1", "USD"}, {"1 ", "USD"}, {"NaN", "USD"}, {"Inf", "USD"}, {"-Inf", "USD"},
		{"1e3", "USD"}, {"1E400", "USD"}, {"1e-400", "USD"}, {"1e400", "USD"}, {"0x10", "USD"},
		{"+1", "USD"}, {"-", "USD"}, {"--1", "USD"}, {"1.", "USD"}, {".5", "USD"}, {".", "USD"},
		{"1,000.00", "USD"}, {"1_000", "USD"}, {"１２", "USD"}, {"\u22121", "USD"}, {"\x00", "USD"},
		{"1\x00", "USD"}, {"\xff", "USD"}, {"1.2.3", "USD"},
		{strings.Repeat("9", 64), "USD"}, {strings.Repeat("0", 63) + "1", "USD"},
		{strings.Repeat("0", 1000) + "1", "USD"}, {"0." + strings.Repeat("0", 62), "USD"},
		{"12.30", "usd"}, {"12.30", "US"}, {"12.30", "XXX"}, {"12.30", "XAU"}, {"12.30", ""},
		{"12.30", "USD\x00"},
	} {
		f.Add(seed.amount, seed.code)
	}
	f.Fuzz(func(t *testing.T, amount, code string) {
		m, err := money.Parse(amount, code)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("Parse(%q, %q): untyped error %v", amount, code, err)
			}
			if m.IsValid() {
				t.Fatalf("Parse(%q, %q) returned %v with error %v", amount, code, m, err)
			}
			return
		}
		if !plainDecimal.MatchString(amount) || len(amount) > 64 {
			t.Fatalf("Parse(%q, %q) accepted non-plain syntax as %v", amount, code, m)
		}
		if m.Currency().Code() != code {
			t.Fatalf("Parse(%q, %q) is in %v", amount, code, m.Currency())
		}
		want, ok := new(big.Rat).SetString(amount)
		if !ok || want.Cmp(m.Amount().Rat()) != 0 {
			t.Fatalf("Parse(%q, %q) = %s, not the input's value", amount, code, m.Amount())
		}
		exp := m.Currency().Exponent()
		if !m.Amount().Equal(m.Amount().Truncate(exp)) {
			t.Fatalf("Parse(%q, %q) = %s has more than %d decimals", amount, code, m.Amount(), exp)
		}
		if m.Amount().Abs().Cmp(decimal.New(1, money.MaxIntegerDigits)) >= 0 {
			t.Fatalf("Parse(%q, %q) = %s is out of range", amount, code, m.Amount())
		}
		fixed := m.StringFixed()
		if i := strings.IndexByte(fixed, '.'); (exp == 0 && i >= 0) || (exp > 0 && len(fixed)-i-1 != int(exp)) {
			t.Fatalf("Parse(%q, %q).StringFixed() = %q, not %d decimals", amount, code, fixed, exp)
		}
		back, err := money.Parse(fixed, code)
		if err != nil || !back.Equal(m) || back.StringFixed() != fixed {
			t.Fatalf("Parse(%q, %q) = %v does not re-parse from %q: %v, %v", amount, code, m, fixed, back, err)
		}
		if fm, err := money.FromMinor(m.MinorUnits(), m.Currency()); err != nil || !fm.Equal(m) {
			t.Fatalf("FromMinor(%d) = %v, %v; want %v", m.MinorUnits(), fm, err, m)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(%v): %v", m, err)
		}
		var j money.Money
		if err := json.Unmarshal(b, &j); err != nil || !j.Equal(m) {
			t.Fatalf("Unmarshal(%s) = %v, %v; want %v", b, j, err, m)
		}
	})
}

// ratiosFrom decodes up to 8 ratios: a byte below 0xF0 is a ratio by itself;
// 0xF0 to 0xFF announces a big-endian ratio of 1 to 8 more bytes, with the
// sign bit cleared, so both tiny and near-MaxInt64 ratios are easy to reach.
// A trailing announcement without its bytes uses what is there.
func ratiosFrom(b []byte) []int64 {
	var ratios []int64
	for len(b) > 0 && len(ratios) < 8 {
		head := b[0]
		b = b[1:]
		if head < 0xF0 {
			ratios = append(ratios, int64(head))
			continue
		}
		n := min(int(head&0x07)+1, len(b))
		var buf [8]byte
		copy(buf[8-n:], b[:n])
		b = b[n:]
		ratios = append(ratios, int64(binary.BigEndian.Uint64(buf[:])&math.MaxInt64))
	}
	return ratios
}

// FuzzAllocate checks that Allocate never panics, refuses only ratio lists
// without a positive ratio, and otherwise keeps every largest-remainder
// promise (see checkAllocation).
func FuzzAllocate(f *testing.F) {
	f.Add(int64(1000), uint8(0), []byte{1, 1, 1})
	f.Add(int64(-1000), uint8(1), []byte{1, 1, 1})
	f.Add(int64(5), uint8(2), []byte{3, 7})
	f.Add(int64(1), uint8(3), []byte{0, 0, 5})
	f.Add(int64(0), uint8(4), []byte{1, 2})
	f.Add(int64(7), uint8(5), []byte{})
	f.Add(int64(7), uint8(5), []byte{0, 0, 0})
	f.Add(int64(1), uint8(6), []byte{0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1})
	f.Add(int64(9999999999999999), uint8(7), []byte{1, 1, 1, 1, 1, 1, 1, 1})
	f.Add(int64(-999999999999999999), uint8(8), []byte{0xF7, 0x01, 0xEF, 0, 0xF0})
	f.Add(int64(math.MaxInt64), uint8(9), []byte{2})
	f.Add(int64(math.MinInt64), uint8(10), []byte{2})
	codes := money.Currencies()
	f.Fuzz(func(t *testing.T, minor int64, cur uint8, ratioBytes []byte) {
		c, err := money.ParseCurrency(codes[int(cur)%len(codes)])
		if err != nil {
			t.Fatal(err)
		}
		m, err := money.FromMinor(minor, c)
		if err != nil {
			if !errors.Is(err, money.ErrOutOfRange) {
				t.Fatalf("FromMinor(%d, %v): %v", minor, c, err)
			}
			return
		}
		ratios := ratiosFrom(ratioBytes)
		parts, err := m.Allocate(ratios...)
		positive := false
		for _, r := range ratios {
			positive = positive || r > 0
		}
		if !positive {
			if !errors.Is(err, money.ErrInvalidAllocation) || parts != nil {
				t.Fatalf("Allocate(%v, %v) = %v, %v; want ErrInvalidAllocation", m, ratios, parts, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Allocate(%v, %v): %v", m, ratios, err)
		}
		checkAllocation(t, m, ratios, parts)
		if n := len(ratios); n > 0 {
			split, err := m.Split(n)
			if err != nil {
				t.Fatalf("Split(%v, %d): %v", m, n, err)
			}
			ones := make([]int64, n)
			for i := range ones {
				ones[i] = 1
			}
			checkAllocation(t, m, ones, split)
		}
	})
}

// FuzzJSON checks that UnmarshalJSON never panics, fails only with this
// package's sentinels and leaves its receiver alone when it fails, and that
// whatever it accepts marshals to a canonical form that decodes to an equal
// Money and marshals to the same bytes again.
func FuzzJSON(f *testing.F) {
	for _, seed := range []string{
		`{"amount":"12.30","currency":"USD"}`,
		`{"amount":"1500","currency":"JPY"}`,
		`{"amount":"-1.234","currency":"BHD"}`,
		`{"amount":"-0","currency":"EUR"}`,
		`{"currency":"USD","amount":"0012.3"}`,
		`{"AMOUNT":"1","Currency":"USD"}`,
		`{"amount":"1","currency":"USD","amount":"2"}`,
		`{"amount":"1","currency":"USD","extra":[1,2,{}]}`,
		`{"amount":12.30,"currency":"USD"}`,
		`{"amount":"12.30"}`,
		`{"amount":"12.345","currency":"USD"}`,
		`{"amount":"1e3","currency":"USD"}`,
		`{"amount":"\u0031","currency":"\u0055SD"}`,
		`{"amount":"1","currency":"USD\u0000"}`,
		`{"amount":"１","currency":"USD"}`,
		`{"amount":"NaN","currency":"USD"}`,
		`{"amount":null,"currency":null}`,
		`{"amount":"100000000000000","currency":"USD"}`,
		`"12.30 USD"`, `12.30`, `null`, `{}`, `[]`, ``, `{`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sentinel := money.MustParse("7.00", "GBP")
		m := sentinel
		if err := m.UnmarshalJSON(data); err != nil {
			if !isSentinel(err) {
				t.Fatalf("UnmarshalJSON(%q): untyped error %v", data, err)
			}
			if !m.Equal(sentinel) {
				t.Fatalf("UnmarshalJSON(%q) failed with %v but changed its receiver to %v", data, err, m)
			}
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(%v) after UnmarshalJSON(%q): %v", m, data, err)
		}
		var back money.Money
		if err := json.Unmarshal(b, &back); err != nil || !back.Equal(m) {
			t.Fatalf("UnmarshalJSON(%q) = %v, re-decoded from %s as %v, %v", data, m, b, back, err)
		}
		if b2, err := json.Marshal(back); err != nil || string(b2) != string(b) {
			t.Fatalf("Marshal is not canonical: %s then %s, %v", b, b2, err)
		}
	})
}

// FuzzMulRound checks MulRound against exact rational arithmetic with
// half-to-even rounding, over factors of any exponent, including ones that
// make the decimal library build enormous powers of ten or overflow int32.
func FuzzMulRound(f *testing.F) {
	f.Add(int64(25), uint8(0), int64(5), int32(-1))
	f.Add(int64(-35), uint8(0), int64(5), int32(-1))
	f.Add(int64(1234), uint8(1), int64(1), int32(math.MinInt32))
	f.Add(int64(1234), uint8(1), int64(1), int32(math.MaxInt32))
	f.Add(int64(1), uint8(2), int64(-5), int32(-1))
	f.Add(int64(9999999999999999), uint8(0), int64(10000000000000001), int32(-16))
	f.Add(int64(0), uint8(3), int64(7), int32(math.MaxInt32))
	f.Add(int64(3), uint8(4), int64(math.MinInt64), int32(-19))
	usd, jpy, bhd, clf := money.USD, money.JPY, money.BHD, money.MustCurrency("CLF")
	curs := []money.Currency{usd, jpy, bhd, clf, money.EUR}
	f.Fuzz(func(t *testing.T, minor int64, cur uint8, coef int64, exp int32) {
		c := curs[int(cur)%len(curs)]
		m, err := money.FromMinor(minor, c)
		if err != nil {
			return
		}
		factor := decimal.New(coef, exp)
		got, err := m.MulRound(factor)
		if err != nil && !errors.Is(err, money.ErrOutOfRange) {
			t.Fatalf("%v × %#v: %v", m, factor, err)
		}
		// Skip the exact oracle where it would itself build a huge power of ten.
		if exp < -1000 || exp > 1000 {
			if err == nil && !got.IsZero() {
				t.Fatalf("%v × %#v = %v, want 0 or ErrOutOfRange", m, factor, got)
			}
			return
		}
		exact := new(big.Rat).Mul(m.Amount().Rat(), factor.Rat())
		scaled := exact.Mul(exact, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(c.Exponent())), nil)))
		want := roundHalfEven(scaled)
		limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(money.MaxIntegerDigits)+int64(c.Exponent())), nil)
		if new(big.Int).Abs(want).Cmp(limit) >= 0 {
			if !errors.Is(err, money.ErrOutOfRange) {
				t.Fatalf("%v × %#v = %v, %v; want ErrOutOfRange", m, factor, got, err)
			}
			return
		}
		if err != nil || got.Currency() != c || big.NewInt(got.MinorUnits()).Cmp(want) != 0 {
			t.Fatalf("%v × %#v = %v, %v; want %s minor units", m, factor, got, err, want)
		}
	})
}

// roundHalfEven rounds r to the nearest integer, ties to even.
func roundHalfEven(r *big.Rat) *big.Int {
	q, rem := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int)) // truncated toward zero
	twice := new(big.Int).Abs(rem)
	twice.Lsh(twice, 1)
	switch c := twice.Cmp(r.Denom()); {
	case c > 0, c == 0 && q.Bit(0) == 1:
		if r.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}
