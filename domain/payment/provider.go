package payment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/livecore/livecore/domain/money"
)

// The payment-service-provider (PSP) port. Adapters (adapters/psp/...)
// implement it and translate their vendor's errors into the errors below;
// nothing above an adapter sees a vendor type.
//
// Every call carries an IdempotencyKey: a business key derived from the
// order or plan and the step ("order-42/capture/shipment-1"), never random
// and never a workflow run ID. A provider that has seen the key returns the
// first call's answer, whether success or a business error, without acting
// again; the same key with a different request is ErrIdempotencyKeyReused.
// That is what makes retrying after ErrUnknownOutcome safe.
//
// Cards reach the domain only as a Token; no type here can hold a card
// number.

// Authorizer puts a hold on a payment method.
type Authorizer interface {
	Authorize(ctx context.Context, req AuthorizeRequest) (Result, error)
}

// Capturer settles part or all of a hold.
type Capturer interface {
	Capture(ctx context.Context, req CaptureRequest) (Result, error)
}

// Voider releases the uncaptured remainder of a hold.
type Voider interface {
	Void(ctx context.Context, req VoidRequest) (Result, error)
}

// Refunder returns captured money.
type Refunder interface {
	Refund(ctx context.Context, req RefundRequest) (Result, error)
}

// Provider is the whole port, for wiring and for adapters' tests. Consumers
// should depend on the one-method interfaces.
type Provider interface {
	Authorizer
	Capturer
	Voider
	Refunder
}

// Port errors. Business rejections reuse the aggregate's rules
// (ErrCaptureExceedsAuthorized, ErrRefundExceedsCaptured, ErrNothingToVoid,
// ErrAuthorizationVoided, ErrAuthorizationExpired), so one check serves both.
var (
	// ErrDeclined: the issuer or lender declined; comes as *DeclinedError.
	// Final for that key: retrying with it returns the same decline.
	ErrDeclined = errors.New("payment declined")
	// ErrUnknownOutcome: the call timed out or the connection broke after
	// the request was sent; the provider may or may not have acted. Retry
	// with the same idempotency key to learn the outcome; never retry with
	// a new key (that could charge twice).
	ErrUnknownOutcome = errors.New("payment provider outcome unknown")
	// ErrProviderUnavailable: the provider refused the call before acting
	// (overloaded, down, rate limited). Nothing happened; retry later.
	ErrProviderUnavailable = errors.New("payment provider unavailable")
	// ErrIdempotencyKeyReused: the key was used before for another request.
	ErrIdempotencyKeyReused = errors.New("idempotency key reused with a different request")
	// ErrUnknownProviderRef: no authorization has that provider reference.
	ErrUnknownProviderRef = errors.New("unknown provider reference")
	// ErrInvalidToken: a string is not a payment token (for instance, it
	// looks like a card number).
	ErrInvalidToken = errors.New("invalid payment token")
)

// DeclinedError is a decline with its reason.
type DeclinedError struct {
	Reason DeclineReason
	// ProviderRef is the provider's reference of the declined attempt, if
	// it gave one.
	ProviderRef string
}

func (e *DeclinedError) Error() string { return fmt.Sprintf("%v: %s", ErrDeclined, e.Reason) }

// Is makes errors.Is(err, ErrDeclined) true.
func (e *DeclinedError) Is(target error) bool { return target == ErrDeclined }

// Token stands for a payment instrument stored at the provider
// ("tok_visa_approve"). It is the only way a card reaches the domain. The
// zero Token is invalid; ParseToken refuses anything that is not
// "tok_" + [a-z0-9_] or that contains a run of 12 or more digits, so a card
// number cannot be smuggled in as a token.
type Token struct{ s string }

// ParseToken validates s as a token.
func ParseToken(s string) (Token, error) {
	if len(s) <= 4 || len(s) > 128 || s[:4] != "tok_" {
		return Token{}, fmt.Errorf("%w: want tok_ followed by 1-124 characters", ErrInvalidToken)
	}
	run := 0
	for i := 4; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if run++; run >= 12 {
				// Never echo the input: it may be a card number.
				return Token{}, fmt.Errorf("%w: contains a card-number-like run of digits", ErrInvalidToken)
			}
		case c >= 'a' && c <= 'z' || c == '_':
			run = 0
		default:
			return Token{}, fmt.Errorf("%w: only a-z, 0-9 and _ after tok_", ErrInvalidToken)
		}
	}
	return Token{s}, nil
}

// IsZero reports whether t is the zero (invalid) Token.
func (t Token) IsZero() bool { return t.s == "" }

func (t Token) String() string { return t.s }

// MarshalText encodes the token.
func (t Token) MarshalText() ([]byte, error) {
	if t.IsZero() {
		return nil, ErrInvalidToken
	}
	return []byte(t.s), nil
}

// UnmarshalText parses with ParseToken.
func (t *Token) UnmarshalText(b []byte) error {
	p, err := ParseToken(string(b))
	if err != nil {
		return err
	}
	*t = p
	return nil
}

// AuthorizeRequest asks for a hold of Amount on Token.
type AuthorizeRequest struct {
	IdempotencyKey string
	PaymentID      string // the merchant's reference, shown in the provider's dashboard
	Method         Method
	Token          Token
	Amount         money.Money
}

// CaptureRequest settles Amount of the hold ProviderRef.
type CaptureRequest struct {
	IdempotencyKey string
	ProviderRef    string // the authorization's reference
	Amount         money.Money
}

// VoidRequest releases the uncaptured remainder of the hold ProviderRef.
type VoidRequest struct {
	IdempotencyKey string
	ProviderRef    string // the authorization's reference
}

// RefundRequest returns Amount of what was captured on ProviderRef.
type RefundRequest struct {
	IdempotencyKey string
	ProviderRef    string // the authorization's reference
	Amount         money.Money
}

// ResultStatus is what a successful provider call did. Closed set.
type ResultStatus struct{ name string }

// Result statuses.
var (
	ResultAuthorized = ResultStatus{"authorized"}
	ResultCaptured   = ResultStatus{"captured"}
	ResultVoided     = ResultStatus{"voided"}
	ResultRefunded   = ResultStatus{"refunded"}
)

func (s ResultStatus) String() string { return s.name }

// Result is a successful provider call's answer.
type Result struct {
	// ProviderRef is the provider's reference of what the call created: the
	// authorization for Authorize, the capture, void or refund otherwise.
	ProviderRef string
	Status      ResultStatus
	// Amount is what was authorized, captured, released or refunded.
	Amount money.Money
	// ExpiresAt is when an authorization stops being capturable (Authorize
	// only).
	ExpiresAt time.Time
}
