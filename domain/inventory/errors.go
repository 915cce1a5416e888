package inventory

import (
	"errors"
	"fmt"
)

// Errors for broken rules. Decisions wrap them with detail; match with
// errors.Is.
var (
	ErrInvalidLocation = errors.New("invalid location")
	ErrInvalidSKU      = errors.New("invalid SKU")
	ErrInvalidInput    = errors.New("invalid inventory input")
	ErrInvalidQuantity = errors.New("quantity must be positive")

	// ErrInsufficientStock is matched by every *InsufficientStockError.
	ErrInsufficientStock = errors.New("insufficient stock")

	// ErrReservationConflict: a reservation for the order exists with another
	// quantity (the same quantity is an idempotent no-op).
	ErrReservationConflict = errors.New("order already holds a different reservation")
	// ErrReservationClosed: the order's reservation was committed, released
	// or expired; reserving again for it is refused (see Reserve).
	ErrReservationClosed = errors.New("order's reservation is closed")
	// ErrReservationNotFound: no open reservation for the order.
	ErrReservationNotFound = errors.New("no reservation for order")
	// ErrAlreadyCommitted: releasing a reservation that was fully committed.
	ErrAlreadyCommitted = errors.New("reservation already committed")
	// ErrCommitExceedsReservation: committing more than the order reserved.
	ErrCommitExceedsReservation = errors.New("commit exceeds reservation")
	// ErrBadExpiry: a reservation expiring at or before now.
	ErrBadExpiry = errors.New("reservation must expire after now")

	ErrDropAlreadyOpen = errors.New("a drop is already open")
	ErrDuplicateDrop   = errors.New("drop ID already used")
	// ErrNoOpenDrop: buying from or closing a drop that is not the open one.
	ErrNoOpenDrop = errors.New("drop not open")
	// ErrDropSoldOut: the drop has no units left.
	ErrDropSoldOut = errors.New("drop sold out")
	// ErrDropLimitReached is matched by every *DropLimitError.
	ErrDropLimitReached = errors.New("per-customer drop limit reached")
)

// InsufficientStockError says how much was asked and how much was free. It
// matches ErrInsufficientStock.
type InsufficientStockError struct {
	SKU       string
	Requested int64
	Available int64
}

func (e *InsufficientStockError) Error() string {
	return fmt.Sprintf("insufficient stock of %s: requested %d, available %d", e.SKU, e.Requested, e.Available)
}

// Is matches ErrInsufficientStock.
func (e *InsufficientStockError) Is(target error) bool { return target == ErrInsufficientStock }

// DropLimitError says how much a customer may still buy from a drop. It
// matches ErrDropLimitReached.
type DropLimitError struct {
	CustomerID string
	Limit      int64
	Bought     int64
	Requested  int64
}

func (e *DropLimitError) Error() string {
	return fmt.Sprintf("%s: customer %s bought %d of %d, requested %d", ErrDropLimitReached, e.CustomerID, e.Bought, e.Limit, e.Requested)
}

// Is matches ErrDropLimitReached.
func (e *DropLimitError) Is(target error) bool { return target == ErrDropLimitReached }
