package checkout_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/workflows/checkout"
	"github.com/livecore/livecore/workflows/fulfillment"
	"github.com/livecore/livecore/workflows/internal/sagatest"
	"github.com/livecore/livecore/workflows/internal/steps"
)

var ams, ber = sagatest.Locations[0], sagatest.Locations[1]

// world stocks two SKUs at two locations and places order id for 2 x A at
// 10.00 and 1 x B at 5.00 (total 25.00), or scaled by price for BNPL.
func world(t *testing.T, id string, price string) (*testsuite.TestWorkflowEnvironment, *sagatest.World) {
	env, w := sagatest.NewEnv(t)
	w.Stock(t, "A", ams, 10)
	w.Stock(t, "B", ber, 5)
	w.PlaceOrder(t, id, sagatest.Line{SKU: "A", Qty: 2, Price: price}, sagatest.Line{SKU: "B", Qty: 1, Price: "5.00"})
	return env, w
}

// children records the workflows the saga starts.
func children(env *testsuite.TestWorkflowEnvironment) *[]string {
	var ids []string
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		ids = append(ids, info.WorkflowExecution.ID)
	})
	return &ids
}

func run(t *testing.T, env *testsuite.TestWorkflowEnvironment, in checkout.Input) (checkout.Result, error) {
	t.Helper()
	env.ExecuteWorkflow(checkout.Checkout, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var res checkout.Result
	err := env.GetWorkflowResult(&res)
	return res, err
}

// requireReleased checks that no stock is held any more.
func requireReleased(t *testing.T, w *sagatest.World) {
	t.Helper()
	if a, b := w.Available(t, "A", ams), w.Available(t, "B", ber); a != 10 || b != 5 {
		t.Errorf("available A=%d B=%d, want 10 and 5 (stock not released)", a, b)
	}
}

// requireNoOpenHolds checks that every provider hold ended voided or was
// fully refunded.
func requireNoOpenHolds(t *testing.T, w *sagatest.World) {
	t.Helper()
	held := map[string]payment.Result{}
	for _, e := range w.PSP.Ledger() {
		if e.Op == sandbox.OpAuthorize {
			held[e.AuthRef] = payment.Result{Amount: e.Amount}
		}
	}
	for ref := range held {
		var voided, captured, refunded int64
		for _, e := range w.PSP.Ledger() {
			if e.AuthRef != ref {
				continue
			}
			switch e.Op {
			case sandbox.OpVoid:
				voided++
			case sandbox.OpCapture:
				captured += e.Amount.MinorUnits()
			case sandbox.OpRefund:
				refunded += e.Amount.MinorUnits()
			}
		}
		if voided == 0 && captured != refunded {
			t.Errorf("hold %s left open: captured %d, refunded %d, not voided", ref, captured, refunded)
		}
	}
}

func TestCardHappyPath(t *testing.T) {
	env, w := world(t, "o1", "10.00")
	w.StartCheckout(t, "o1", order.MethodCard, order.PlanKind{})
	started := children(env)
	res, err := run(t, env, checkout.Input{OrderID: "o1", Tenant: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != checkout.OutcomeConfirmed {
		t.Fatalf("outcome %q (%s)", res.Outcome, res.Reason)
	}
	if len(res.Shipments) != 2 || res.Shipments[0].Location != ams || res.Shipments[1].Location != ber ||
		!res.Shipments[0].Amount.Equal(sagatest.USD("20.00")) || !res.Shipments[1].Amount.Equal(sagatest.USD("5.00")) {
		t.Fatalf("shipments %+v", res.Shipments)
	}
	if st := w.Order(t, "o1").Status(); st != order.StatusConfirmed {
		t.Fatalf("order %s", st)
	}
	p := w.Payment(t, "o1")
	if p.Status() != payment.StatusAuthorized || !p.Authorized().Equal(sagatest.USD("25.00")) || res.Payment.ExpiresAt.IsZero() {
		t.Fatalf("payment %s %s, hold %+v", p.Status(), p.Authorized(), res.Payment)
	}
	if n := w.PSP.Effects("o1", sandbox.OpAuthorize); n != 1 {
		t.Fatalf("%d authorizations", n)
	}
	if a, b := w.Available(t, "A", ams), w.Available(t, "B", ber); a != 8 || b != 4 {
		t.Fatalf("available A=%d B=%d", a, b)
	}
	if res.FulfillmentID != fulfillment.WorkflowID("o1") || len(*started) != 1 || (*started)[0] != res.FulfillmentID {
		t.Fatalf("fulfillment not handed over: %q, started %v", res.FulfillmentID, *started)
	}
}

func TestChoiceArrivesBySignal(t *testing.T) {
	env, w := world(t, "o1", "10.00")
	env.RegisterDelayedCallback(func() {
		w.StartCheckout(t, "o1", order.MethodCard, order.PlanKind{})
		env.SignalWorkflow(checkout.SignalCheckoutStarted, checkout.Choice{Method: order.MethodCard})
	}, 5*time.Minute)
	res, err := run(t, env, checkout.Input{OrderID: "o1"})
	if err != nil || res.Outcome != checkout.OutcomeConfirmed {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestAbandonedWithoutChoice(t *testing.T) {
	env, w := world(t, "o1", "10.00")
	res, err := run(t, env, checkout.Input{OrderID: "o1", Options: checkout.Options{ChoiceTimeout: 30 * time.Minute}})
	if err != nil || res.Outcome != checkout.OutcomeAbandoned {
		t.Fatalf("%+v %v", res, err)
	}
	if st := w.Order(t, "o1").Status(); st != order.StatusCancelled {
		t.Fatalf("order %s", st)
	}
}

func TestDeclinedCard(t *testing.T) {
	env, w := world(t, "o1", "10.00")
	w.Tokens.Set("o1", "tok_decline_insufficient_funds")
	w.StartCheckout(t, "o1", order.MethodCard, order.PlanKind{})
	res, err := run(t, env, checkout.Input{OrderID: "o1"})
	if err != nil || res.Outcome != checkout.OutcomeDeclined {
		t.Fatalf("%+v %v", res, err)
	}
	if p := w.Payment(t, "o1"); p.Status() != payment.StatusDeclined || p.DeclineReason() != payment.DeclineInsufficientFunds {
		t.Fatalf("payment %s %s", p.Status(), p.DeclineReason())
	}
	if st := w.Order(t, "o1").Status(); st != order.StatusCancelled {
		t.Fatalf("order %s", st)
	}
	requireReleased(t, w)
}

func TestOutOfStock(t *testing.T) {
	env, w := sagatest.NewEnv(t)
	w.Stock(t, "A", ams, 10)
	w.Stock(t, "B", ber, 1)
	w.PlaceOrder(t, "o1", sagatest.Line{SKU: "A", Qty: 2, Price: "10.00"}, sagatest.Line{SKU: "B", Qty: 3, Price: "5.00"})
	w.StartCheckout(t, "o1", order.MethodCard, order.PlanKind{})
	res, err := run(t, env, checkout.Input{OrderID: "o1"})
	if err != nil || res.Outcome != checkout.OutcomeOutOfStock {
		t.Fatalf("%+v %v", res, err)
	}
	if a := w.Available(t, "A", ams); a != 10 {
		t.Fatalf("A held by a failed checkout: available %d", a)
	}
	if n := len(w.PSP.Ledger()); n != 0 {
		t.Fatalf("provider called %d times", n)
	}
	if st := w.Order(t, "o1").Status(); st != order.StatusCancelled {
		t.Fatalf("order %s", st)
	}
}

func TestBNPLPayIn4(t *testing.T) {
	env, w := world(t, "o1", "50.00") // 105.00
	w.Tokens.Set("o1", "tok_bnpl_approve")
	w.StartCheckout(t, "o1", order.MethodBNPL, order.PlanPayIn4)
	started := children(env)
	res, err := run(t, env, checkout.Input{OrderID: "o1"})
	if err != nil || res.Outcome != checkout.OutcomeConfirmed {
		t.Fatalf("%+v %v", res, err)
	}
	plan := w.Plan(t, "o1")
	if plan.Status() != financing.StatusActive || !plan.Collected().Equal(sagatest.USD("26.25")) {
		t.Fatalf("plan %s collected %s", plan.Status(), plan.Collected())
	}
	if n := w.PSP.Effects("o1-i1-a1", sandbox.OpCapture); n != 1 {
		t.Fatalf("first installment captured %d times", n)
	}
	if p := w.Payment(t, "o1"); p.Method() != payment.MethodBNPL || p.Status() != payment.StatusAuthorized {
		t.Fatalf("order payment %s %s", p.Method(), p.Status())
	}
	if res.ScheduleID != "bnpl-o1" || res.PlanID != "o1" || len(*started) != 2 {
		t.Fatalf("%+v", res)
	}
}

func TestBNPLMonthlyCollectsNothingAtCheckout(t *testing.T) {
	env, w := world(t, "o1", "100.00") // 205.00
	w.StartCheckout(t, "o1", order.MethodBNPL, order.PlanMonthly6)
	res, err := run(t, env, checkout.Input{OrderID: "o1"})
	if err != nil || res.Outcome != checkout.OutcomeConfirmed {
		t.Fatalf("%+v %v", res, err)
	}
	if plan := w.Plan(t, "o1"); !plan.Collected().IsZero() || len(plan.Installments()) != 6 || plan.Terms().APR.BasisPoints() != 1999 {
		t.Fatalf("plan collected %s, %d installments, %s", plan.Collected(), len(plan.Installments()), plan.Terms().APR)
	}
	if n := len(w.PSP.Ledger()); n != 0 {
		t.Fatalf("provider called %d times", n)
	}
}

func TestCreditDeclined(t *testing.T) {
	env, w := world(t, "o1", "3000.00") // 6005.00 > the 5000.00 line
	w.StartCheckout(t, "o1", order.MethodBNPL, order.PlanMonthly12)
	res, err := run(t, env, checkout.Input{OrderID: "o1"})
	if err != nil || res.Outcome != checkout.OutcomeCreditDeclined {
		t.Fatalf("%+v %v", res, err)
	}
	if plan := w.Plan(t, "o1"); plan.Status() != financing.StatusDeclined {
		t.Fatalf("plan %s", plan.Status())
	}
	requireReleased(t, w)
}

func TestBNPLFirstInstallmentDeclined(t *testing.T) {
	env, w := world(t, "o1", "50.00")
	w.Tokens.Set("o1", "tok_decline_do_not_honor")
	w.StartCheckout(t, "o1", order.MethodBNPL, order.PlanPayIn4)
	res, err := run(t, env, checkout.Input{OrderID: "o1"})
	if err != nil || res.Outcome != checkout.OutcomeDeclined {
		t.Fatalf("%+v %v", res, err)
	}
	if plan := w.Plan(t, "o1"); plan.Status() != financing.StatusRefunded || plan.FailedCollections() != 1 {
		t.Fatalf("plan %s, %d failed collections", plan.Status(), plan.FailedCollections())
	}
	requireReleased(t, w)
	if st := w.Order(t, "o1").Status(); st != order.StatusCancelled {
		t.Fatalf("order %s", st)
	}
}

var errBoom = temporal.NewNonRetryableApplicationError("injected failure", "Injected", nil)

// TestFailureAtEachStepIsCompensated makes each step fail after doing its
// work (the worst case: the effect happened, the saga saw an error) and
// checks that everything done so far is undone.
func TestFailureAtEachStepIsCompensated(t *testing.T) {
	type injector func(env *testsuite.TestWorkflowEnvironment, real *checkout.Activities)
	cases := []struct {
		name   string
		method order.PaymentMethod
		plan   order.PlanKind
		inject injector
	}{
		{"reserve", order.MethodCard, order.PlanKind{}, func(env *testsuite.TestWorkflowEnvironment, a *checkout.Activities) {
			env.OnActivity(a.ReserveStock, mock.Anything, mock.Anything).Return(func(ctx context.Context, in checkout.StockInput) ([]fulfillment.Shipment, error) {
				_, _ = a.ReserveStock(ctx, in)
				return nil, errBoom
			})
		}},
		{"authorize", order.MethodCard, order.PlanKind{}, func(env *testsuite.TestWorkflowEnvironment, a *checkout.Activities) {
			env.OnActivity(a.AuthorizeCard, mock.Anything, mock.Anything).Return(func(ctx context.Context, in checkout.PayInput) (steps.Hold, error) {
				_, _ = a.AuthorizeCard(ctx, in)
				return steps.Hold{}, errBoom
			})
		}},
		{"confirm", order.MethodCard, order.PlanKind{}, func(env *testsuite.TestWorkflowEnvironment, a *checkout.Activities) {
			env.OnActivity(a.ConfirmOrder, mock.Anything, mock.Anything).Return(errBoom)
		}},
		{"credit", order.MethodBNPL, order.PlanPayIn4, func(env *testsuite.TestWorkflowEnvironment, a *checkout.Activities) {
			env.OnActivity(a.OpenPlan, mock.Anything, mock.Anything).Return(func(ctx context.Context, in checkout.PlanInput) (checkout.PlanOpened, error) {
				_, _ = a.OpenPlan(ctx, in)
				return checkout.PlanOpened{}, errBoom
			})
		}},
		{"first installment", order.MethodBNPL, order.PlanPayIn4, func(env *testsuite.TestWorkflowEnvironment, a *checkout.Activities) {
			env.OnActivity(a.CollectFirstInstallment, mock.Anything, mock.Anything).Return(func(ctx context.Context, in checkout.PayInput) error {
				if err := a.CollectFirstInstallment(ctx, in); err != nil {
					return err
				}
				return errBoom
			})
		}},
		{"plan hold", order.MethodBNPL, order.PlanPayIn4, func(env *testsuite.TestWorkflowEnvironment, a *checkout.Activities) {
			env.OnActivity(a.RecordPlanHold, mock.Anything, mock.Anything).Return(func(ctx context.Context, in checkout.PayInput) (steps.Hold, error) {
				_, _ = a.RecordPlanHold(ctx, in)
				return steps.Hold{}, errBoom
			})
		}},
		{"bnpl confirm", order.MethodBNPL, order.PlanPayIn4, func(env *testsuite.TestWorkflowEnvironment, a *checkout.Activities) {
			env.OnActivity(a.ConfirmOrder, mock.Anything, mock.Anything).Return(errBoom)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, w := world(t, "o1", "50.00")
			w.StartCheckout(t, "o1", c.method, c.plan)
			c.inject(env, w.Activities(t).Checkout)
			_, err := run(t, env, checkout.Input{OrderID: "o1"})
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != "Injected" {
				t.Fatalf("want the saga to fail with the injected error; got %v", err)
			}
			if st := w.Order(t, "o1").Status(); st != order.StatusCancelled {
				t.Fatalf("order %s", st)
			}
			requireReleased(t, w)
			requireNoOpenHolds(t, w)
			if p := w.Payment(t, "o1"); p.Status() == payment.StatusAuthorized {
				t.Fatalf("order payment left authorized")
			}
			if c.method == order.MethodBNPL {
				if pl := w.Plan(t, "o1"); pl.Status() == financing.StatusActive {
					t.Fatalf("plan left active, owing %s", pl.Owed())
				}
			}
			t.Logf("compensated: order cancelled, stock released, %d provider effects all settled", len(w.PSP.Ledger()))
		})
	}
}

// TestRerunFindsTheOrderWhereItLeftIt covers a saga whose local activities
// run again after the server refused a workflow task's completion (a
// signal arrived meanwhile): it meets the order as its lost attempt left
// it, and must neither stop short of the hand-over nor misreport.
func TestRerunFindsTheOrderWhereItLeftIt(t *testing.T) {
	t.Run("confirmed, not handed over", func(t *testing.T) {
		env, w := world(t, "o1", "10.00")
		w.Confirm(t, "o1", order.MethodCard, order.PlanKind{})
		started := children(env)
		res, err := run(t, env, checkout.Input{OrderID: "o1"})
		if err != nil || res.Outcome != checkout.OutcomeConfirmed || len(res.Shipments) != 2 || res.Payment == nil {
			t.Fatalf("%+v %v", res, err)
		}
		if len(*started) != 1 || (*started)[0] != "fulfillment-o1" {
			t.Fatalf("fulfillment not started: %v", *started)
		}
		if n := w.PSP.Effects("o1", sandbox.OpAuthorize); n != 1 {
			t.Fatalf("%d authorizations", n)
		}
	})
	t.Run("confirmed and fulfilling", func(t *testing.T) {
		env, w := world(t, "o1", "10.00")
		in := w.Confirm(t, "o1", order.MethodCard, order.PlanKind{})
		if err := w.Activities(t).Fulfillment.SplitOrder(context.Background(), fulfillment.SplitInput{OrderID: "o1", Shipments: in.Shipments, At: w.Now()}); err != nil {
			t.Fatal(err)
		}
		res, err := run(t, env, checkout.Input{OrderID: "o1"})
		if err != nil || res.Outcome != checkout.OutcomeAlreadyConfirmed {
			t.Fatalf("%+v %v", res, err)
		}
	})
	t.Run("cancelled by the saga", func(t *testing.T) {
		env, w := world(t, "o1", "10.00")
		w.StartCheckout(t, "o1", order.MethodCard, order.PlanKind{})
		if err := w.Activities(t).Checkout.CancelOrder(context.Background(), checkout.CancelInput{OrderID: "o1", Reason: "out_of_stock: no B", At: w.Now()}); err != nil {
			t.Fatal(err)
		}
		res, err := run(t, env, checkout.Input{OrderID: "o1"})
		if err != nil || res.Outcome != checkout.OutcomeOutOfStock || res.Reason != "no B" {
			t.Fatalf("%+v %v", res, err)
		}
	})
}
