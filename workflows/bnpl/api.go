// Package bnpl is the installment schedule of a buy-now-pay-later plan: a
// durable timer per due date, collection from the customer's card, retries,
// a late fee after the grace period, delinquency, default and charge-off;
// early payoff and refunds by signal. It continues as new after every
// collected installment, so a 12-month plan keeps a short history.
//
// The plan aggregate is the record: every loop reloads it, so refunds or
// payoffs recorded by other sagas are seen at the next wake-up (send
// SignalPlanChanged to wake it at once).
package bnpl

import (
	"time"

	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/workflows/internal/steps"
)

// Signal and query names.
const (
	// SignalPayoff delivers a PayoffRequest: collect the payoff quote now.
	SignalPayoff = "payoff"
	// SignalRefund delivers a RefundRequest: take a merchant refund off the
	// plan (last installments first) and return any excess to the card.
	SignalRefund = "refund"
	// SignalPlanChanged (no payload) makes the workflow reload the plan.
	SignalPlanChanged = "plan-changed"
	// QueryStatus returns a Status.
	QueryStatus = "status"
)

// WorkflowID is the schedule workflow of a plan: "bnpl-"+planID.
func WorkflowID(planID string) string { return "bnpl-" + planID }

// Options tune the schedule; zero fields get defaults.
type Options struct {
	// RetryInterval is the wait after a declined collection. Default 3 days.
	RetryInterval time.Duration `json:"retry_interval,omitempty"`
	// ChargeOffAfter is how long after default the plan is charged off if
	// still unpaid. Default 90 days.
	ChargeOffAfter time.Duration `json:"charge_off_after,omitempty"`
	// InstallmentsPerRun is how many installments are collected before the
	// workflow continues as new. Default 1.
	InstallmentsPerRun int           `json:"installments_per_run,omitempty"`
	Steps              steps.Options `json:"steps"`
}

func (o *Options) setDefaults() {
	if o.RetryInterval <= 0 {
		o.RetryInterval = 3 * 24 * time.Hour
	}
	if o.ChargeOffAfter <= 0 {
		o.ChargeOffAfter = 90 * 24 * time.Hour
	}
	if o.InstallmentsPerRun <= 0 {
		o.InstallmentsPerRun = 1
	}
	o.Steps.SetDefaults()
}

// Carry is the state handed from one run to the next by continue-as-new;
// everything else is reloaded from the plan.
type Carry struct {
	// Attempt counts collection attempts for Installment (collection IDs
	// are "i<installment>-a<attempt>", unique per attempt).
	Installment int `json:"installment,omitempty"`
	Attempt     int `json:"attempt,omitempty"`
	// NextAttemptAt is when a declined installment is tried again.
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	// DefaultedAt is when the plan defaulted (zero if it has not).
	DefaultedAt time.Time `json:"defaulted_at,omitzero"`
	// Runs counts the runs so far.
	Runs int `json:"runs,omitempty"`
}

// Input starts (or continues) a plan's schedule.
type Input struct {
	PlanID  string  `json:"plan_id"`
	OrderID string  `json:"order_id"`
	Tenant  string  `json:"tenant,omitempty"`
	Options Options `json:"options"`
	Carry   Carry   `json:"carry"`
}

// PayoffRequest is the payload of SignalPayoff. RequestID makes the payoff
// idempotent: its collection is "payoff-"+RequestID.
type PayoffRequest struct {
	RequestID string `json:"request_id"`
}

// RefundRequest is the payload of SignalRefund.
type RefundRequest struct {
	RefundID string      `json:"refund_id"`
	Amount   money.Money `json:"amount"`
}

// Status is the schedule's progress (QueryStatus) and its result.
type Status struct {
	PlanID string `json:"plan_id"`
	// PlanStatus is the plan aggregate's status ("active", "paid_off"...).
	PlanStatus string `json:"plan_status"`
	// Delinquency is the plan's bucket when it was last loaded.
	Delinquency string `json:"delinquency,omitempty"`
	// NextWake is when the workflow acts next (zero when done).
	NextWake time.Time `json:"next_wake,omitzero"`
	// Collected and Failed count this run's collection attempts.
	Collected int   `json:"collected"`
	Failed    int   `json:"failed"`
	Carry     Carry `json:"carry"`
}
