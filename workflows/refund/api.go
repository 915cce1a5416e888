// Package refund is the refund saga of one refund of an order: a return
// received, a parcel that never arrived, or a refund asked for through the
// API. It refunds the instrument the order was paid with: the card through
// the payment provider, or the BNPL plan by taking the amount off its last
// installments (and returning to the card what was already collected
// beyond what is still owed).
package refund

import (
	"time"

	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/workflows/internal/steps"
)

// WorkflowID is the saga of one refund: "refund-"+orderID+"-"+refundID.
func WorkflowID(orderID, refundID string) string { return "refund-" + orderID + "-" + refundID }

// ReturnRefundID is the refund ID of a received return.
func ReturnRefundID(returnID string) string { return "return-" + returnID }

// ShipmentRefundID is the refund ID of a failed or lost shipment.
func ShipmentRefundID(shipmentID string) string { return "shipment-" + shipmentID }

// Options tune the saga; zero fields get defaults.
type Options struct {
	Steps steps.Options `json:"steps"`
}

// Input is one refund.
type Input struct {
	OrderID string `json:"order_id"`
	Tenant  string `json:"tenant,omitempty"`
	// RefundID is unique per refund of the order; it keys every step.
	RefundID string      `json:"refund_id"`
	Amount   money.Money `json:"amount"`
	Reason   string      `json:"reason"`
	Options  Options     `json:"options"`
}

// Outcomes.
const (
	// OutcomeRefunded: the money went back (Refunded is the amount).
	OutcomeRefunded = "refunded"
	// OutcomeRejected: the order refused the refund (more than is
	// refundable, unpaid order) or the instrument could not take it back;
	// Reason says why and nothing moved.
	OutcomeRejected = "rejected"
)

// Result is what the saga did.
type Result struct {
	OrderID  string `json:"order_id"`
	RefundID string `json:"refund_id"`
	Outcome  string `json:"outcome"`
	Reason   string `json:"reason,omitempty"`
	// Instrument is "card" or "bnpl".
	Instrument string      `json:"instrument,omitempty"`
	Refunded   money.Money `json:"refunded,omitzero"`
	// ReturnedToCard is, for BNPL, the part of the refund that exceeded
	// what the customer still owed and went back to their card.
	ReturnedToCard money.Money `json:"returned_to_card,omitzero"`
	At             time.Time   `json:"at"`
}
