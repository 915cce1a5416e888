package money_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/livecore/livecore/domain/money"
)

// sentinels are every error this package promises; anything it returns must
// match one of them with errors.Is.
var sentinels = []error{
	money.ErrUnknownCurrency,
	money.ErrInvalidAmount,
	money.ErrTooManyDecimals,
	money.ErrOutOfRange,
	money.ErrCurrencyMismatch,
	money.ErrInvalidAllocation,
}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func mustParse(tb testing.TB, amount, code string) money.Money {
	tb.Helper()
	m, err := money.Parse(amount, code)
	if err != nil {
		tb.Fatalf("Parse(%q, %q): %v", amount, code, err)
	}
	return m
}

func mustCurrency(tb testing.TB, code string) money.Currency {
	tb.Helper()
	c, err := money.ParseCurrency(code)
	if err != nil {
		tb.Fatalf("ParseCurrency(%q): %v", code, err)
	}
	return c
}

func TestCurrencyExponents(t *testing.T) {
	for code, want := range map[string]int32{
		"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KRW": 0, "ISK": 0, "VND": 0, "XOF": 0,
		"BHD": 3, "KWD": 3, "JOD": 3, "TND": 3, "CLF": 4, "UYW": 4,
	} {
		if got := mustCurrency(t, code).Exponent(); got != want {
			t.Errorf("%s exponent = %d, want %d", code, got, want)
		}
	}
	for _, c := range []money.Currency{money.USD, money.EUR, money.GBP, money.JPY, money.BHD} {
		if p := mustCurrency(t, c.Code()); p != c {
			t.Errorf("package variable %v differs from ParseCurrency: %+v", c, p)
		}
	}
}

func TestCurrencies(t *testing.T) {
	codes := money.Currencies()
	if len(codes) < 150 || !slices.IsSorted(codes) {
		t.Fatalf("Currencies() = %d codes, sorted %v; want a sorted ISO 4217 list", len(codes), slices.IsSorted(codes))
	}
	for _, code := range codes {
		c := mustCurrency(t, code)
		if len(code) != 3 || strings.ToUpper(code) != code || c.Code() != code || c.String() != code {
			t.Errorf("code %q: not three upper-case letters or not its own Code()", code)
		}
		if e := c.Exponent(); e != 0 && e != 2 && e != 3 && e != 4 {
			t.Errorf("%s: exponent %d is not an ISO 4217 minor unit", code, e)
		}
	}
	for _, code := range []string{"XXX", "XTS", "XAU", "XAG", "XDR", "XSU", "XUA"} {
		if slices.Contains(codes, code) {
			t.Errorf("Currencies() contains %s, which has no minor unit", code)
		}
	}
}

func TestParseCurrencyRejects(t *testing.T) {
	for _, code := range []string{"", "usd", "Usd", "US", "USDD", " USD", "USD ", "XXX", "XAU", "XTS", "ZZZ", "\x00SD", "ＵＳＤ"} {
		c, err := money.ParseCurrency(code)
		if !errors.Is(err, money.ErrUnknownCurrency) || !c.IsZero() {
			t.Errorf("ParseCurrency(%q) = %v, %v; want zero Currency, ErrUnknownCurrency", code, c, err)
		}
	}
	var c money.Currency
	if err := c.UnmarshalText([]byte("usd")); !errors.Is(err, money.ErrUnknownCurrency) || !c.IsZero() {
		t.Errorf("UnmarshalText(usd) = %v, left %v", err, c)
	}
	if _, err := c.MarshalText(); !errors.Is(err, money.ErrUnknownCurrency) {
		t.Errorf("zero Currency MarshalText error = %v, want ErrUnknownCurrency", err)
	}
	if err := c.UnmarshalText([]byte("BHD")); err != nil || c != money.BHD {
		t.Errorf("UnmarshalText(BHD) = %v, %v", c, err)
	}
	if b, err := c.MarshalText(); err != nil || string(b) != "BHD" {
		t.Errorf("MarshalText(BHD) = %q, %v", b, err)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustCurrency(usd) did not panic")
		}
	}()
	money.MustCurrency("usd")
}

