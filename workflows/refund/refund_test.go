package refund_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/workflows/bnpl"
	"github.com/livecore/livecore/workflows/fulfillment"
	"github.com/livecore/livecore/workflows/internal/sagatest"
	"github.com/livecore/livecore/workflows/refund"
)

// shipped confirms order o1 (2 x A at price, 1 x B at 5.00) and captures
// both parcels, as dispatch would.
func shipped(t *testing.T, method order.PaymentMethod, plan order.PlanKind, price string, capture bool) (*testsuite.TestWorkflowEnvironment, *sagatest.World) {
	env, w := sagatest.NewEnv(t)
	w.Stock(t, "A", sagatest.Locations[0], 10)
	w.Stock(t, "B", sagatest.Locations[1], 5)
	w.PlaceOrder(t, "o1", sagatest.Line{SKU: "A", Qty: 2, Price: price}, sagatest.Line{SKU: "B", Qty: 1, Price: "5.00"})
	in := w.Confirm(t, "o1", method, plan)
	if capture {
		f := w.Activities(t).Fulfillment
		for _, s := range in.Shipments {
			if err := f.CaptureShipment(context.Background(), fulfillment.CaptureInput{
				OrderID: "o1", PaymentID: "o1", ShipmentID: s.ID, Amount: s.Amount, ViaPSP: method == order.MethodCard, At: w.Now(),
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return env, w
}

func run(t *testing.T, env *testsuite.TestWorkflowEnvironment, in refund.Input) refund.Result {
	t.Helper()
	env.ExecuteWorkflow(refund.Refund, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var res refund.Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestPartialCardRefund(t *testing.T) {
	env, w := shipped(t, order.MethodCard, order.PlanKind{}, "10.00", true)
	res := run(t, env, refund.Input{OrderID: "o1", RefundID: "return-r1", Amount: sagatest.USD("7.50"), Reason: "one item back"})
	if res.Outcome != refund.OutcomeRefunded || res.Instrument != "card" || !res.Refunded.Equal(sagatest.USD("7.50")) {
		t.Fatalf("%+v", res)
	}
	if n := w.PSP.Effects("o1", sandbox.OpRefund); n != 1 {
		t.Fatalf("%d provider refunds", n)
	}
	o, p := w.Order(t, "o1"), w.Payment(t, "o1")
	if !o.Refunded().Equal(sagatest.USD("7.50")) || !o.RefundPending().IsZero() || !p.Refunded().Equal(sagatest.USD("7.50")) {
		t.Fatalf("order refunded %s pending %s, payment refunded %s", o.Refunded(), o.RefundPending(), p.Refunded())
	}
}

func TestRefundAboveWhatWasPaidIsRejected(t *testing.T) {
	env, w := shipped(t, order.MethodCard, order.PlanKind{}, "10.00", true)
	res := run(t, env, refund.Input{OrderID: "o1", RefundID: "r1", Amount: sagatest.USD("30.00"), Reason: "too much"})
	if res.Outcome != refund.OutcomeRejected {
		t.Fatalf("%+v", res)
	}
	if n := w.PSP.Effects("o1", sandbox.OpRefund); n != 0 {
		t.Fatalf("%d provider refunds", n)
	}
}

func TestRefundOfUncapturedMoneySettlesAtZero(t *testing.T) {
	env, w := shipped(t, order.MethodCard, order.PlanKind{}, "10.00", false)
	res := run(t, env, refund.Input{OrderID: "o1", RefundID: "r1", Amount: sagatest.USD("5.00"), Reason: "goodwill"})
	if res.Outcome != refund.OutcomeRejected {
		t.Fatalf("%+v", res)
	}
	o := w.Order(t, "o1")
	if !o.RefundPending().IsZero() || !o.Refunded().IsZero() {
		t.Fatalf("order pending %s refunded %s", o.RefundPending(), o.Refunded())
	}
}

func TestBNPLRefundTakesItOffThePlan(t *testing.T) {
	env, w := shipped(t, order.MethodBNPL, order.PlanPayIn4, "50.00", true) // 105.00, 26.25 collected
	env.OnSignalExternalWorkflow(mock.Anything, bnpl.WorkflowID("o1"), "", bnpl.SignalPlanChanged, mock.Anything).Return(nil).Once()
	res := run(t, env, refund.Input{OrderID: "o1", RefundID: "return-r1", Amount: sagatest.USD("30.00"), Reason: "returned"})
	if res.Outcome != refund.OutcomeRefunded || res.Instrument != "bnpl" {
		t.Fatalf("%+v", res)
	}
	plan := w.Plan(t, "o1")
	if !plan.Refunded().Equal(sagatest.USD("30.00")) || !plan.ReturnedToCustomer().IsZero() {
		t.Fatalf("plan refunded %s returned %s", plan.Refunded(), plan.ReturnedToCustomer())
	}
	owed, _ := money.MustParse("105.00", "USD").Sub(sagatest.USD("56.25")) // - 26.25 paid - 30.00 refunded
	if !plan.Owed().Equal(owed) {
		t.Fatalf("owed %s, want %s", plan.Owed(), owed)
	}
	if p := w.Payment(t, "o1"); !p.Refunded().Equal(sagatest.USD("30.00")) {
		t.Fatalf("BNPL payment refunded %s", p.Refunded())
	}
	if o := w.Order(t, "o1"); !o.Refunded().Equal(sagatest.USD("30.00")) {
		t.Fatalf("order refunded %s", o.Refunded())
	}
	env.AssertExpectations(t)
}

func TestBNPLRefundBeyondWhatIsOwedGoesBackToTheCard(t *testing.T) {
	env, w := shipped(t, order.MethodBNPL, order.PlanPayIn4, "50.00", true)
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(nil)
	res := run(t, env, refund.Input{OrderID: "o1", RefundID: "return-all", Amount: sagatest.USD("105.00"), Reason: "all returned"})
	if res.Outcome != refund.OutcomeRefunded || !res.ReturnedToCard.Equal(sagatest.USD("26.25")) {
		t.Fatalf("%+v", res)
	}
	if n := w.PSP.Effects("o1-i1-a1", sandbox.OpRefund); n != 1 {
		t.Fatalf("first installment refunded %d times", n)
	}
}
