package bnpl_test

import (
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/workflows/bnpl"
	"github.com/livecore/livecore/workflows/internal/sagatest"
)

const day = 24 * time.Hour

// payIn4 confirms order o1 of 105.00 on a pay-in-4 plan (installments of
// 26.25; the first one collected at checkout).
func payIn4(t *testing.T) (*testsuite.TestWorkflowEnvironment, *sagatest.World, bnpl.Input) {
	env, w := sagatest.NewEnv(t)
	loc := sagatest.Locations[0]
	w.Stock(t, "A", loc, 10)
	w.PlaceOrder(t, "o1", sagatest.Line{SKU: "A", Qty: 2, Price: "52.50"})
	in := w.Confirm(t, "o1", order.MethodBNPL, order.PlanPayIn4)
	return env, w, bnpl.Input{PlanID: in.PlanID, OrderID: "o1", Tenant: "t1"}
}

// runAll runs the schedule through every continue-as-new until it ends
// (at most max runs) and returns the last status and the number of runs.
func runAll(t *testing.T, env *testsuite.TestWorkflowEnvironment, w *sagatest.World, in bnpl.Input, max int) (bnpl.Status, int) {
	t.Helper()
	for runs := 1; runs <= max; runs++ {
		env.ExecuteWorkflow(bnpl.Schedule, in)
		if !env.IsWorkflowCompleted() {
			t.Fatal("workflow did not complete")
		}
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &in); err != nil {
				t.Fatal(err)
			}
			env = sagatest.Continue(t, w, env.Now())
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var st bnpl.Status
		if err := env.GetWorkflowResult(&st); err != nil {
			t.Fatal(err)
		}
		return st, runs
	}
	t.Fatalf("still running after %d runs", max)
	return bnpl.Status{}, 0
}

func TestOnTimeInstallmentsContinueAsNewAfterEach(t *testing.T) {
	env, w, in := payIn4(t)
	st, runs := runAll(t, env, w, in, 10)
	plan := w.Plan(t, "o1")
	if plan.Status() != financing.StatusPaidOff || !plan.Collected().Equal(sagatest.USD("105.00")) {
		t.Fatalf("plan %s collected %s", plan.Status(), plan.Collected())
	}
	// Installments 2, 3, 4: one run each, and a last one that sees the
	// plan paid off.
	if runs != 4 || st.PlanStatus != "paid_off" {
		t.Fatalf("%d runs, status %+v", runs, st)
	}
	for _, c := range []string{"o1-i2-a1", "o1-i3-a1", "o1-i4-a1"} {
		if n := w.PSP.Effects(c, sandbox.OpCapture); n != 1 {
			t.Fatalf("%s captured %d times", c, n)
		}
	}
	t.Logf("pay-in-4: %d runs, collected %s", runs, plan.Collected())
}

func TestLateInstallmentGetsTheLateFeeThenIsCollected(t *testing.T) {
	env, w, in := payIn4(t)
	w.Tokens.Set("o1", "tok_decline_insufficient_funds")
	// The customer fixes their card 12 days after installment 2 was due.
	due2 := sagatest.Start.Add(14 * day)
	env.RegisterDelayedCallback(func() { w.Tokens.Set("o1", "tok_visa_approve") }, due2.Add(12*day).Sub(sagatest.Start)-time.Minute)
	in.Options.InstallmentsPerRun = 1
	env.ExecuteWorkflow(bnpl.Schedule, in)
	var can *workflow.ContinueAsNewError
	if !errors.As(env.GetWorkflowError(), &can) {
		t.Fatalf("want continue-as-new after installment 2, got %v", env.GetWorkflowError())
	}
	plan := w.Plan(t, "o1")
	inst := plan.Installments()[1]
	if !inst.FeeAssessed || !inst.Fee.Equal(sagatest.USD("6.56")) || inst.Unpaid().IsPositive() {
		t.Fatalf("installment 2: fee %s assessed %v, unpaid %s", inst.Fee, inst.FeeAssessed, inst.Unpaid())
	}
	// Declined at due, +3, +6, +9 days; collected at +12.
	if n := plan.FailedCollections(); n != 4 {
		t.Fatalf("%d failed collections", n)
	}
	if n := w.PSP.Effects("o1-i2-a5", sandbox.OpCapture); n != 1 {
		t.Fatalf("attempt 5 captured %d times", n)
	}
	t.Logf("installment 2: %d declines, late fee %s, then collected", plan.FailedCollections(), inst.Fee)
}

func TestUnpaidPlanDefaultsThenIsChargedOff(t *testing.T) {
	env, w, in := payIn4(t)
	w.Tokens.Set("o1", "tok_decline_do_not_honor")
	st, runs := runAll(t, env, w, in, 10)
	plan := w.Plan(t, "o1")
	if plan.Status() != financing.StatusChargedOff || st.PlanStatus != "charged_off" || st.Delinquency != "90+" || runs != 4 {
		t.Fatalf("plan %s, status %+v, %d runs", plan.Status(), st, runs)
	}
	if n := w.Count(t, financing.StreamID("o1"), financing.TypeDefaulted); n != 1 {
		t.Fatalf("%d defaults", n)
	}
	if !plan.WrittenOff().IsPositive() {
		t.Fatalf("nothing written off")
	}
	t.Logf("defaulted and charged off after %d failed collections in %d runs; written off %s", plan.FailedCollections(), runs, plan.WrittenOff())
}

func TestEarlyPayoff(t *testing.T) {
	env, w, in := payIn4(t)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(bnpl.SignalPayoff, bnpl.PayoffRequest{RequestID: "r1"}) }, 3*day)
	st, runs := runAll(t, env, w, in, 2)
	plan := w.Plan(t, "o1")
	if plan.Status() != financing.StatusPaidOff || st.PlanStatus != "paid_off" || runs != 1 {
		t.Fatalf("plan %s, status %+v", plan.Status(), st)
	}
	if n := w.PSP.Effects("o1-payoff-r1", sandbox.OpCapture); n != 1 {
		t.Fatalf("payoff captured %d times", n)
	}
	if !plan.Collected().Equal(sagatest.USD("105.00")) {
		t.Fatalf("collected %s", plan.Collected())
	}
}

func TestPartialRefundThenFullRefundReturnsTheFirstInstallment(t *testing.T) {
	env, w, in := payIn4(t)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(bnpl.SignalRefund, bnpl.RefundRequest{RefundID: "ret-1", Amount: sagatest.USD("50.00")})
	}, day)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(bnpl.SignalRefund, bnpl.RefundRequest{RefundID: "ret-2", Amount: sagatest.USD("55.00")})
	}, 2*day)
	st, _ := runAll(t, env, w, in, 2)
	plan := w.Plan(t, "o1")
	if plan.Status() != financing.StatusRefunded || st.PlanStatus != "refunded" {
		t.Fatalf("plan %s", plan.Status())
	}
	if !plan.ReturnedToCustomer().Equal(sagatest.USD("26.25")) {
		t.Fatalf("returned %s", plan.ReturnedToCustomer())
	}
	if n := w.PSP.Effects("o1-i1-a1", sandbox.OpRefund); n != 1 {
		t.Fatalf("first installment refunded %d times", n)
	}
}
