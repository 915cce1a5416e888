package fulfillment

import (
	"errors"
	"fmt"
)

// ShipmentStatus is where a shipment is (see the package doc). Statuses
// cannot be forged; the zero ShipmentStatus means "no such shipment".
type ShipmentStatus struct{ s string }

// The shipment statuses.
var (
	StatusPlanned   = ShipmentStatus{"planned"}
	StatusPicked    = ShipmentStatus{"picked"}
	StatusPacked    = ShipmentStatus{"packed"}
	StatusShipped   = ShipmentStatus{"shipped"}
	StatusDelivered = ShipmentStatus{"delivered"}
	StatusFailed    = ShipmentStatus{"failed"}
	StatusLost      = ShipmentStatus{"lost"}
	StatusCancelled = ShipmentStatus{"cancelled"}
)

func (s ShipmentStatus) String() string {
	if s.s == "" {
		return "none"
	}
	return s.s
}

// IsZero reports whether s is the zero status.
func (s ShipmentStatus) IsZero() bool { return s.s == "" }

// Errors for broken rules. Decisions wrap them with detail; match with
// errors.Is.
var (
	// ErrNotSplit: a command on an order whose fulfillment was never split.
	ErrNotSplit = errors.New("order not split into shipments")
	// ErrAlreadySplit: Split twice.
	ErrAlreadySplit = errors.New("order already split into shipments")
	// ErrIllegalTransition: the command is not allowed in the shipment's
	// status. Returned inside *TransitionError.
	ErrIllegalTransition = errors.New("illegal shipment transition")

	ErrInvalidInput      = errors.New("invalid fulfillment input")
	ErrInvalidQuantity   = errors.New("quantity must be positive")
	ErrNoShipments       = errors.New("no shipments")
	ErrEmptyShipment     = errors.New("shipment without lines")
	ErrDuplicateShipment = errors.New("shipment ID used twice")
	ErrDuplicateLine     = errors.New("line listed twice")
	ErrUnknownShipment   = errors.New("unknown shipment")
	ErrUnknownLine       = errors.New("line not in shipment")

	ErrDuplicateReturn      = errors.New("return ID already used")
	ErrUnknownReturn        = errors.New("unknown return")
	ErrReturnAlreadyClosed  = errors.New("return already received")
	ErrReturnExceedsShipped = errors.New("return quantity exceeds the delivered, unreturned quantity")
	ErrReceiptExceedsReturn = errors.New("received quantity exceeds the authorized return")
)

// TransitionError says which command a shipment's status does not allow. It
// matches ErrIllegalTransition.
type TransitionError struct {
	Shipment string
	From     ShipmentStatus
	Command  string
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("%s: %s not allowed for shipment %s in status %s", ErrIllegalTransition, e.Command, e.Shipment, e.From)
}

// Is matches ErrIllegalTransition.
func (e *TransitionError) Is(target error) bool { return target == ErrIllegalTransition }
