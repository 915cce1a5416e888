package refund

import (
	"go.temporal.io/sdk/workflow"

	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/workflows/bnpl"
	"github.com/livecore/livecore/workflows/internal/steps"
)

// Refund returns money for one refund of an order:
//
//  1. Record the request on the order (it is pending until settled, so two
//     refunds can never together exceed what was paid).
//  2. Refund the instrument the order was paid with: the card through the
//     provider, or the BNPL plan (and wake its schedule, which then sees
//     the smaller balance).
//  3. Settle the request on the order with what was refunded; a refund the
//     instrument refused settles at zero, which frees the pending amount.
func Refund(ctx workflow.Context, in Input) (Result, error) {
	var a *Activities
	in.Options.Steps.SetDefaults()
	step := StepInput{OrderID: in.OrderID, Tenant: in.Tenant, RefundID: in.RefundID, Amount: in.Amount, Reason: in.Reason, At: workflow.Now(ctx)}
	res := Result{OrderID: in.OrderID, RefundID: in.RefundID, At: step.At}

	// 1. The request.
	var target Target
	if err := steps.Local(ctx, a.RequestRefund, step).Get(ctx, &target); err != nil {
		if steps.IsType(err, steps.TypeLimit) || steps.IsType(err, steps.TypeRejected) {
			res.Outcome, res.Reason = OutcomeRejected, err.Error()
			return res, nil
		}
		return res, err
	}
	res.Instrument = target.Method

	// 2. The instrument.
	var err error
	if target.PlanID != "" {
		var returned money.Money
		err = steps.Provider(ctx, in.Options.Steps, a.RefundPlan, step).Get(ctx, &returned)
		res.ReturnedToCard = returned
		// The schedule may be asleep until the next due date: wake it. It
		// is gone once the plan closed, which is fine.
		_ = workflow.SignalExternalWorkflow(ctx, bnpl.WorkflowID(target.PlanID), "", bnpl.SignalPlanChanged, nil).Get(ctx, nil)
	} else {
		err = steps.Provider(ctx, in.Options.Steps, a.RefundCard, step).Get(ctx, nil)
	}
	settle := step
	switch {
	case err == nil:
		res.Outcome, res.Refunded = OutcomeRefunded, in.Amount
	case steps.IsType(err, steps.TypeLimit) || steps.IsType(err, steps.TypeRejected) || steps.IsType(err, steps.TypeAuthorizationClosed):
		res.Outcome, res.Reason = OutcomeRejected, err.Error()
		settle.Amount = money.Zero(in.Amount.Currency())
	default:
		return res, err // the request stays pending; retrying this workflow finishes it
	}

	// 3. The settlement.
	if err := steps.LocalCompensation(ctx, a.SettleRefund, settle).Get(ctx, nil); err != nil {
		return res, err
	}
	return res, nil
}
