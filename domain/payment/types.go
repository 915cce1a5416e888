package payment

import (
	"fmt"
	"time"
)

// Method is how a payment is funded. It is a closed set: a Method can only be
// one of the package variables or come from ParseMethod.
type Method struct{ name string }

// Payment methods.
var (
	// MethodCard is a card payment; the card is known only by its Token.
	MethodCard = Method{"card"}
	// MethodBNPL is an order financed by a financing.Plan: the
	// authorization is the lender's commitment to fund the order.
	MethodBNPL = Method{"bnpl"}
)

// Authorization validity per method. A hold that is not captured within it
// lapses: the card networks and BNPL lenders release it on their side, so
// capturing after it would fail at the provider anyway.
const (
	// CardAuthorizationValidity is 7 days, what card networks and the large
	// providers (e.g. Stripe) give an online card authorization.
	CardAuthorizationValidity = 7 * 24 * time.Hour
	// BNPLAuthorizationValidity is 28 days, the common BNPL order
	// authorization window (e.g. Klarna's default): long enough to ship.
	BNPLAuthorizationValidity = 28 * 24 * time.Hour
)

// ParseMethod returns the method named s ("card", "bnpl").
func ParseMethod(s string) (Method, error) {
	for _, m := range []Method{MethodCard, MethodBNPL} {
		if m.name == s {
			return m, nil
		}
	}
	return Method{}, fmt.Errorf("%w: method %q", ErrInvalidCommand, s)
}

// AuthorizationValidity is how long an authorization with m stays
// capturable; 0 for the zero Method.
func (m Method) AuthorizationValidity() time.Duration {
	switch m {
	case MethodCard:
		return CardAuthorizationValidity
	case MethodBNPL:
		return BNPLAuthorizationValidity
	}
	return 0
}

// IsZero reports whether m is the zero (invalid) Method.
func (m Method) IsZero() bool { return m.name == "" }

func (m Method) String() string { return m.name }

// MarshalText encodes the name; the zero Method is an error.
func (m Method) MarshalText() ([]byte, error) {
	if m.IsZero() {
		return nil, fmt.Errorf("%w: zero method", ErrInvalidCommand)
	}
	return []byte(m.name), nil
}

// UnmarshalText parses with ParseMethod.
func (m *Method) UnmarshalText(b []byte) error {
	p, err := ParseMethod(string(b))
	if err != nil {
		return err
	}
	*m = p
	return nil
}

// DeclineReason says why an issuer or lender declined. Closed set.
type DeclineReason struct{ name string }

// Decline reasons, named as the card networks' and Stripe's decline codes.
var (
	DeclineDoNotHonor        = DeclineReason{"do_not_honor"}
	DeclineInsufficientFunds = DeclineReason{"insufficient_funds"}
	DeclineExpiredCard       = DeclineReason{"expired_card"}
	DeclineSuspectedFraud    = DeclineReason{"suspected_fraud"}
)

var declineReasons = []DeclineReason{DeclineDoNotHonor, DeclineInsufficientFunds, DeclineExpiredCard, DeclineSuspectedFraud}

// ParseDeclineReason returns the reason named s.
func ParseDeclineReason(s string) (DeclineReason, error) {
	for _, r := range declineReasons {
		if r.name == s {
			return r, nil
		}
	}
	return DeclineReason{}, fmt.Errorf("%w: decline reason %q", ErrInvalidCommand, s)
}

// IsZero reports whether r is the zero (invalid) DeclineReason.
func (r DeclineReason) IsZero() bool { return r.name == "" }

func (r DeclineReason) String() string { return r.name }

// MarshalText encodes the name; the zero reason is an error.
func (r DeclineReason) MarshalText() ([]byte, error) {
	if r.IsZero() {
		return nil, fmt.Errorf("%w: zero decline reason", ErrInvalidCommand)
	}
	return []byte(r.name), nil
}

// UnmarshalText parses with ParseDeclineReason.
func (r *DeclineReason) UnmarshalText(b []byte) error {
	p, err := ParseDeclineReason(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// ChargebackReason is the card network's dispute category. Closed set.
type ChargebackReason struct{ name string }

// Chargeback reasons: the dispute categories common to Visa and Mastercard.
var (
	ChargebackFraud              = ChargebackReason{"fraud"}
	ChargebackProductNotReceived = ChargebackReason{"product_not_received"}
	ChargebackNotAsDescribed     = ChargebackReason{"not_as_described"}
	ChargebackDuplicate          = ChargebackReason{"duplicate"}
	ChargebackCreditNotProcessed = ChargebackReason{"credit_not_processed"}
	ChargebackProcessingError    = ChargebackReason{"processing_error"}
)

var chargebackReasons = []ChargebackReason{
	ChargebackFraud, ChargebackProductNotReceived, ChargebackNotAsDescribed,
	ChargebackDuplicate, ChargebackCreditNotProcessed, ChargebackProcessingError,
}

// ParseChargebackReason returns the reason named s.
func ParseChargebackReason(s string) (ChargebackReason, error) {
	for _, r := range chargebackReasons {
		if r.name == s {
			return r, nil
		}
	}
	return ChargebackReason{}, fmt.Errorf("%w: chargeback reason %q", ErrInvalidCommand, s)
}

// IsZero reports whether r is the zero (invalid) ChargebackReason.
func (r ChargebackReason) IsZero() bool { return r.name == "" }

func (r ChargebackReason) String() string { return r.name }

// MarshalText encodes the name; the zero reason is an error.
func (r ChargebackReason) MarshalText() ([]byte, error) {
	if r.IsZero() {
		return nil, fmt.Errorf("%w: zero chargeback reason", ErrInvalidCommand)
	}
	return []byte(r.name), nil
}

// UnmarshalText parses with ParseChargebackReason.
func (r *ChargebackReason) UnmarshalText(b []byte) error {
	p, err := ParseChargebackReason(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// Status is where a payment's authorization stands. Refunds and chargebacks
// do not change it: they are tracked as amounts (Refunded, ChargedBack).
type Status struct{ name string }

// Statuses.
var (
	// StatusNew: nothing recorded yet (the zero Status).
	StatusNew = Status{}
	// StatusAuthorized: the hold is open; some of it may be captured.
	StatusAuthorized = Status{"authorized"}
	// StatusDeclined: the authorization was declined; terminal.
	StatusDeclined = Status{"declined"}
	// StatusCaptured: the whole authorized amount is captured.
	StatusCaptured = Status{"captured"}
	// StatusVoided: the uncaptured remainder was released by a void.
	StatusVoided = Status{"voided"}
	// StatusExpired: the uncaptured remainder lapsed at expiry.
	StatusExpired = Status{"expired"}
)

func (s Status) String() string {
	if s.name == "" {
		return "new"
	}
	return s.name
}
