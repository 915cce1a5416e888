package checkout

import (
	"errors"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/workflows/bnpl"
	"github.com/livecore/livecore/workflows/fulfillment"
	"github.com/livecore/livecore/workflows/internal/steps"
)

// Checkout is the checkout saga of one order:
//
//  1. Load the order and find the payment choice (in the input, on the
//     order, or by waiting for SignalCheckoutStarted; none within
//     ChoiceTimeout cancels the order as abandoned).
//  2. Hold the stock, planning one parcel per location.
//  3. Secure the payment: a card authorization, or a BNPL credit decision,
//     the plan, its first installment collected and the lender's
//     commitment recorded.
//  4. Confirm the order.
//  5. Hand over: start the fulfillment workflow and, for BNPL, the
//     installment schedule (both outlive this one).
//
// A business refusal (out of stock, declined) ends the saga with that
// Outcome after undoing what was done; an unexpected failure undoes it too
// and fails the workflow. Undo runs in reverse: cancel the plan and refund
// its first installment, or void the authorization; release the stock;
// cancel the order.
func Checkout(ctx workflow.Context, in Input) (Result, error) {
	in.Options.setDefaults()
	var a *Activities
	status := Status{Stage: StageLoading}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return status, nil }); err != nil {
		return Result{}, err
	}
	res := Result{OrderID: in.OrderID}
	now := func() time.Time { return workflow.Now(ctx) }

	// 1. The order and the customer's choice.
	var o OrderView
	if err := steps.Local(ctx, a.LoadOrder, in.OrderID).Get(ctx, &o); err != nil {
		return res, err
	}
	// A workflow task whose completion the server refuses (a signal came
	// in meanwhile) runs again from the last recorded one, and its local
	// activities run again: so this saga may meet the order as it left it.
	// Every step is idempotent by its business key; what needs care is
	// where the order already is.
	switch o.Status {
	case order.StatusPlaced.String(), order.StatusCheckoutStarted.String():
	case order.StatusCancelled.String():
		// Cancelled by this saga (the reason starts with the outcome) or by
		// someone else: nothing is held any more.
		res.Outcome, res.Reason = OutcomeCancelled, o.CancelReason
		if outcome, reason, ok := strings.Cut(o.CancelReason, ": "); ok && knownOutcome(outcome) {
			res.Outcome, res.Reason = outcome, reason
		}
		status.Stage, status.Outcome = StageDone, res.Outcome
		return res, nil
	default:
		// Confirmed: make sure the hand-over happened.
		return resumeHandOff(ctx, in, res, &status)
	}
	choice := o.Choice
	if choice == nil {
		choice = in.Choice
	}
	if choice == nil {
		status.Stage = StageAwaitChoice
		choice = awaitChoice(ctx, in.Options.ChoiceTimeout)
	}
	if choice == nil {
		status.Stage = StageCompensate
		err := steps.LocalCompensation(ctx, a.CancelOrder, CancelInput{OrderID: in.OrderID, Tenant: in.Tenant, Reason: OutcomeAbandoned + ": no payment choice in time", At: now()}).Get(ctx, nil)
		res.Outcome, status.Stage, status.Outcome = OutcomeAbandoned, StageDone, OutcomeAbandoned
		return res, err
	}

	var undo steps.Compensations
	fail := func(err error) (Result, error) {
		status.Stage = StageCompensate
		outcome, reason := OutcomeCancelled, err.Error()
		switch {
		case steps.IsType(err, steps.TypeOutOfStock):
			outcome = OutcomeOutOfStock
		case steps.IsType(err, steps.TypeDeclined):
			outcome = OutcomeDeclined
		case steps.IsType(err, steps.TypeCreditDeclined):
			outcome = OutcomeCreditDeclined
		}
		cerr := undo.Run(ctx)
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		if err := steps.LocalCompensation(dctx, a.CancelOrder, CancelInput{OrderID: in.OrderID, Tenant: in.Tenant, Reason: outcome + ": " + reason, At: now()}).Get(dctx, nil); err != nil {
			cerr = errors.Join(cerr, err)
		}
		res.Outcome, res.Reason, status.Stage, status.Outcome = outcome, reason, StageDone, outcome
		if outcome == OutcomeCancelled { // unexpected: the workflow fails, visibly
			if cerr != nil {
				err = errors.Join(err, cerr)
			}
			return res, err
		}
		return res, cerr
	}

	// 2. The stock.
	status.Stage = StageReserving
	stock := StockInput{OrderID: in.OrderID, Tenant: in.Tenant, Lines: o.Lines, Total: o.Total, At: now()}
	stock.Until = stock.At.Add(methodOf(choice).AuthorizationValidity())
	undo.Add(func(ctx workflow.Context) error {
		release := stock
		release.Reason, release.At = "checkout did not complete", now()
		return steps.LocalCompensation(ctx, a.ReleaseStock, release).Get(ctx, nil)
	})
	if err := steps.Local(ctx, a.ReserveStock, stock).Get(ctx, &res.Shipments); err != nil {
		return fail(err)
	}

	// 3. The payment.
	status.Stage = StagePaying
	pay := PayInput{OrderID: in.OrderID, Tenant: in.Tenant, Amount: o.Total, At: now()}
	var hold steps.Hold
	switch choice.Method {
	case order.MethodCard:
		undo.Add(func(ctx workflow.Context) error {
			void := pay
			void.At = now()
			return steps.ProviderCompensation(ctx, in.Options.Steps, a.VoidCard, void).Get(ctx, nil)
		})
		if err := steps.Provider(ctx, in.Options.Steps, a.AuthorizeCard, pay).Get(ctx, &hold); err != nil {
			return fail(err)
		}
	case order.MethodBNPL:
		undo.Add(func(ctx workflow.Context) error {
			cancel := pay
			cancel.At = now()
			return steps.ProviderCompensation(ctx, in.Options.Steps, a.CancelPlan, cancel).Get(ctx, nil)
		})
		var plan PlanOpened
		if err := steps.Local(ctx, a.OpenPlan, PlanInput{
			OrderID: in.OrderID, Tenant: in.Tenant, CustomerID: o.CustomerID, Amount: o.Total, Kind: choice.Plan, At: pay.At,
		}).Get(ctx, &plan); err != nil {
			return fail(err)
		}
		res.PlanID = plan.PlanID
		if plan.DueNow.IsPositive() {
			first := pay
			first.Amount = plan.DueNow
			if err := steps.Provider(ctx, in.Options.Steps, a.CollectFirstInstallment, first).Get(ctx, nil); err != nil {
				return fail(err)
			}
		}
		if err := steps.Local(ctx, a.RecordPlanHold, pay).Get(ctx, &hold); err != nil {
			return fail(err)
		}
	default:
		return fail(temporal.NewNonRetryableApplicationError("unknown payment method "+choice.Method.String(), steps.TypeRejected, nil))
	}
	res.Payment = &hold

	// 4. The order.
	status.Stage = StageConfirming
	res.ConfirmedAt = now()
	if err := steps.Local(ctx, a.ConfirmOrder, ConfirmInput{
		OrderID: in.OrderID, Tenant: in.Tenant, PaymentRef: hold.ProviderRef, Paid: o.Total, At: res.ConfirmedAt,
	}).Get(ctx, nil); err != nil {
		return fail(err)
	}

	// 5. The hand-over.
	status.Stage = StageHandingOff
	if err := handOff(ctx, in, &res, false); err != nil {
		return fail(err)
	}
	res.Outcome, status.Stage, status.Outcome = OutcomeConfirmed, StageDone, OutcomeConfirmed
	return res, nil
}

