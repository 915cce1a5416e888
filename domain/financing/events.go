package financing

import (
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

// Event type names. They are persisted: never change one; add a new version
// and an upcaster instead.
const (
	TypeCreditDecided        = "plan.credit_decided.v1"
	TypeOriginated           = "plan.originated.v1"
	TypeInstallmentCollected = "plan.installment_collected.v1"
	TypeCollectionFailed     = "plan.collection_failed.v1"
	TypeLateFeeAssessed      = "plan.late_fee_assessed.v1"
	TypePaidOff              = "plan.paid_off.v1"
	TypeRefunded             = "plan.refunded.v1"
	TypeDefaulted            = "plan.defaulted.v1"
	TypeChargedOff           = "plan.charged_off.v1"
)

// StreamID is the event stream of plan id: "plan-" + id.
func StreamID(id string) string { return "plan-" + id }

// Register adds every financing event to r.
func Register(r *event.Registry) {
	r.Register(
		func() event.Event { return &CreditDecided{} },
		func() event.Event { return &Originated{} },
		func() event.Event { return &InstallmentCollected{} },
		func() event.Event { return &CollectionFailed{} },
		func() event.Event { return &LateFeeAssessed{} },
		func() event.Event { return &PaidOff{} },
		func() event.Event { return &Refunded{} },
		func() event.Event { return &Defaulted{} },
		func() event.Event { return &ChargedOff{} },
	)
}

// Allocation is money applied to, or taken off, one installment, split into
// its parts.
type Allocation struct {
	Installment int         `json:"installment"`
	Principal   money.Money `json:"principal"`
	Interest    money.Money `json:"interest"`
	Fee         money.Money `json:"fee"`
}

// CreditDecided: a credit decision with everything it was based on.
type CreditDecided struct {
	PlanID            string       `json:"plan_id"`
	CustomerID        string       `json:"customer_id"`
	OrderID           string       `json:"order_id"`
	Amount            money.Money  `json:"amount"`
	Kind              Kind         `json:"kind"`
	APR               APR          `json:"apr_bp"`
	CurrentExposure   money.Money  `json:"current_exposure"`
	ExposureLimit     money.Money  `json:"exposure_limit"`
	OpenDelinquencies int          `json:"open_delinquencies"`
	Approved          bool         `json:"approved"`
	Reasons           []ReasonCode `json:"reasons,omitempty"` // why declined; empty when approved
	DecidedAt         time.Time    `json:"decided_at"`
}

// Originated: an approved plan's schedule.
type Originated struct {
	PlanID       string                 `json:"plan_id"`
	Financed     money.Money            `json:"financed"`
	Kind         Kind                   `json:"kind"`
	APR          APR                    `json:"apr_bp"`
	Installments []ScheduledInstallment `json:"installments"`
	OriginatedAt time.Time              `json:"originated_at"`
}

// InstallmentCollected: Amount was collected under CollectionID and applied
// as Allocations (oldest installment first; fee, interest, then principal).
type InstallmentCollected struct {
	PlanID       string       `json:"plan_id"`
	CollectionID string       `json:"collection_id"`
	Amount       money.Money  `json:"amount"`
	Allocations  []Allocation `json:"allocations"`
	CollectedAt  time.Time    `json:"collected_at"`
}

// CollectionFailed: collecting Amount under CollectionID was declined.
type CollectionFailed struct {
	PlanID       string                `json:"plan_id"`
	CollectionID string                `json:"collection_id"`
	Amount       money.Money           `json:"amount"`
	Reason       payment.DeclineReason `json:"reason"`
	FailedAt     time.Time             `json:"failed_at"`
}

// LateFeeAssessed: a late fee was added to an installment.
type LateFeeAssessed struct {
	PlanID      string      `json:"plan_id"`
	Installment int         `json:"installment"`
	Fee         money.Money `json:"fee"`
	AssessedAt  time.Time   `json:"assessed_at"`
}

// PaidOff: the plan was paid off early with Amount: Allocations are what it
// paid, Waived the interest of installments not yet due.
type PaidOff struct {
	PlanID       string       `json:"plan_id"`
	CollectionID string       `json:"collection_id"`
	Amount       money.Money  `json:"amount"`
	Allocations  []Allocation `json:"allocations"`
	Waived       []Allocation `json:"waived,omitempty"`
	PaidOffAt    time.Time    `json:"paid_off_at"`
}

// Refunded: the merchant refunded Amount of the order. Reductions is what
// it took off the installments, last first; ReturnedToCustomer is the part
// that exceeded what was still owed and goes back to the customer.
type Refunded struct {
	PlanID             string       `json:"plan_id"`
	RefundID           string       `json:"refund_id"`
	Amount             money.Money  `json:"amount"`
	Reductions         []Allocation `json:"reductions,omitempty"`
	ReturnedToCustomer money.Money  `json:"returned_to_customer"`
	RefundedAt         time.Time    `json:"refunded_at"`
}

// Defaulted: the plan went into default, DaysPastDue late and owing
// Outstanding (principal, interest due and fees).
type Defaulted struct {
	PlanID      string      `json:"plan_id"`
	DaysPastDue int         `json:"days_past_due"`
	Outstanding money.Money `json:"outstanding"`
	DefaultedAt time.Time   `json:"defaulted_at"`
}

// ChargedOff: what was owed (WrittenOff, detailed in Allocations) was
// written off; interest not yet due was waived (Waived).
type ChargedOff struct {
	PlanID       string       `json:"plan_id"`
	WrittenOff   money.Money  `json:"written_off"`
	Allocations  []Allocation `json:"allocations,omitempty"`
	Waived       []Allocation `json:"waived,omitempty"`
	ChargedOffAt time.Time    `json:"charged_off_at"`
}

func (*CreditDecided) EventType() string        { return TypeCreditDecided }
func (*Originated) EventType() string           { return TypeOriginated }
func (*InstallmentCollected) EventType() string { return TypeInstallmentCollected }
func (*CollectionFailed) EventType() string     { return TypeCollectionFailed }
func (*LateFeeAssessed) EventType() string      { return TypeLateFeeAssessed }
func (*PaidOff) EventType() string              { return TypePaidOff }
func (*Refunded) EventType() string             { return TypeRefunded }
func (*Defaulted) EventType() string            { return TypeDefaulted }
func (*ChargedOff) EventType() string           { return TypeChargedOff }