func TestParse(t *testing.T) {
	tests := []struct {
		amount, code string
		fixed        string // StringFixed
		minor        int64
	}{
		{"0", "USD", "0.00", 0},
		{"12.30", "USD", "12.30", 1230},
		{"12.3", "USD", "12.30", 1230},
		{"1500", "JPY", "1500", 1500},
		{"1.234", "BHD", "1.234", 1234},
		{"0.0001", "CLF", "0.0001", 1},
		{"-5.00", "USD", "-5.00", -500},
		{"-5", "USD", "-5.00", -500},
		{"-0", "USD", "0.00", 0},
		{"-0.00", "EUR", "0.00", 0},
		{"-0", "JPY", "0", 0},
		{"007.50", "EUR", "7.50", 750},
		{strings.Repeat("0", 63) + "1", "USD", "1.00", 100}, // the longest accepted input
		{"00000000000000000000000000000000000000000000000000.5", "USD", "0.50", 50},
		// Zeros past the exponent do not add precision: the value has two decimals.
		{"1.230", "USD", "1.23", 123},
		{"1.0", "JPY", "1", 1},
		{"0.00000000000000000000000000000000000000000000000000", "USD", "0.00", 0},
		{"99999999999999.99", "USD", "99999999999999.99", 9999999999999999},
		{"-99999999999999.99", "USD", "-99999999999999.99", -9999999999999999},
		{"99999999999999", "JPY", "99999999999999", 99999999999999},
		{"99999999999999.9999", "CLF", "99999999999999.9999", 999999999999999999},
		{"00099999999999999", "JPY", "99999999999999", 99999999999999},
	}
	for _, tt := range tests {
		t.Run(tt.amount+"_"+tt.code, func(t *testing.T) {
			m, err := money.Parse(tt.amount, tt.code)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := m.StringFixed(); got != tt.fixed {
				t.Errorf("StringFixed() = %q, want %q", got, tt.fixed)
			}
			if got := m.MinorUnits(); got != tt.minor {
				t.Errorf("MinorUnits() = %d, want %d", got, tt.minor)
			}
			if got, want := m.Amount().Exponent(), -m.Currency().Exponent(); got != want {
				t.Errorf("Amount() has exponent %d, want the currency's %d", got, want)
			}
			if m.Currency().Code() != tt.code || !m.IsValid() {
				t.Errorf("Currency() = %v, valid %v", m.Currency(), m.IsValid())
			}
			if tt.minor == 0 && (!m.IsZero() || m.IsNegative() || m.IsPositive()) {
				t.Errorf("zero amount: IsZero %v IsNegative %v IsPositive %v", m.IsZero(), m.IsNegative(), m.IsPositive())
			}
			if back := mustParse(t, m.StringFixed(), tt.code); !back.Equal(m) {
				t.Errorf("Parse(StringFixed()) = %v, want %v", back, m)
			}
			in, err := money.ParseIn(tt.amount, m.Currency())
			if err != nil || !in.Equal(m) {
				t.Errorf("ParseIn = %v, %v; want %v", in, err, m)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	long := strings.Repeat("9", 65)
	tests := []struct {
		amount, code string
		want         error
	}{
		{"", "USD", money.ErrInvalidAmount},
		{" 1", "USD", money.ErrInvalidAmount},
		{"1 ", "USD", money.ErrInvalidAmount},
		{"\t1", "USD", money.ErrInvalidAmount},
		{"1e3", "USD", money.ErrInvalidAmount},
		{"1E400", "USD", money.ErrInvalidAmount},
		{"1e-400", "USD", money.ErrInvalidAmount},
		{"NaN", "USD", money.ErrInvalidAmount},
		{"nan", "USD", money.ErrInvalidAmount},
		{"Inf", "USD", money.ErrInvalidAmount},
		{"-Inf", "USD", money.ErrInvalidAmount},
		{"+Inf", "USD", money.ErrInvalidAmount},
		{"Infinity", "USD", money.ErrInvalidAmount},
		{"+1", "USD", money.ErrInvalidAmount},
		{"1.", "USD", money.ErrInvalidAmount},
		{".5", "USD", money.ErrInvalidAmount},
		{"-.5", "USD", money.ErrInvalidAmount},
		{".", "USD", money.ErrInvalidAmount},
		{"-", "USD", money.ErrInvalidAmount},
		{"--1", "USD", money.ErrInvalidAmount},
		{"-+1", "USD", money.ErrInvalidAmount},
		{"1-", "USD", money.ErrInvalidAmount},
		{"1.2.3", "USD", money.ErrInvalidAmount},
		{"1..2", "USD", money.ErrInvalidAmount},
		{"1,000.00", "USD", money.ErrInvalidAmount},
		{"1,5", "EUR", money.ErrInvalidAmount},
		{"1_000", "USD", money.ErrInvalidAmount},
		{"1'000", "CHF", money.ErrInvalidAmount},
		{"0x10", "USD", money.ErrInvalidAmount},
		{"0b1", "USD", money.ErrInvalidAmount},
		{"１２", "USD", money.ErrInvalidAmount},         // full-width digits
		{"١٢", "USD", money.ErrInvalidAmount},         // Arabic-Indic digits
		{"\u22121", "USD", money.ErrInvalidAmount},    // minus sign, which the decimal library itself accepts
		{"1\u00a0000", "USD", money.ErrInvalidAmount}, // no-break space
		{"\x00", "USD", money.ErrInvalidAmount},
		{"1\x00", "USD", money.ErrInvalidAmount},
		{"$1", "USD", money.ErrInvalidAmount},
		{"1 USD", "USD", money.ErrInvalidAmount},
		{long, "USD", money.ErrInvalidAmount}, // longer than 64 characters
		{"1.5", "JPY", money.ErrTooManyDecimals},
		{"0.001", "USD", money.ErrTooManyDecimals},
		{"-0.001", "USD", money.ErrTooManyDecimals},
		{"12.345", "EUR", money.ErrTooManyDecimals},
		{"1.2345", "BHD", money.ErrTooManyDecimals},
		{"0.00001", "CLF", money.ErrTooManyDecimals},
		{"0.00000000000000000000000000000000000000000000000000001", "USD", money.ErrTooManyDecimals},
		{"99999999999999.995", "USD", money.ErrTooManyDecimals},
		{"100000000000000", "USD", money.ErrOutOfRange}, // 15 digits
		{"-100000000000000", "USD", money.ErrOutOfRange},
		{"100000000000000.00", "USD", money.ErrOutOfRange},
		{"100000000000000", "JPY", money.ErrOutOfRange},
		{"999999999999999999999", "USD", money.ErrOutOfRange},
		{"12.30", "usd", money.ErrUnknownCurrency},
		{"12.30", "US", money.ErrUnknownCurrency},
		{"12.30", "USDD", money.ErrUnknownCurrency},
		{"12.30", "XXX", money.ErrUnknownCurrency},
		{"12.30", "XAU", money.ErrUnknownCurrency},
		{"12.30", "", money.ErrUnknownCurrency},
		{"NaN", "usd", money.ErrUnknownCurrency}, // the code is checked first
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q_%s", tt.amount, tt.code), func(t *testing.T) {
			m, err := money.Parse(tt.amount, tt.code)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %v, %v; want %v", m, err, tt.want)
			}
			if m.IsValid() {
				t.Errorf("Parse returned a valid Money %v with its error", m)
			}
		})
	}
}

func TestMustParse(t *testing.T) {
	if m := money.MustParse("1.50", "USD"); m.MinorUnits() != 150 {
		t.Errorf("MustParse = %v", m)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustParse(1.5, JPY) did not panic")
		}
	}()
	money.MustParse("1.5", "JPY")
}