// handOff starts the fulfillment workflow and, for BNPL, the installment
// schedule: children that outlive the saga (ParentClosePolicy ABANDON),
// each under its business ID, once.
//
// With resume (a re-driven run of an order already handed over: the old
// owner's Temporal held its fulfillment) the fulfillment starts from the
// aggregates (fulfillment.Input.Resume) and the schedule is left to the
// region's re-drive of open plans.
func handOff(ctx workflow.Context, in Input, res *Result, resume bool) error {
	res.FulfillmentID = fulfillment.WorkflowID(in.OrderID)
	// A re-driven run may find a terminated run of a child here (a region
	// terminates the sagas of a home it loses): replace it.
	child := func(id string) workflow.Context {
		cctx := childOptions(ctx, id)
		if in.Redrive {
			o := workflow.GetChildWorkflowOptions(cctx)
			o.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY
			cctx = workflow.WithChildOptions(cctx, o)
		}
		return cctx
	}
	fctx := child(res.FulfillmentID)
	started := []workflow.ChildWorkflowFuture{workflow.ExecuteChildWorkflow(fctx, fulfillment.Fulfill, fulfillment.Input{
		OrderID: in.OrderID, Tenant: in.Tenant, Payment: *res.Payment, PlanID: res.PlanID, Shipments: res.Shipments, Options: in.Options.Fulfillment, Resume: resume,
	})}
	if res.PlanID != "" && !resume {
		res.ScheduleID = bnpl.WorkflowID(res.PlanID)
		started = append(started, workflow.ExecuteChildWorkflow(child(res.ScheduleID), bnpl.Schedule, bnpl.Input{
			PlanID: res.PlanID, OrderID: in.OrderID, Tenant: in.Tenant, Options: in.Options.Schedule,
		}))
	}
	for _, f := range started {
		if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil && !isAlreadyStarted(err) {
			return err
		}
	}
	return nil
}

