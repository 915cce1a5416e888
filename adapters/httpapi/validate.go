package httpapi

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/livecore/livecore/domain/money"
)

// Path names a field in a request, in the JSON names the client sent:
// Path("items").Index(0).Key("unit_price").Key("amount") is
// "items[0].unit_price.amount". The zero Path is the whole body.
type Path string

// Key is p's member name.
func (p Path) Key(name string) Path {
	if !isIdent(name) {
		return p + Path("["+strconv.Quote(name)+"]")
	}
	if p == "" {
		return Path(name)
	}
	return p + "." + Path(name)
}

// Index is p's i-th element.
func (p Path) Index(i int) Path { return p + Path("["+strconv.Itoa(i)+"]") }

func (p Path) String() string { return string(p) }

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Money is the wire form of an amount: {"amount":"12.30","currency":"USD"}.
// The amount is a string so that no JSON number (a float in most clients)
// ever carries money; requests declare Money and convert it with
// Validator.Money, which names the offending field on error.
type Money struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// MoneyOf is the wire form of m (amount with exactly the currency's
// decimals: "12.30", "1500").
func MoneyOf(m money.Money) Money {
	return Money{Amount: m.StringFixed(), Currency: m.Currency().Code()}
}

var syntaxOnly = money.MustCurrency("CLF")

// maxFieldErrors bounds the field errors one response lists.
const maxFieldErrors = 50

// Validator collects field errors so that one response names every bad
// field, not only the first. The zero Validator is ready; it is not safe for
// concurrent use.
type Validator struct {
	fields []FieldError
}

// Add records a field error. Past maxFieldErrors further errors are dropped.
func (v *Validator) Add(field Path, code, message string) {
	if len(v.fields) < maxFieldErrors {
		v.fields = append(v.fields, FieldError{Field: string(field), Code: code, Message: message})
	}
}

// Check records a field error unless ok, and returns ok.
func (v *Validator) Check(ok bool, field Path, code, message string) bool {
	if !ok {
		v.Add(field, code, message)
	}
	return ok
}

// Required checks that s is not empty (after trimming spaces).
func (v *Validator) Required(s string, field Path) bool {
	return v.Check(strings.TrimSpace(s) != "", field, "required", "is required")
}

// Money parses in with money.Parse and names the field on error: an unknown
// currency is reported at field.currency, a bad amount at field.amount with
// the money package's reason as code (invalid_amount, too_many_decimals,
// out_of_range). It returns the zero Money on error.
func (v *Validator) Money(field Path, in Money) money.Money {
	cur, err := money.ParseCurrency(in.Currency)
	if err != nil {
		if in.Currency == "" {
			v.Add(field.Key("currency"), "required", "is required")
		} else {
			v.Add(field.Key("currency"), "unknown_currency", fmt.Sprintf("%q is not an ISO 4217 currency code", in.Currency))
		}
		// Still check the amount's syntax, so both mistakes show at once
		// (CLF has the largest exponent, 4; decimals are judged only
		// against the real currency).
		if _, aErr := money.ParseIn(in.Amount, syntaxOnly); aErr != nil && !errors.Is(aErr, money.ErrTooManyDecimals) {
			v.addMoneyErr(field, in, aErr)
		}
		return money.Money{}
	}
	m, err := money.ParseIn(in.Amount, cur)
	if err != nil {
		v.addMoneyErr(field, in, err)
		return money.Money{}
	}
	return m
}

// MoneyInput is Money for the API's MoneyInput fields, which are never
// negative: a leading '-' is refused (negative, and "-0" too: the spec
// allows no sign) at field.amount.
func (v *Validator) MoneyInput(field Path, in Money) money.Money {
	if strings.HasPrefix(in.Amount, "-") {
		v.Add(field.Key("amount"), "negative", "must not be negative (no sign)")
		return money.Money{}
	}
	return v.Money(field, in)
}

func (v *Validator) addMoneyErr(field Path, in Money, err error) {
	f := field.Key("amount")
	switch {
	case in.Amount == "":
		v.Add(f, "required", "is required")
	case errors.Is(err, money.ErrTooManyDecimals):
		v.Add(f, "too_many_decimals", fmt.Sprintf("%q has more decimal places than %s allows", in.Amount, in.Currency))
	case errors.Is(err, money.ErrOutOfRange):
		v.Add(f, "out_of_range", fmt.Sprintf("must be below 10^%d in absolute value", money.MaxIntegerDigits))
	default:
		v.Add(f, "invalid_amount", `must be a plain decimal string such as "12.30" (no exponent, sign other than a leading '-', spaces or separators)`)
	}
}

// Fields returns the errors collected so far.
func (v *Validator) Fields() []FieldError { return v.fields }

// Err returns nil when no field error was recorded, else an *Error with
// CodeInvalid (422) listing them.
func (v *Validator) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	msg := "1 field is invalid"
	if n := len(v.fields); n > 1 {
		msg = strconv.Itoa(n) + " fields are invalid"
	}
	return &Error{Code: CodeInvalid, Message: msg, Fields: v.fields}
}
