package payment

import (
	"errors"
	"fmt"

	"github.com/livecore/livecore/domain/money"
)

// Rules a payment command can break. Errors are wrapped with detail; match
// with errors.Is. Amount limits come as *LimitError, which also says how
// much was available.
var (
	// ErrInvalidCommand: a command is malformed (empty ID, zero method, a
	// non-positive amount).
	ErrInvalidCommand = errors.New("invalid payment command")
	// ErrNotAuthorized: the command needs an authorization and the payment
	// has none (new or declined).
	ErrNotAuthorized = errors.New("payment not authorized")
	// ErrAlreadyDecided: Authorize or Decline on a payment whose
	// authorization is already recorded with other data.
	ErrAlreadyDecided = errors.New("payment authorization already recorded")
	// ErrAuthorizationVoided: capture or void after the remainder was voided.
	ErrAuthorizationVoided = errors.New("authorization voided")
	// ErrAuthorizationExpired: capture or void at or after the expiry.
	ErrAuthorizationExpired = errors.New("authorization expired")
	// ErrNotYetExpired: Expire before the authorization's expiry.
	ErrNotYetExpired = errors.New("authorization not yet expired")
	// ErrNothingToVoid: void when the whole authorization is captured.
	ErrNothingToVoid = errors.New("nothing left to void")
	// ErrCaptureExceedsAuthorized: a capture above the uncaptured remainder.
	ErrCaptureExceedsAuthorized = errors.New("capture exceeds authorized amount")
	// ErrRefundExceedsCaptured: a refund above the refundable amount
	// (captured - refunded - under chargeback).
	ErrRefundExceedsCaptured = errors.New("refund exceeds captured amount")
	// ErrChargebackExceedsCaptured: a chargeback above what is captured and
	// neither refunded nor already disputed.
	ErrChargebackExceedsCaptured = errors.New("chargeback exceeds captured amount")
	// ErrUnknownChargeback: win or lose a chargeback that was never opened.
	ErrUnknownChargeback = errors.New("unknown chargeback")
	// ErrChargebackResolved: win a lost chargeback or lose a won one.
	ErrChargebackResolved = errors.New("chargeback already resolved")
	// ErrIDReused: a capture, refund or chargeback ID was used before with
	// other data. The same ID with the same data is a retry and yields no
	// events.
	ErrIDReused = errors.New("id reused with different data")
)

// LimitError is a command asking for more than is available. Err is the
// rule (ErrCaptureExceedsAuthorized, ErrRefundExceedsCaptured,
// ErrChargebackExceedsCaptured); errors.Is matches it.
type LimitError struct {
	Err       error
	Requested money.Money
	Available money.Money
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v: requested %s, available %s", e.Err, e.Requested, e.Available)
}

func (e *LimitError) Unwrap() error { return e.Err }