func TestString(t *testing.T) {
	tests := []struct {
		m    money.Money
		want string
	}{
		{mustParse(t, "12.3", "USD"), "12.30 USD"},
		{mustParse(t, "12", "USD"), "12.00 USD"},
		{mustParse(t, "-0.5", "USD"), "-0.50 USD"},
		{mustParse(t, "1500", "JPY"), "1500 JPY"},
		{mustParse(t, "1500.000", "JPY"), "1500 JPY"},
		{mustParse(t, "1.2", "BHD"), "1.200 BHD"},
		{mustParse(t, "0.001", "BHD"), "0.001 BHD"},
		{mustParse(t, "0", "CLF"), "0.0000 CLF"},
		{money.Zero(money.JPY), "0 JPY"},
		{money.Zero(money.USD), "0.00 USD"},
		{mustParse(t, "-0.01", "EUR").Neg(), "0.01 EUR"},
		{mustParse(t, "-7.5", "EUR").Abs(), "7.50 EUR"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		if got := fmt.Sprint(tt.m); got != tt.want {
			t.Errorf("fmt.Sprint = %q, want %q", got, tt.want)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		amount decimal.Decimal
		cur    money.Currency
		fixed  string
		want   error
	}{
		{decimal.New(1230, -2), money.USD, "12.30", nil},
		{decimal.New(123, -1), money.USD, "12.30", nil},
		{decimal.New(15, 2), money.JPY, "1500", nil},
		{decimal.New(1500000, -3), money.JPY, "1500", nil},
		{decimal.Decimal{}, money.USD, "0.00", nil},
		{decimal.New(15, -1), money.JPY, "", money.ErrTooManyDecimals},
		{decimal.New(1, 14), money.USD, "", money.ErrOutOfRange},
		{decimal.New(-1, 14), money.USD, "", money.ErrOutOfRange},
		{decimal.New(1, 0), money.Currency{}, "", money.ErrUnknownCurrency},
		// Exponents at the ends of int32 are answered without building 10^(2^31).
		{decimal.New(1, math.MinInt32), money.USD, "", money.ErrTooManyDecimals},
		{decimal.New(-7, math.MinInt32), money.JPY, "", money.ErrTooManyDecimals},
		{decimal.New(1, math.MaxInt32), money.USD, "", money.ErrOutOfRange},
		{decimal.New(-1, math.MaxInt32), money.BHD, "", money.ErrOutOfRange},
		{decimal.New(0, math.MinInt32), money.USD, "0.00", nil},
		{decimal.New(0, math.MaxInt32), money.USD, "0.00", nil},
		{decimal.New(1, -1_000_000_000), money.USD, "", money.ErrTooManyDecimals},
		{decimal.NewFromBigInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(1000), nil), -1000), money.USD, "1.00", nil},
		{decimal.NewFromBigInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(1000), nil), -986), money.USD, "", money.ErrOutOfRange},
	}
	for _, tt := range tests {
		m, err := money.New(tt.amount, tt.cur)
		if !errors.Is(err, tt.want) {
			t.Errorf("New(%#v, %v) error = %v, want %v", tt.amount, tt.cur, err, tt.want)
			continue
		}
		if err == nil && m.StringFixed() != tt.fixed {
			t.Errorf("New(%#v, %v) = %q, want %q", tt.amount, tt.cur, m.StringFixed(), tt.fixed)
		}
	}
}

func TestArithmetic(t *testing.T) {
	a, b := mustParse(t, "10.25", "USD"), mustParse(t, "0.75", "USD")
	sum, err := a.Add(b)
	if err != nil || sum.String() != "11.00 USD" {
		t.Errorf("Add = %v, %v", sum, err)
	}
	diff, err := b.Sub(a)
	if err != nil || diff.String() != "-9.50 USD" {
		t.Errorf("Sub = %v, %v", diff, err)
	}
	if c, err := a.Cmp(b); err != nil || c != 1 {
		t.Errorf("Cmp = %d, %v", c, err)
	}
	if !b.LessThan(a) || !a.GreaterThan(b) || a.LessThan(a) || a.GreaterThan(a) {
		t.Error("LessThan/GreaterThan disagree with Cmp")
	}
	if !a.Equal(mustParse(t, "10.250", "USD")) || a.Equal(b) {
		t.Error("Equal compares the wrong thing")
	}
	if s, err := money.Sum(a, b, a); err != nil || s.String() != "21.25 USD" {
		t.Errorf("Sum = %v, %v", s, err)
	}
	if _, err := money.Sum(); !errors.Is(err, money.ErrInvalidAmount) {
		t.Errorf("Sum() error = %v, want ErrInvalidAmount", err)
	}
	if _, err := money.Sum(money.Money{}, money.Money{}); !errors.Is(err, money.ErrUnknownCurrency) {
		t.Errorf("Sum of zero Money error = %v, want ErrUnknownCurrency", err)
	}
	for n, want := range map[int64]string{0: "0.00 USD", 1: "10.25 USD", -3: "-30.75 USD", 1000: "10250.00 USD"} {
		if got, err := a.MulInt(n); err != nil || got.String() != want {
			t.Errorf("MulInt(%d) = %v, %v; want %s", n, got, err, want)
		}
	}
}

