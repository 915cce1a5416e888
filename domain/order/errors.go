package order

import (
	"errors"
	"fmt"

	"github.com/livecore/livecore/domain/money"
)

// Errors for broken rules. Decisions wrap them with detail; match with
// errors.Is.
var (
	ErrInvalidStatus        = errors.New("invalid order status")
	ErrInvalidPaymentMethod = errors.New("invalid payment method")
	ErrInvalidPlanKind      = errors.New("invalid BNPL plan kind")

	// ErrNotPlaced: a command other than Place on an order that does not exist.
	ErrNotPlaced = errors.New("order not placed")
	// ErrAlreadyPlaced: Place on an order that exists.
	ErrAlreadyPlaced = errors.New("order already placed")
	// ErrIllegalTransition: the command is not allowed in the order's status.
	// Returned inside *TransitionError.
	ErrIllegalTransition = errors.New("illegal order transition")
	// ErrOrderAlreadyCancelled: a command that changes a cancelled order.
	// Returned inside *TransitionError too, so it also matches
	// ErrIllegalTransition.
	ErrOrderAlreadyCancelled = errors.New("order already cancelled")
	// ErrAlreadyShipped: Cancel after some goods have shipped (use
	// CancelLines on what has not shipped, then returns).
	ErrAlreadyShipped = errors.New("order has shipped goods")

	ErrInvalidInput      = errors.New("invalid order input")
	ErrEmptyCart         = errors.New("empty cart")
	ErrInvalidQuantity   = errors.New("quantity must be positive")
	ErrNegativePrice     = errors.New("negative unit price")
	ErrInvalidAdjustment = errors.New("invalid discount or tax amount")
	ErrMixedCurrencies   = errors.New("amounts in more than one currency")
	ErrNegativeTotal     = errors.New("order total below zero")

	// ErrPlanMismatch: a BNPL checkout without a plan kind, or a card
	// checkout with one.
	ErrPlanMismatch = errors.New("plan kind does not fit the payment method")
	// ErrAmountMismatch: Confirm with a paid amount other than the total.
	ErrAmountMismatch = errors.New("paid amount differs from order total")

	ErrUnknownLine = errors.New("unknown order line")
	// ErrQuantityExceedsOpen: cancelling or fulfilling more of a line than is
	// still open (ordered - cancelled - fulfilled).
	ErrQuantityExceedsOpen = errors.New("quantity exceeds the line's open quantity")
	// ErrDuplicateLine: one line listed twice in one command.
	ErrDuplicateLine     = errors.New("line listed twice")
	ErrDuplicateShipment = errors.New("shipment already recorded")

	ErrRefundExceedsPaid    = errors.New("refund exceeds the refundable amount")
	ErrDuplicateRefund      = errors.New("refund ID already used")
	ErrUnknownRefund        = errors.New("unknown refund")
	ErrRefundAlreadySettled = errors.New("refund already recorded")
	ErrRefundAboveRequested = errors.New("refunded amount above the requested amount")

	ErrDuplicateReturn      = errors.New("return ID already used")
	ErrUnknownReturn        = errors.New("unknown return")
	ErrReturnAlreadyClosed  = errors.New("return already received")
	ErrReturnExceedsShipped = errors.New("return quantity exceeds the line's unreturned fulfilled quantity")
	ErrReceiptExceedsReturn = errors.New("received quantity exceeds the requested return")
)

// TransitionError says which command a status does not allow. It matches
// ErrIllegalTransition, and ErrOrderAlreadyCancelled when From is
// StatusCancelled.
type TransitionError struct {
	From    Status
	Command string
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("%s: %s not allowed in status %s", ErrIllegalTransition, e.Command, e.From)
}

// Is matches ErrIllegalTransition, and ErrOrderAlreadyCancelled for a
// cancelled order.
func (e *TransitionError) Is(target error) bool {
	return target == ErrIllegalTransition || (target == ErrOrderAlreadyCancelled && e.From == StatusCancelled)
}

// RefundExceedsPaidError says how much could still be refunded. It matches
// ErrRefundExceedsPaid.
type RefundExceedsPaidError struct {
	Requested  money.Money
	Refundable money.Money // paid - refunded - pending requests
}

func (e *RefundExceedsPaidError) Error() string {
	return fmt.Sprintf("%s: requested %s, refundable %s", ErrRefundExceedsPaid, e.Requested, e.Refundable)
}

// Is matches ErrRefundExceedsPaid.
func (e *RefundExceedsPaidError) Is(target error) bool { return target == ErrRefundExceedsPaid }
