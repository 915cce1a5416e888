package financing

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/shopspring/decimal"
)

// Kind is a plan's shape. Closed set: the package variables or ParseKind.
type Kind struct {
	name string
	n    int
}

// Plan kinds.
var (
	// PayIn4: four equal installments, the first at checkout, then every
	// two weeks; always 0% APR.
	PayIn4 = Kind{"pay_in_4", 4}
	// Monthly3, Monthly6, Monthly12: monthly amortized installments, the
	// first one month after origination, at the plan's APR.
	Monthly3  = Kind{"monthly_3", 3}
	Monthly6  = Kind{"monthly_6", 6}
	Monthly12 = Kind{"monthly_12", 12}
)

var kinds = []Kind{PayIn4, Monthly3, Monthly6, Monthly12}

// ParseKind returns the kind named s ("pay_in_4", "monthly_3", "monthly_6",
// "monthly_12").
func ParseKind(s string) (Kind, error) {
	for _, k := range kinds {
		if k.name == s {
			return k, nil
		}
	}
	return Kind{}, fmt.Errorf("%w: plan kind %q", ErrInvalidCommand, s)
}

// Installments is the number of installments (4, 3, 6, 12).
func (k Kind) Installments() int { return k.n }

// IsMonthly reports whether k is one of the monthly kinds.
func (k Kind) IsMonthly() bool { return k.n > 0 && k != PayIn4 }

// IsZero reports whether k is the zero (invalid) Kind.
func (k Kind) IsZero() bool { return k.name == "" }

func (k Kind) String() string { return k.name }

// MarshalText encodes the name; the zero Kind is an error.
func (k Kind) MarshalText() ([]byte, error) {
	if k.IsZero() {
		return nil, fmt.Errorf("%w: zero plan kind", ErrInvalidCommand)
	}
	return []byte(k.name), nil
}