func TestArithmeticRefusesMixedCurrencies(t *testing.T) {
	usd, eur := mustParse(t, "1.00", "USD"), mustParse(t, "1.00", "EUR")
	ops := map[string]func() error{
		"Add": func() error { _, err := usd.Add(eur); return err },
		"Sub": func() error { _, err := usd.Sub(eur); return err },
		"Cmp": func() error { _, err := usd.Cmp(eur); return err },
		"Sum": func() error { _, err := money.Sum(usd, usd, eur); return err },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, money.ErrCurrencyMismatch) {
			t.Errorf("%s(USD, EUR) error = %v, want ErrCurrencyMismatch", name, err)
		}
	}
	if usd.Equal(eur) || usd.LessThan(eur) || usd.GreaterThan(eur) || usd.SameCurrency(eur) {
		t.Error("a USD amount compares with a EUR amount")
	}
}

func TestArithmeticOverflow(t *testing.T) {
	maxUSD := mustParse(t, "99999999999999.99", "USD")
	cent := mustParse(t, "0.01", "USD")
	ops := map[string]func() (money.Money, error){
		"max+0.01":    func() (money.Money, error) { return maxUSD.Add(cent) },
		"-max-0.01":   func() (money.Money, error) { return maxUSD.Neg().Sub(cent) },
		"max-(-max)":  func() (money.Money, error) { return maxUSD.Sub(maxUSD.Neg()) },
		"max*2":       func() (money.Money, error) { return maxUSD.MulInt(2) },
		"0.01*MaxI64": func() (money.Money, error) { return cent.MulInt(math.MaxInt64) },
		"0.01*MinI64": func() (money.Money, error) { return cent.MulInt(math.MinInt64) },
		"Sum":         func() (money.Money, error) { return money.Sum(maxUSD, cent, cent.Neg()) },
		"MulRound":    func() (money.Money, error) { return maxUSD.MulRound(decimal.RequireFromString("1.0000000000000001")) },
	}
	for name, op := range ops {
		if m, err := op(); !errors.Is(err, money.ErrOutOfRange) || m.IsValid() {
			t.Errorf("%s = %v, %v; want ErrOutOfRange", name, m, err)
		}
	}
	if m, err := maxUSD.Add(maxUSD.Neg()); err != nil || !m.IsZero() {
		t.Errorf("max + -max = %v, %v", m, err)
	}
}

func TestMulRoundHalfEven(t *testing.T) {
	tests := []struct {
		amount, code, factor, want string
	}{
		{"0.25", "USD", "0.5", "0.12"},   // 0.125: tie, to even
		{"0.35", "USD", "0.5", "0.18"},   // 0.175: tie, to even
		{"-0.25", "USD", "0.5", "-0.12"}, // ties are symmetric around zero
		{"-0.35", "USD", "0.5", "-0.18"},
		{"0.01", "USD", "0.5", "0.00"},
		{"0.03", "USD", "0.5", "0.02"},
		{"1.00", "USD", "0.1250001", "0.13"}, // just above a tie
		{"1.00", "USD", "0.1249999", "0.12"}, // just below
		{"10.00", "USD", "0.0825", "0.82"},   // 0.825
		{"19.99", "USD", "0.19", "3.80"},     // 3.7981
		{"100.00", "EUR", "1", "100.00"},
		{"100.00", "EUR", "-1", "-100.00"},
		{"100.00", "EUR", "0", "0.00"},
		{"1", "JPY", "0.5", "0"},
		{"1", "JPY", "1.5", "2"},
		{"1", "JPY", "2.5", "2"},
		{"1", "JPY", "3.5", "4"},
		{"-1", "JPY", "2.5", "-2"},
		{"-1", "JPY", "3.5", "-4"},
		{"1.000", "BHD", "0.0005", "0.000"},
		{"1.000", "BHD", "0.0015", "0.002"},
		{"0.0001", "CLF", "0.5", "0.0000"},
		{"0.0003", "CLF", "0.5", "0.0002"},
		{"123.45", "USD", "1.000000000000000000000000000000000000000000000000000000000001", "123.45"},
		{"0.01", "USD", "1E+13", "100000000000.00"},
		{"0.01", "USD", "0.5000000000000000000000000000000000000000000000000000000001", "0.01"},
	}
	for _, tt := range tests {
		m := mustParse(t, tt.amount, tt.code)
		got, err := m.MulRound(decimal.RequireFromString(tt.factor))
		if err != nil || got.StringFixed() != tt.want {
			t.Errorf("%s %s × %s = %v, %v; want %s", tt.amount, tt.code, tt.factor, got, err, tt.want)
		}
	}
}