// resumeHandOff finishes the saga of an order found confirmed: by this saga
// in a workflow task whose record was lost, or before this run. It
// rebuilds the hand-over from the aggregates and starts what is missing;
// it never compensates a confirmed order.
func resumeHandOff(ctx workflow.Context, in Input, res Result, status *Status) (Result, error) {
	var a *Activities
	res.Outcome, status.Stage = OutcomeAlreadyConfirmed, StageHandingOff
	var h HandOff
	if err := steps.Local(ctx, a.RebuildHandOff, in.OrderID).Get(ctx, &h); err != nil {
		workflow.GetLogger(ctx).Warn("confirmed order: hand-over not rebuilt", "order", in.OrderID, "error", err)
		status.Stage, status.Outcome = StageDone, res.Outcome
		return res, nil
	}
	resume := false
	if h.Fulfilling {
		if !in.Redrive {
			status.Stage, status.Outcome = StageDone, res.Outcome
			return res, nil
		}
		// Taken over: the fulfillment ran in the old owner's Temporal.
		if err := steps.Local(ctx, a.RebuildSplitHandOff, in.OrderID).Get(ctx, &h); err != nil {
			workflow.GetLogger(ctx).Warn("confirmed order: fulfillment not resumed", "order", in.OrderID, "error", err)
			status.Stage, status.Outcome = StageDone, res.Outcome
			return res, nil
		}
		resume = true
	}
	res.Payment, res.PlanID, res.Shipments = &h.Payment, h.PlanID, h.Shipments
	if err := handOff(ctx, in, &res, resume); err != nil {
		return res, err
	}
	res.Outcome, status.Stage, status.Outcome = OutcomeConfirmed, StageDone, OutcomeConfirmed
	return res, nil
}

func knownOutcome(s string) bool {
	switch s {
	case OutcomeOutOfStock, OutcomeDeclined, OutcomeCreditDeclined, OutcomeAbandoned, OutcomeCancelled:
		return true
	}
	return false
}

// awaitChoice waits for the customer's payment choice; nil after timeout.
func awaitChoice(ctx workflow.Context, timeout time.Duration) *Choice {
	var c Choice
	ok, _ := workflow.GetSignalChannel(ctx, SignalCheckoutStarted).ReceiveWithTimeout(ctx, timeout, &c)
	if !ok || c.Method.IsZero() {
		return nil
	}
	return &c
}

func methodOf(c *Choice) payment.Method {
	if c.Method == order.MethodBNPL {
		return payment.MethodBNPL
	}
	return payment.MethodCard
}

// childOptions start a workflow that outlives the saga (ParentClosePolicy
// ABANDON) under its business ID, once.
func childOptions(ctx workflow.Context, id string) workflow.Context {
	return workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	})
}

func isAlreadyStarted(err error) bool {
	var started *temporal.ChildWorkflowExecutionAlreadyStartedError
	return errors.As(err, &started)
}
