package bnpl

import (
	"context"
	"fmt"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/workflows/internal/steps"
)

// Activities are the schedule's steps. Every money-moving call is keyed by
// the plan and the step ("plan/<id>/collect/i3-a2/capture").
type Activities struct {
	steps.Ports
	// Tokens finds the card the customer pays installments with.
	Tokens steps.TokenSource
}

func newPlan() *financing.Plan { return &financing.Plan{} }

func meta(tenant, orderID string) event.Metadata { return steps.Meta(tenant, orderID, "saga:bnpl") }

// InstallmentView is one installment as the schedule needs it.
type InstallmentView struct {
	Number      int         `json:"number"`
	DueAt       time.Time   `json:"due_at"`
	Unpaid      money.Money `json:"unpaid,omitzero"`
	FeeAssessed bool        `json:"fee_assessed"`
}

// PlanView is the plan at one instant.
type PlanView struct {
	Status       string            `json:"status"`
	Closed       bool              `json:"closed"`
	Installments []InstallmentView `json:"installments"`
	// Due is everything owed on installments due at the instant asked.
	Due money.Money `json:"due,omitzero"`
	// PayoffQuote is what paying off costs at that instant.
	PayoffQuote money.Money `json:"payoff_quote,omitzero"`
	// Delinquency is the plan's delinquency bucket at that instant
	// ("current", "1-30", "31-60", "61-90", "90+").
	Delinquency string `json:"delinquency,omitempty"`
}

// LoadPlanInput asks for the plan as of At.
type LoadPlanInput struct {
	PlanID string    `json:"plan_id"`
	At     time.Time `json:"at"`
}

// LoadPlan reads the plan as of in.At. It fails non-retryably for a plan
// that does not exist.
func (a *Activities) LoadPlan(ctx context.Context, in LoadPlanInput) (PlanView, error) {
	var v PlanView
	var missing bool
	err := steps.Plan(ctx, a.Ports, in.PlanID, func(pl *financing.Plan) {
		st := pl.Status()
		if st == financing.StatusNew || st == financing.StatusDeclined {
			missing = true
			return
		}
		v.Status = st.String()
		v.Closed = st == financing.StatusPaidOff || st == financing.StatusRefunded || st == financing.StatusChargedOff
		v.Due = money.Zero(pl.Financed().Currency())
		v.PayoffQuote = pl.PayoffQuote(in.At)
		v.Delinquency = pl.Delinquency(in.At).String()
		for _, inst := range pl.Installments() {
			unpaid := inst.Unpaid()
			v.Installments = append(v.Installments, InstallmentView{Number: inst.Number, DueAt: inst.DueAt, Unpaid: unpaid, FeeAssessed: inst.FeeAssessed})
			if !inst.DueAt.After(in.At) && unpaid.IsPositive() {
				v.Due, _ = v.Due.Add(unpaid)
			}
		}
	})
	if err != nil {
		return PlanView{}, err
	}
	if missing {
		return PlanView{}, steps.Reject(fmt.Errorf("plan %s: %w", in.PlanID, financing.ErrNoPlan))
	}
	return v, nil
}

// CollectInput is one collection attempt of an amount the workflow fixed,
// so a retry asks the provider for exactly the same charge.
type CollectInput struct {
	PlanID       string      `json:"plan_id"`
	OrderID      string      `json:"order_id"`
	Tenant       string      `json:"tenant,omitempty"`
	CollectionID string      `json:"collection_id"`
	Amount       money.Money `json:"amount"`
	Payoff       bool        `json:"payoff,omitempty"`
	At           time.Time   `json:"at"`
}

// CollectInstallment charges the customer's card and records the collection (or the
// payoff) on the plan; a decline is recorded as a failed collection and
// returned as steps.TypeDeclined.
func (a *Activities) CollectInstallment(ctx context.Context, in CollectInput) error {
	tok, err := a.Tokens.PaymentToken(ctx, in.OrderID)
	if err != nil {
		return fmt.Errorf("payment token of %s: %w", in.OrderID, err)
	}
	return steps.Collect(ctx, a.Ports, steps.CollectArgs{
		PlanID: in.PlanID, OrderID: in.OrderID, CollectionID: in.CollectionID, Token: tok, Amount: in.Amount,
		Payoff: in.Payoff, At: in.At, Meta: meta(in.Tenant, in.OrderID),
	})
}

// PlanStepInput names a plan, an installment (late fees) and the instant.
type PlanStepInput struct {
	PlanID      string    `json:"plan_id"`
	OrderID     string    `json:"order_id"`
	Tenant      string    `json:"tenant,omitempty"`
	Installment int       `json:"installment,omitempty"`
	At          time.Time `json:"at"`
}

// AssessLateFee adds the late fee to an installment past the grace period
// (command "plan/<id>/late-fee/<n>"; once per installment).
func (a *Activities) AssessLateFee(ctx context.Context, in PlanStepInput) error {
	_, err := steps.Exec(ctx, a.Ports, financing.StreamID(in.PlanID), newPlan, fmt.Sprintf("plan/%s/late-fee/%d", in.PlanID, in.Installment),
		meta(in.Tenant, in.OrderID), func(pl *financing.Plan) ([]event.Event, error) { return pl.AssessLateFee(in.Installment, in.At) })
	return err
}

// DefaultPlan records the plan's default (command "plan/<id>/default").
func (a *Activities) DefaultPlan(ctx context.Context, in PlanStepInput) error {
	_, err := steps.Exec(ctx, a.Ports, financing.StreamID(in.PlanID), newPlan, "plan/"+in.PlanID+"/default",
		meta(in.Tenant, in.OrderID), func(pl *financing.Plan) ([]event.Event, error) { return pl.Default(in.At) })
	return err
}

// ChargeOffPlan writes off what a defaulted plan owes (command
// "plan/<id>/charge-off").
func (a *Activities) ChargeOffPlan(ctx context.Context, in PlanStepInput) error {
	_, err := steps.Exec(ctx, a.Ports, financing.StreamID(in.PlanID), newPlan, "plan/"+in.PlanID+"/charge-off",
		meta(in.Tenant, in.OrderID), func(pl *financing.Plan) ([]event.Event, error) { return pl.ChargeOff(in.At) })
	return err
}

// RefundInput is a merchant refund against the plan.
type RefundInput struct {
	PlanID   string      `json:"plan_id"`
	OrderID  string      `json:"order_id"`
	Tenant   string      `json:"tenant,omitempty"`
	RefundID string      `json:"refund_id"`
	Amount   money.Money `json:"amount"`
	At       time.Time   `json:"at"`
}

// ReducePlan takes a refund off the plan and returns any excess to the
// customer's card; it returns that excess.
func (a *Activities) ReducePlan(ctx context.Context, in RefundInput) (money.Money, error) {
	return steps.ReducePlan(ctx, a.Ports, steps.ReducePlanArgs{
		PlanID: in.PlanID, RefundID: in.RefundID, Amount: in.Amount, At: in.At, Meta: meta(in.Tenant, in.OrderID),
	})
}