// TestMulRoundExtremeFactors: a factor whose exponent is near the ends of
// int32 must neither panic (the decimal library panics when m's and f's
// exponents overflow int32 together) nor build a power of ten with billions of
// digits.
func TestMulRoundExtremeFactors(t *testing.T) {
	m := mustParse(t, "12.34", "USD")
	tests := []struct {
		factor decimal.Decimal
		want   error
		fixed  string
	}{
		{decimal.New(1, math.MinInt32), nil, "0.00"},
		{decimal.New(-999999, math.MinInt32+5), nil, "0.00"},
		{decimal.New(1, -1_000_000_000), nil, "0.00"},
		{decimal.New(1, math.MaxInt32), money.ErrOutOfRange, ""},
		{decimal.New(-3, math.MaxInt32-1), money.ErrOutOfRange, ""},
		{decimal.New(1, 1_000_000_000), money.ErrOutOfRange, ""},
		{decimal.New(0, math.MinInt32), nil, "0.00"},
		{decimal.New(0, math.MaxInt32), nil, "0.00"},
		{decimal.New(5, -4), nil, "0.01"}, // 0.00617
		{decimal.New(4, -4), nil, "0.00"}, // 0.004936
		{decimal.New(1, 12), nil, ""},     // 12340000000000.00: in range
		{decimal.New(1, 13), money.ErrOutOfRange, ""},
	}
	for _, tt := range tests {
		got, err := m.MulRound(tt.factor)
		if !errors.Is(err, tt.want) {
			t.Errorf("MulRound(%#v) error = %v, want %v", tt.factor, err, tt.want)
			continue
		}
		if err == nil && tt.fixed != "" && got.StringFixed() != tt.fixed {
			t.Errorf("MulRound(%#v) = %v, want %s", tt.factor, got, tt.fixed)
		}
	}
	if _, err := (money.Money{}).MulRound(decimal.New(1, 0)); !errors.Is(err, money.ErrUnknownCurrency) {
		t.Errorf("zero Money MulRound error = %v, want ErrUnknownCurrency", err)
	}
}

func TestMinorUnits(t *testing.T) {
	for _, code := range money.Currencies() {
		c := mustCurrency(t, code)
		limit := int64(math.Pow10(money.MaxIntegerDigits + int(c.Exponent()))) // exclusive, exact in float64
		for _, minor := range []int64{0, 1, -1, 5, 1234, -98765, limit - 1, -(limit - 1)} {
			m, err := money.FromMinor(minor, c)
			if err != nil {
				t.Errorf("FromMinor(%d, %s): %v", minor, code, err)
				continue
			}
			if got := m.MinorUnits(); got != minor {
				t.Errorf("FromMinor(%d, %s).MinorUnits() = %d", minor, code, got)
			}
			if back := mustParse(t, m.StringFixed(), code); !back.Equal(m) {
				t.Errorf("FromMinor(%d, %s) does not survive StringFixed: %v", minor, code, back)
			}
		}
		for _, minor := range []int64{limit, -limit, math.MaxInt64, math.MinInt64} {
			if m, err := money.FromMinor(minor, c); !errors.Is(err, money.ErrOutOfRange) {
				t.Errorf("FromMinor(%d, %s) = %v, %v; want ErrOutOfRange", minor, code, m, err)
			}
		}
	}
	if m := mustParse(t, "12.34", "USD"); m.MinorUnits() != 1234 {
		t.Errorf("12.34 USD = %d minor units", m.MinorUnits())
	}
	if _, err := money.FromMinor(1, money.Currency{}); !errors.Is(err, money.ErrUnknownCurrency) {
		t.Errorf("FromMinor in the zero Currency error = %v", err)
	}
}