// UnmarshalText parses with ParseKind.
func (k *Kind) UnmarshalText(b []byte) error {
	p, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// MaxAPRBasisPoints is the highest APR a plan may carry: 36.00%, the cap
// most US states and consumer-credit rules treat as the ceiling.
const MaxAPRBasisPoints = 3600

// APR is an annual percentage rate in basis points (1999 is 19.99%), from 0
// to MaxAPRBasisPoints. The zero APR is 0%. It is JSON as the integer number
// of basis points, never a float.
type APR struct{ bp int }

// APRFromBasisPoints returns the APR of bp basis points.
func APRFromBasisPoints(bp int) (APR, error) {
	if bp < 0 || bp > MaxAPRBasisPoints {
		return APR{}, fmt.Errorf("%w: APR %d basis points is outside 0-%d", ErrInvalidCommand, bp, MaxAPRBasisPoints)
	}
	return APR{bp}, nil
}

// MustAPR is APRFromBasisPoints for constants and tests; it panics on error.
func MustAPR(bp int) APR {
	a, err := APRFromBasisPoints(bp)
	if err != nil {
		panic(err)
	}
	return a
}

// BasisPoints is the APR in basis points.
func (a APR) BasisPoints() int { return a.bp }

// Rate is the APR as a fraction (1999 basis points is 0.1999).
func (a APR) Rate() decimal.Decimal { return decimal.New(int64(a.bp), -4) }

func (a APR) String() string { return a.Rate().Shift(2).StringFixed(2) + "%" }

// MarshalJSON encodes the basis points as a JSON integer.
func (a APR) MarshalJSON() ([]byte, error) { return []byte(strconv.Itoa(a.bp)), nil }

// UnmarshalJSON decodes an integer number of basis points within range.
func (a *APR) UnmarshalJSON(b []byte) error {
	var bp int
	if err := json.Unmarshal(b, &bp); err != nil {
		return fmt.Errorf("%w: APR: %v", ErrInvalidCommand, err)
	}
	p, err := APRFromBasisPoints(bp)
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// Terms are what the customer chose: the plan kind and its APR.
type Terms struct {
	Kind Kind
	APR  APR
}

func (t Terms) validate() error {
	switch {
	case t.Kind.IsZero():
		return fmt.Errorf("%w: plan kind is required", ErrInvalidCommand)
	case t.Kind == PayIn4 && t.APR.bp != 0:
		return fmt.Errorf("%w: pay-in-4 is 0%% APR, got %s", ErrInvalidCommand, t.APR)
	}
	return nil
}

// ReasonCode says why a credit decision declined. Closed set.
type ReasonCode struct{ name string }

// Decline reasons.
var (
	ReasonCurrencyNotSupported  = ReasonCode{"currency_not_supported"}
	ReasonAmountBelowMinimum    = ReasonCode{"amount_below_minimum"}
	ReasonAmountAboveMaximum    = ReasonCode{"amount_above_maximum"}
	ReasonExposureLimitExceeded = ReasonCode{"exposure_limit_exceeded"}
	ReasonOpenDelinquency       = ReasonCode{"open_delinquency"}
)

var reasonCodes = []ReasonCode{
	ReasonCurrencyNotSupported, ReasonAmountBelowMinimum, ReasonAmountAboveMaximum,
	ReasonExposureLimitExceeded, ReasonOpenDelinquency,
}

// ParseReasonCode returns the reason named s.
func ParseReasonCode(s string) (ReasonCode, error) {
	for _, r := range reasonCodes {
		if r.name == s {
			return r, nil
		}
	}
	return ReasonCode{}, fmt.Errorf("%w: reason code %q", ErrInvalidCommand, s)
}

func (r ReasonCode) String() string { return r.name }

// MarshalText encodes the name; the zero ReasonCode is an error.
func (r ReasonCode) MarshalText() ([]byte, error) {
	if r.name == "" {
		return nil, fmt.Errorf("%w: zero reason code", ErrInvalidCommand)
	}
	return []byte(r.name), nil
}

// UnmarshalText parses with ParseReasonCode.
func (r *ReasonCode) UnmarshalText(b []byte) error {
	p, err := ParseReasonCode(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// Status is where a plan stands.
type Status struct{ name string }

// Statuses.
var (
	// StatusNew: no decision recorded (the zero Status).
	StatusNew = Status{}
	// StatusDeclined: credit was declined; terminal.
	StatusDeclined = Status{"declined"}
	// StatusActive: approved and owing.
	StatusActive = Status{"active"}
	// StatusDefaulted: more than DefaultAfterDays past due; collections
	// and refunds still apply, late fees no longer.
	StatusDefaulted = Status{"defaulted"}
	// StatusPaidOff: everything owed was collected (or paid off early).
	StatusPaidOff = Status{"paid_off"}
	// StatusRefunded: a refund cancelled everything still owed.
	StatusRefunded = Status{"refunded"}
	// StatusChargedOff: what was owed was written off; terminal.
	StatusChargedOff = Status{"charged_off"}
)

func (s Status) String() string {
	if s.name == "" {
		return "new"
	}
	return s.name
}

// closed reports whether nothing is owed any more and no collection may
// happen.
func (s Status) closed() bool {
	return s == StatusPaidOff || s == StatusRefunded || s == StatusChargedOff
}

// Bucket is a delinquency bucket by days past due of the oldest unpaid
// installment. Closed set.
type Bucket struct{ name string }

// Delinquency buckets.
var (
	BucketCurrent = Bucket{"current"} // nothing past due
	Bucket1To30   = Bucket{"1-30"}
	Bucket31To60  = Bucket{"31-60"}
	Bucket61To90  = Bucket{"61-90"}
	Bucket90Plus  = Bucket{"90+"} // 91 days and more
)

// BucketOf returns the bucket of a number of days past due.
func BucketOf(daysPastDue int) Bucket {
	switch {
	case daysPastDue <= 0:
		return BucketCurrent
	case daysPastDue <= 30:
		return Bucket1To30
	case daysPastDue <= 60:
		return Bucket31To60
	case daysPastDue <= 90:
		return Bucket61To90
	}
	return Bucket90Plus
}

func (b Bucket) String() string { return b.name }
