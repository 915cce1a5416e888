package payment

import (
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
)

// Event type names. They are persisted: never change one; add a new version
// and an upcaster instead.
const (
	TypeAuthorized       = "payment.authorized.v1"
	TypeDeclined         = "payment.authorization_declined.v1"
	TypeCaptured         = "payment.captured.v1"
	TypeVoided           = "payment.voided.v1"
	TypeExpired          = "payment.authorization_expired.v1"
	TypeRefunded         = "payment.refunded.v1"
	TypeChargebackOpened = "payment.chargeback_opened.v1"
	TypeChargebackWon    = "payment.chargeback_won.v1"
	TypeChargebackLost   = "payment.chargeback_lost.v1"
	streamPrefix         = "payment-"
)

// StreamID is the event stream of payment id: "payment-" + id.
func StreamID(id string) string { return streamPrefix + id }

// Register adds every payment event to r.
func Register(r *event.Registry) {
	r.Register(
		func() event.Event { return &Authorized{} },
		func() event.Event { return &Declined{} },
		func() event.Event { return &Captured{} },
		func() event.Event { return &Voided{} },
		func() event.Event { return &Expired{} },
		func() event.Event { return &Refunded{} },
		func() event.Event { return &ChargebackOpened{} },
		func() event.Event { return &ChargebackWon{} },
		func() event.Event { return &ChargebackLost{} },
	)
}

// Authorized: the provider put a hold of Amount on the payment method. It is
// capturable until ExpiresAt.
type Authorized struct {
	PaymentID    string      `json:"payment_id"`
	OrderID      string      `json:"order_id"`
	Method       Method      `json:"method"`
	Amount       money.Money `json:"amount"`
	ProviderRef  string      `json:"provider_ref"`
	AuthorizedAt time.Time   `json:"authorized_at"`
	ExpiresAt    time.Time   `json:"expires_at"`
}

// Declined: the provider declined an authorization of Amount.
type Declined struct {
	PaymentID   string        `json:"payment_id"`
	OrderID     string        `json:"order_id"`
	Method      Method        `json:"method"`
	Amount      money.Money   `json:"amount"`
	Reason      DeclineReason `json:"reason"`
	ProviderRef string        `json:"provider_ref,omitempty"`
	DeclinedAt  time.Time     `json:"declined_at"`
}

// Captured: Amount of the hold was captured (settled) under CaptureID.
type Captured struct {
	PaymentID  string      `json:"payment_id"`
	CaptureID  string      `json:"capture_id"`
	Amount     money.Money `json:"amount"`
	CapturedAt time.Time   `json:"captured_at"`
}

// Voided: the uncaptured remainder (Released) was released.
type Voided struct {
	PaymentID string      `json:"payment_id"`
	Released  money.Money `json:"released"`
	VoidedAt  time.Time   `json:"voided_at"`
}

// Expired: the authorization lapsed; its uncaptured remainder (Released) is
// gone.
type Expired struct {
	PaymentID string      `json:"payment_id"`
	Released  money.Money `json:"released"`
	ExpiredAt time.Time   `json:"expired_at"`
}

// Refunded: Amount of the captured money was returned under RefundID.
type Refunded struct {
	PaymentID  string      `json:"payment_id"`
	RefundID   string      `json:"refund_id"`
	Amount     money.Money `json:"amount"`
	RefundedAt time.Time   `json:"refunded_at"`
}

// ChargebackOpened: the cardholder disputed Amount through the network.
type ChargebackOpened struct {
	PaymentID    string           `json:"payment_id"`
	ChargebackID string           `json:"chargeback_id"`
	Amount       money.Money      `json:"amount"`
	Reason       ChargebackReason `json:"reason"`
	OpenedAt     time.Time        `json:"opened_at"`
}

// ChargebackWon: the merchant won the dispute; the amount stays captured.
type ChargebackWon struct {
	PaymentID    string      `json:"payment_id"`
	ChargebackID string      `json:"chargeback_id"`
	Amount       money.Money `json:"amount"`
	ResolvedAt   time.Time   `json:"resolved_at"`
}

// ChargebackLost: the merchant lost the dispute; the amount went back to the
// cardholder.
type ChargebackLost struct {
	PaymentID    string      `json:"payment_id"`
	ChargebackID string      `json:"chargeback_id"`
	Amount       money.Money `json:"amount"`
	ResolvedAt   time.Time   `json:"resolved_at"`
}

func (*Authorized) EventType() string       { return TypeAuthorized }
func (*Declined) EventType() string         { return TypeDeclined }
func (*Captured) EventType() string         { return TypeCaptured }
func (*Voided) EventType() string           { return TypeVoided }
func (*Expired) EventType() string          { return TypeExpired }
func (*Refunded) EventType() string         { return TypeRefunded }
func (*ChargebackOpened) EventType() string { return TypeChargebackOpened }
func (*ChargebackWon) EventType() string    { return TypeChargebackWon }
func (*ChargebackLost) EventType() string   { return TypeChargebackLost }
