// Package checkout is the checkout saga of one order: hold the stock,
// secure the payment (a card authorization, or a BNPL credit decision and
// plan with its first installment collected), confirm the order, and hand
// it to fulfillment (and, for BNPL, to the installment schedule). Any
// failure undoes what was done, in reverse.
package checkout

import (
	"context"
	"time"

	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/workflows/bnpl"
	"github.com/livecore/livecore/workflows/fulfillment"
	"github.com/livecore/livecore/workflows/internal/steps"
)

// Signal and query names.
const (
	// SignalCheckoutStarted delivers a Choice: the customer chose how to
	// pay (order.checkout_started). The saga waits for it when the order
	// had no choice yet; a later one is ignored once payment started.
	SignalCheckoutStarted = "checkout-started"
	// QueryStatus returns a Status.
	QueryStatus = "status"
)

// WorkflowID is the checkout saga of an order: "checkout-"+orderID. One
// saga per order: starts are deduplicated on it.
func WorkflowID(orderID string) string { return "checkout-" + orderID }

// Choice is how the customer pays.
type Choice struct {
	Method order.PaymentMethod `json:"method"`
	Plan   order.PlanKind      `json:"plan,omitzero"`
}

// Options tune the saga; zero fields get defaults.
type Options struct {
	// ChoiceTimeout is how long a placed order waits for its payment choice
	// before it is cancelled as abandoned. Default 1h.
	ChoiceTimeout time.Duration       `json:"choice_timeout,omitempty"`
	Steps         steps.Options       `json:"steps"`
	Fulfillment   fulfillment.Options `json:"fulfillment"`
	Schedule      bnpl.Options        `json:"schedule"`
}

func (o *Options) setDefaults() {
	if o.ChoiceTimeout <= 0 {
		o.ChoiceTimeout = time.Hour
	}
	o.Steps.SetDefaults()
	o.Fulfillment.Steps = o.Steps
	o.Schedule.Steps = o.Steps
}

// Input starts the saga of one order.
type Input struct {
	OrderID string `json:"order_id"`
	// Tenant is copied into the metadata of every event the saga appends.
	Tenant string `json:"tenant,omitempty"`
	// Choice is the payment choice if the starter saw it; otherwise the
	// saga reads it from the order or waits for SignalCheckoutStarted.
	Choice  *Choice `json:"choice,omitempty"`
	Options Options `json:"options"`
	// Redrive: this run was started again by a region that took the
	// order's home over (dispatcher.Redrive). For an order already handed
	// over to fulfillment it also resumes the fulfillment here, from the
	// aggregates (the old owner's Temporal held it).
	Redrive bool `json:"redrive,omitempty"`
}

// Outcomes of a saga that ran to its end.
const (
	OutcomeConfirmed      = "confirmed"
	OutcomeOutOfStock     = "out_of_stock"
	OutcomeDeclined       = "declined"
	OutcomeCreditDeclined = "credit_declined"
	OutcomeAbandoned      = "abandoned" // no payment choice in time
	// OutcomeCancelled: the order was already cancelled, or the saga failed
	// and was compensated (then the workflow also fails with the cause).
	OutcomeCancelled = "cancelled"
	// OutcomeAlreadyConfirmed: the order was confirmed before this run.
	OutcomeAlreadyConfirmed = "already_confirmed"
)

// Result is what the saga did.
type Result struct {
	OrderID string `json:"order_id"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	// Payment is the order's authorization (card) or lender commitment
	// (BNPL), when one was made.
	Payment *steps.Hold `json:"payment,omitempty"`
	PlanID  string      `json:"plan_id,omitempty"`
	// Shipments are the parcels planned from the reservations.
	Shipments []fulfillment.Shipment `json:"shipments,omitempty"`
	// FulfillmentID and ScheduleID are the workflows started for the
	// confirmed order.
	FulfillmentID string    `json:"fulfillment_id,omitempty"`
	ScheduleID    string    `json:"schedule_id,omitempty"`
	ConfirmedAt   time.Time `json:"confirmed_at,omitzero"`
}

// Stages reported by QueryStatus.
const (
	StageLoading     = "loading"
	StageAwaitChoice = "awaiting_choice"
	StageReserving   = "reserving"
	StagePaying      = "paying"
	StageConfirming  = "confirming"
	StageHandingOff  = "handing_off"
	StageCompensate  = "compensating"
	StageDone        = "done"
)

// Status is the saga's progress.
type Status struct {
	Stage   string `json:"stage"`
	Outcome string `json:"outcome,omitempty"`
}

// CreditProfile is what a credit decision needs to know about a customer.
type CreditProfile struct {
	// Exposure is what the customer owes on other plans; Limit their
	// credit line. Both in the order's currency.
	Exposure, Limit   money.Money
	OpenDelinquencies int
	// MonthlyAPR is the rate offered on monthly plans (pay-in-4 is 0%).
	MonthlyAPR financing.APR
}

// CreditBureau looks up a customer's credit profile (in production: the
// customer's plans read model and a credit line service).
type CreditBureau interface {
	Profile(ctx context.Context, customerID string, currency money.Currency) (CreditProfile, error)
}

// FlatCredit gives every customer the same line and rate and no other
// exposure: the dev and test default.
type FlatCredit struct {
	// Limit is the credit line in each currency's major units (default
	// 5000).
	Limit int64
	// APR of monthly plans in basis points (default 1999: 19.99%).
	APRBasisPoints int
}

// Profile returns the flat profile.
func (f FlatCredit) Profile(_ context.Context, _ string, c money.Currency) (CreditProfile, error) {
	limit, apr := f.Limit, f.APRBasisPoints
	if limit <= 0 {
		limit = 5000
	}
	if apr <= 0 {
		apr = 1999
	}
	l, err := money.FromMinor(limit, c)
	if err != nil {
		return CreditProfile{}, err
	}
	l, err = l.MulInt(pow10(c.Exponent()))
	if err != nil {
		return CreditProfile{}, err
	}
	rate, err := financing.APRFromBasisPoints(apr)
	return CreditProfile{Exposure: money.Zero(c), Limit: l, MonthlyAPR: rate}, err
}

func pow10(n int32) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}
