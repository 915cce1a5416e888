package financing

import (
	"errors"
	"fmt"

	"github.com/livecore/livecore/domain/money"
)

// Rules a plan command can break. Errors are wrapped with detail; match
// with errors.Is. A credit decline is not an error: it is a recorded
// decision (CreditDecided with Approved false).
var (
	// ErrInvalidCommand: a command is malformed (empty ID, a non-positive
	// amount, pay-in-4 with an APR, negative inputs).
	ErrInvalidCommand = errors.New("invalid financing command")
	// ErrPlanExists: Decide on a plan already decided with other data.
	ErrPlanExists = errors.New("plan already decided")
	// ErrNoPlan: the command needs a plan and none was decided.
	ErrNoPlan = errors.New("no such plan")
	// ErrCreditDeclined: the command needs an approved plan.
	ErrCreditDeclined = errors.New("credit declined")
	// ErrPlanClosed: the plan is paid off, refunded or charged off.
	ErrPlanClosed = errors.New("plan closed")
	// ErrPlanDefaulted: no late fees on a defaulted plan.
	ErrPlanDefaulted = errors.New("plan defaulted")
	// ErrDefaultTooEarly: default needs more than DefaultAfterDays past due.
	ErrDefaultTooEarly = errors.New("plan not delinquent long enough to default")
	// ErrNotDefaulted: charge-off needs a defaulted plan.
	ErrNotDefaulted = errors.New("plan not defaulted")
	// ErrCollectionExceedsOwed: a collection above everything owed (as
	// *LimitError).
	ErrCollectionExceedsOwed = errors.New("collection exceeds amount owed")
	// ErrRefundExceedsFinanced: refunds above the financed amount (as
	// *LimitError).
	ErrRefundExceedsFinanced = errors.New("refund exceeds financed amount")
	// ErrPayoffMismatch: an early payoff of other than the quote (as
	// *PayoffMismatchError).
	ErrPayoffMismatch = errors.New("payoff amount does not match the quote")
	// ErrNoSuchInstallment: an installment number outside the schedule.
	ErrNoSuchInstallment = errors.New("no such installment")
	// ErrInstallmentPaid: a late fee on an installment that owes nothing.
	ErrInstallmentPaid = errors.New("installment paid")
	// ErrLateFeeNotDue: a late fee within the grace period.
	ErrLateFeeNotDue = errors.New("late fee not due: within the grace period")
	// ErrLateFeeCapReached: the late fee would be zero under the caps.
	ErrLateFeeCapReached = errors.New("late fee cap reached")
	// ErrIDReused: a collection or refund ID was used before with other
	// data. The same ID with the same data is a retry and yields no events.
	ErrIDReused = errors.New("id reused with different data")
)

// LimitError is a command asking for more than is available; Err is the
// rule, which errors.Is matches.
type LimitError struct {
	Err       error
	Requested money.Money
	Available money.Money
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v: requested %s, available %s", e.Err, e.Requested, e.Available)
}

func (e *LimitError) Unwrap() error { return e.Err }

// PayoffMismatchError is an early payoff offering other than the quote.
type PayoffMismatchError struct {
	Quoted, Offered money.Money
}

func (e *PayoffMismatchError) Error() string {
	return fmt.Sprintf("%v: quoted %s, offered %s", ErrPayoffMismatch, e.Quoted, e.Offered)
}

// Is makes errors.Is(err, ErrPayoffMismatch) true.
func (e *PayoffMismatchError) Is(target error) bool { return target == ErrPayoffMismatch }