func TestJSON(t *testing.T) {
	tests := []struct {
		m    money.Money
		want string
	}{
		{mustParse(t, "12.3", "USD"), `{"amount":"12.30","currency":"USD"}`},
		{mustParse(t, "-0", "USD"), `{"amount":"0.00","currency":"USD"}`},
		{mustParse(t, "1500", "JPY"), `{"amount":"1500","currency":"JPY"}`},
		{mustParse(t, "-1.5", "BHD"), `{"amount":"-1.500","currency":"BHD"}`},
		{mustParse(t, "99999999999999.9999", "CLF"), `{"amount":"99999999999999.9999","currency":"CLF"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.m)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tt.m, b, err, tt.want)
			continue
		}
		var back money.Money
		if err := json.Unmarshal(b, &back); err != nil || !back.Equal(tt.m) {
			t.Errorf("Unmarshal(%s) = %v, %v", b, back, err)
		}
	}

	type line struct {
		SKU   string      `json:"sku"`
		Price money.Money `json:"price"`
	}
	in := line{SKU: "A-1", Price: mustParse(t, "9.99", "EUR")}
	b, err := json.Marshal(in)
	if err != nil || string(b) != `{"sku":"A-1","price":{"amount":"9.99","currency":"EUR"}}` {
		t.Fatalf("Marshal(line) = %s, %v", b, err)
	}
	var out line
	if err := json.Unmarshal(b, &out); err != nil || out.SKU != in.SKU || !out.Price.Equal(in.Price) {
		t.Errorf("Unmarshal(line) = %+v, %v", out, err)
	}
}

func TestJSONRejects(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{`{"amount":12.30,"currency":"USD"}`, money.ErrInvalidAmount}, // a number, not a string
		{`{"amount":1230,"currency":"USD"}`, money.ErrInvalidAmount},
		{`{"amount":"12.30"}`, money.ErrUnknownCurrency},
		{`{"amount":"12.30","currency":""}`, money.ErrUnknownCurrency},
		{`{"amount":"12.30","currency":"usd"}`, money.ErrUnknownCurrency},
		{`{"amount":"12.30","currency":840}`, money.ErrInvalidAmount},
		{`{"currency":"USD"}`, money.ErrInvalidAmount},
		{`{"amount":null,"currency":"USD"}`, money.ErrInvalidAmount},
		{`{"amount":"12.345","currency":"USD"}`, money.ErrTooManyDecimals},
		{`{"amount":"1.5","currency":"JPY"}`, money.ErrTooManyDecimals},
		{`{"amount":"1e3","currency":"USD"}`, money.ErrInvalidAmount},
		{`{"amount":"NaN","currency":"USD"}`, money.ErrInvalidAmount},
		{`{"amount":" 1","currency":"USD"}`, money.ErrInvalidAmount},
		{`{"amount":"100000000000000","currency":"USD"}`, money.ErrOutOfRange},
		{`"12.30 USD"`, money.ErrInvalidAmount},
		{`12.30`, money.ErrInvalidAmount},
		{`[]`, money.ErrInvalidAmount},
		{`{"amount":"1","currency":"USD"`, money.ErrInvalidAmount},
		{``, money.ErrInvalidAmount},
		{`{}`, money.ErrUnknownCurrency},
		{`null`, money.ErrUnknownCurrency},
	}
	for _, tt := range tests {
		before := mustParse(t, "7.00", "GBP")
		m := before
		err := m.UnmarshalJSON([]byte(tt.in))
		if !errors.Is(err, tt.want) {
			t.Errorf("UnmarshalJSON(%s) = %v, want %v", tt.in, err, tt.want)
		}
		if !m.Equal(before) {
			t.Errorf("UnmarshalJSON(%s) changed its receiver to %v on error", tt.in, m)
		}
	}
	// Through encoding/json, in a struct field, the sentinel still matches.
	var v struct{ Price money.Money }
	if err := json.Unmarshal([]byte(`{"Price":{"amount":"1.234","currency":"USD"}}`), &v); !errors.Is(err, money.ErrTooManyDecimals) {
		t.Errorf("json.Unmarshal error = %v, want ErrTooManyDecimals", err)
	}
}

func TestZeroMoneyRefusesToMarshal(t *testing.T) {
	var zero money.Money
	if zero.IsValid() {
		t.Fatal("the zero Money is valid")
	}
	if b, err := zero.MarshalJSON(); !errors.Is(err, money.ErrUnknownCurrency) {
		t.Errorf("MarshalJSON() = %s, %v; want ErrUnknownCurrency", b, err)
	}
	if b, err := json.Marshal(struct{ Price money.Money }{}); !errors.Is(err, money.ErrUnknownCurrency) {
		t.Errorf("json.Marshal of a struct with a zero Money = %s, %v; want ErrUnknownCurrency", b, err)
	}
}

func TestAllocate(t *testing.T) {
	tests := []struct {
		amount, code string
		ratios       []int64
		want         []string
	}{
		{"10.00", "USD", []int64{1, 1, 1}, []string{"3.34", "3.33", "3.33"}},
		{"-10.00", "USD", []int64{1, 1, 1}, []string{"-3.34", "-3.33", "-3.33"}},
		{"0.05", "USD", []int64{3, 7}, []string{"0.02", "0.03"}}, // 1.5 and 3.5 cents: the tie goes to the first
		{"0.05", "USD", []int64{7, 3}, []string{"0.04", "0.01"}},
		{"100", "JPY", []int64{1, 1, 1}, []string{"34", "33", "33"}},
		{"1", "JPY", []int64{1, 1, 1}, []string{"1", "0", "0"}},
		{"2", "JPY", []int64{1, 1, 1}, []string{"1", "1", "0"}},
		{"10.00", "USD", []int64{0, 1, 0, 1}, []string{"0.00", "5.00", "0.00", "5.00"}},
		{"0.01", "USD", []int64{0, 0, 5}, []string{"0.00", "0.00", "0.01"}},
		{"0.01", "USD", []int64{math.MaxInt64, math.MaxInt64, 1}, []string{"0.01", "0.00", "0.00"}},
		{"100.00", "EUR", []int64{math.MaxInt64, math.MaxInt64}, []string{"50.00", "50.00"}},
		{"1.000", "BHD", []int64{1, 2, 3}, []string{"0.167", "0.333", "0.500"}},
		{"0.00", "USD", []int64{1, 2}, []string{"0.00", "0.00"}},
		{"99999999999999.99", "USD", []int64{1, 1}, []string{"50000000000000.00", "49999999999999.99"}},
		{"7.00", "GBP", []int64{5}, []string{"7.00"}},
		// Remainders 0.5, 0.8, 0.7 cents: the two largest get the two spare cents.
		{"0.10", "USD", []int64{15, 38, 47}, []string{"0.01", "0.04", "0.05"}},
	}
	for _, tt := range tests {
		m := mustParse(t, tt.amount, tt.code)
		parts, err := m.Allocate(tt.ratios...)
		if err != nil {
			t.Errorf("Allocate(%s %s, %v): %v", tt.amount, tt.code, tt.ratios, err)
			continue
		}
		got := make([]string, len(parts))
		for i, p := range parts {
			got[i] = p.StringFixed()
			if p.Currency() != m.Currency() {
				t.Errorf("part %d in %v", i, p.Currency())
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Allocate(%s %s, %v) = %v, want %v", tt.amount, tt.code, tt.ratios, got, tt.want)
		}
	}
}

func TestAllocateRejects(t *testing.T) {
	m := mustParse(t, "10.00", "USD")
	for _, ratios := range [][]int64{nil, {}, {0}, {0, 0, 0}, {1, -1}, {-1}, {math.MinInt64, 1}} {
		if parts, err := m.Allocate(ratios...); !errors.Is(err, money.ErrInvalidAllocation) || parts != nil {
			t.Errorf("Allocate(%v) = %v, %v; want ErrInvalidAllocation", ratios, parts, err)
		}
	}
	for _, n := range []int{0, -1, math.MinInt} {
		if parts, err := m.Split(n); !errors.Is(err, money.ErrInvalidAllocation) || parts != nil {
			t.Errorf("Split(%d) = %v, %v; want ErrInvalidAllocation", n, parts, err)
		}
	}
	if parts, err := (money.Money{}).Split(2); !errors.Is(err, money.ErrUnknownCurrency) {
		t.Errorf("zero Money Split(2) = %v, %v; want ErrUnknownCurrency", parts, err)
	}
}

func TestSplit(t *testing.T) {
	m := mustParse(t, "10.00", "USD")
	parts, err := m.Split(3)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(parts); got != "[3.34 USD 3.33 USD 3.33 USD]" {
		t.Errorf("Split(3) = %s", got)
	}
	// Many parts with many spare units: the leftover units must be handed out
	// in O(n log n), not one full scan per unit.
	m = mustParse(t, "999.99", "USD")
	const n = 200_000
	parts, err = m.Split(n)
	if err != nil {
		t.Fatal(err)
	}
	ones := 0
	for _, p := range parts {
		ones += int(p.MinorUnits())
	}
	if ones != 99999 || parts[0].MinorUnits() != 1 || parts[99998].MinorUnits() != 1 || parts[99999].MinorUnits() != 0 {
		t.Errorf("Split(%d) of 999.99: %d cents handed out, first spare cents to %v..%v", n, ones, parts[0], parts[99999])
	}
}

// randomMoney draws an amount whose magnitude is spread over every number of
// digits, so tiny, typical and near-limit amounts are all common.
func randomMoney(r *rand.Rand, codes []string) money.Money {
	c, _ := money.ParseCurrency(codes[r.IntN(len(codes))])
	limit := int64(math.Pow10(money.MaxIntegerDigits + int(c.Exponent())))
	digits := r.IntN(money.MaxIntegerDigits + int(c.Exponent()) + 1)
	minor := r.Int64N(int64(math.Pow10(digits)))
	switch r.IntN(20) {
	case 0:
		minor = 0
	case 1:
		minor = limit - 1 - r.Int64N(3)
	}
	if r.IntN(3) == 0 {
		minor = -minor
	}
	m, err := money.FromMinor(minor, c)
	if err != nil {
		panic(err)
	}
	return m
}

// randomRatios draws 1 to 12 ratios mixing zeros, small, large and huge
// values; at least one is positive.
func randomRatios(r *rand.Rand) []int64 {
	ratios := make([]int64, 1+r.IntN(12))
	for {
		for i := range ratios {
			switch r.IntN(5) {
			case 0:
				ratios[i] = 0
			case 1:
				ratios[i] = 1 + r.Int64N(10)
			case 2:
				ratios[i] = 1 + r.Int64N(1_000_000)
			case 3:
				ratios[i] = r.Int64N(math.MaxInt64) + 1
			default:
				ratios[i] = math.MaxInt64 - r.Int64N(1000)
			}
		}
		if slices.ContainsFunc(ratios, func(x int64) bool { return x > 0 }) {
			return ratios
		}
	}
}

// checkAllocation verifies what the largest remainder method promises: the
// parts are in m's currency and minor units, carry m's sign, sum to m
// exactly, each is the floor of its exact share |m|*r/R in minor units or one
// more (so it differs from the share by less than one unit), and the spare
// units went to the largest remainders, ties to the earlier part.
func checkAllocation(tb testing.TB, m money.Money, ratios []int64, parts []money.Money) {
	tb.Helper()
	if len(parts) != len(ratios) {
		tb.Fatalf("Allocate(%v, %v) returned %d parts", m, ratios, len(parts))
	}
	exp := m.Currency().Exponent()
	total := new(big.Int)
	for _, r := range ratios {
		total.Add(total, big.NewInt(r))
	}
	whole := new(big.Int).Abs(big.NewInt(m.MinorUnits()))
	sum := money.Zero(m.Currency())
	// Of the parts rounded up, the smallest remainder and the last index
	// holding it; of the parts rounded down, the largest remainder and the
	// first index holding it.
	var minUp, maxDown *big.Int
	lastUp, firstDown := -1, -1
	for i, p := range parts {
		if p.Currency() != m.Currency() {
			tb.Fatalf("Allocate(%v, %v): part %d is in %v", m, ratios, i, p.Currency())
		}
		if !p.Amount().Equal(p.Amount().Truncate(exp)) {
			tb.Fatalf("Allocate(%v, %v): part %d = %s is not in minor units", m, ratios, i, p.Amount())
		}
		if (m.IsNegative() && p.IsPositive()) || (m.IsPositive() && p.IsNegative()) {
			tb.Fatalf("Allocate(%v, %v): part %d = %v has the wrong sign", m, ratios, i, p)
		}
		var err error
		if sum, err = sum.Add(p); err != nil {
			tb.Fatalf("Allocate(%v, %v): summing parts: %v", m, ratios, err)
		}
		share := new(big.Int).Mul(whole, big.NewInt(ratios[i]))
		floor, rem := new(big.Int).QuoRem(share, total, new(big.Int))
		switch new(big.Int).Sub(big.NewInt(p.Abs().MinorUnits()), floor).Int64() {
		case 0:
			if maxDown == nil || rem.Cmp(maxDown) > 0 {
				maxDown, firstDown = rem, i
			}
		case 1:
			if rem.Sign() == 0 {
				tb.Fatalf("Allocate(%v, %v): part %d = %v got a spare unit but its share %s/%s is exact", m, ratios, i, p, share, total)
			}
			if minUp == nil || rem.Cmp(minUp) <= 0 {
				minUp, lastUp = rem, i
			}
		default:
			tb.Fatalf("Allocate(%v, %v): part %d = %v is not within one minor unit of its share %s/%s", m, ratios, i, p, share, total)
		}
	}
	if !sum.Equal(m) {
		tb.Fatalf("Allocate(%v, %v): parts sum to %v", m, ratios, sum)
	}
	if minUp != nil && maxDown != nil {
		if c := minUp.Cmp(maxDown); c < 0 || (c == 0 && lastUp > firstDown) {
			tb.Fatalf("Allocate(%v, %v): part %d (remainder %s) got a spare unit before part %d (remainder %s)",
				m, ratios, lastUp, minUp, firstDown, maxDown)
		}
	}
}

func TestAllocateProperties(t *testing.T) {
	iterations := 20_000
	if testing.Short() {
		iterations = 2_000
	}
	r := rand.New(rand.NewPCG(2026, 4217))
	codes := money.Currencies()
	for range iterations {
		m := randomMoney(r, codes)
		ratios := randomRatios(r)
		parts, err := m.Allocate(ratios...)
		if err != nil {
			t.Fatalf("Allocate(%v, %v): %v", m, ratios, err)
		}
		checkAllocation(t, m, ratios, parts)
	}
	t.Logf("%d random allocations checked", iterations)
}

func TestSplitProperties(t *testing.T) {
	iterations := 20_000
	if testing.Short() {
		iterations = 2_000
	}
	r := rand.New(rand.NewPCG(1972, 2))
	codes := money.Currencies()
	for range iterations {
		m := randomMoney(r, codes)
		n := 1 + r.IntN(40)
		if r.IntN(10) == 0 {
			n = 1 + r.IntN(2000)
		}
		parts, err := m.Split(n)
		if err != nil {
			t.Fatalf("Split(%v, %d): %v", m, n, err)
		}
		ratios := make([]int64, n)
		for i := range ratios {
			ratios[i] = 1
		}
		checkAllocation(t, m, ratios, parts)
		lo, hi := parts[0].MinorUnits(), parts[0].MinorUnits()
		for i, p := range parts {
			lo, hi = min(lo, p.MinorUnits()), max(hi, p.MinorUnits())
			if i > 0 && p.Abs().GreaterThan(parts[i-1].Abs()) {
				t.Fatalf("Split(%v, %d): part %d = %v is larger than the one before it", m, n, i, p)
			}
		}
		if hi-lo > 1 {
			t.Fatalf("Split(%v, %d): parts range over %d minor units", m, n, hi-lo)
		}
	}
	t.Logf("%d random splits checked", iterations)
}

func TestRoundTripProperties(t *testing.T) {
	iterations := 50_000
	if testing.Short() {
		iterations = 5_000
	}
	r := rand.New(rand.NewPCG(12, 30))
	codes := money.Currencies()
	for range iterations {
		m := randomMoney(r, codes)
		code := m.Currency().Code()
		back, err := money.Parse(m.StringFixed(), code)
		if err != nil || !back.Equal(m) {
			t.Fatalf("Parse(%q, %s) = %v, %v; want %v", m.StringFixed(), code, back, err, m)
		}
		if fm, err := money.FromMinor(m.MinorUnits(), m.Currency()); err != nil || !fm.Equal(m) {
			t.Fatalf("FromMinor(%d, %s) = %v, %v; want %v", m.MinorUnits(), code, fm, err, m)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(%v): %v", m, err)
		}
		var j money.Money
		if err := json.Unmarshal(b, &j); err != nil || !j.Equal(m) {
			t.Fatalf("Unmarshal(%s) = %v, %v; want %v", b, j, err, m)
		}
		// Arithmetic agrees with integer arithmetic on minor units.
		o := randomMoney(r, []string{code})
		if s, err := m.Add(o); err == nil && s.MinorUnits() != m.MinorUnits()+o.MinorUnits() {
			t.Fatalf("%v + %v = %v", m, o, s)
		} else if err != nil && !errors.Is(err, money.ErrOutOfRange) {
			t.Fatalf("%v + %v: %v", m, o, err)
		}
	}
	t.Logf("%d random round trips checked", iterations)
}

func BenchmarkParse(b *testing.B) {
	for _, in := range []struct{ amount, code string }{
		{"12.30", "USD"},
		{"-99999999999999.99", "USD"},
		{"1500", "JPY"},
		{"1,000.00", "USD"}, // rejected
	} {
		b.Run(in.amount+"_"+in.code, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = money.Parse(in.amount, in.code)
			}
		})
	}
}

func BenchmarkString(b *testing.B) {
	m := mustParse(b, "12345.67", "EUR")
	b.ReportAllocs()
	for b.Loop() {
		_ = m.String()
	}
}

func BenchmarkAllocate12(b *testing.B) {
	m := mustParse(b, "1234567.89", "USD")
	ratios := []int64{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31} // days per month
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Allocate(ratios...); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSplit3(b *testing.B) {
	m := mustParse(b, "10.00", "USD")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Split(3); err != nil {
			b.Fatal(err)
		}
	}
}
