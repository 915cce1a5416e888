package workflows_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/workflows/bnpl"
	"github.com/livecore/livecore/workflows/checkout"
	"github.com/livecore/livecore/workflows/dispatcher"
	"github.com/livecore/livecore/workflows/fulfillment"
	"github.com/livecore/livecore/workflows/internal/sagatest"
	"github.com/livecore/livecore/workflows/refund"
)

// TestDispatcherRestartsAndRedelivery places orders while the dispatcher
// runs, while it is stopped, and after it restarts from its checkpoint;
// then a dispatcher with no checkpoint re-delivers the whole log. Every
// order gets exactly one saga.
func TestDispatcherRestartsAndRedelivery(t *testing.T) {
	s := newStockedStack(t, stackOptions{})
	var ids []string
	place := func(n int) {
		for range n {
			id := fmt.Sprintf("restart-%02d", len(ids))
			ids = append(ids, id)
			s.placeAndChoose(id, "10.00", order.MethodCard, order.PlanKind{})
		}
	}
	place(5)
	for _, id := range ids {
		s.checkout(id)
	}
	first := s.disp.Stats()
	s.stopDispatcher()
	place(5) // accepted while no dispatcher runs
	s.startDispatcher(checkout.Options{Steps: testOptions})
	for _, id := range ids {
		if res := s.checkout(id); res.Outcome != checkout.OutcomeConfirmed {
			t.Fatalf("%s: %+v", id, res)
		}
	}
	second := s.disp.Stats()
	s.stopDispatcher()

	// A dispatcher that lost its checkpoint starts from the beginning.
	if err := os.Remove(filepath.Join(s.dir, "dispatcher.checkpoint")); err != nil {
		t.Fatal(err)
	}
	s.startDispatcher(checkout.Options{Steps: testOptions})
	s.waitDispatched()
	third := s.disp.Stats()
	sagas := 0
	for _, id := range ids {
		sagas += s.countRuns(checkout.WorkflowID(id))
	}
	fmt.Printf("dispatcher: %d orders; run 1 started %d, run 2 (after a stop, from its checkpoint) started %d; run 3 (no checkpoint) re-delivered the log: started %d, deduplicated %d; sagas per order: %d/%d\n",
		len(ids), first.Started, second.Started, third.Started, third.Deduplicated, sagas, len(ids))
	if first.Started != 5 || second.Started != 5 || third.Started != 0 || third.Deduplicated < int64(len(ids)) || sagas != len(ids) {
		t.Fatalf("stats %+v %+v %+v, %d sagas", first, second, third, sagas)
	}
}

// TestDispatcherFilterAndRedrive is a region's view: the dispatcher starts
// sagas only for the orders its filter accepts (the homes it holds); the
// others get none until Redrive starts them from the orders' state (a home
// taken over). Redrive leaves a running or completed saga alone and
// replaces a terminated one (what a region does to the sagas of a home it
// lost).
func TestDispatcherFilterAndRedrive(t *testing.T) {
	s := newStockedStack(t, stackOptions{NoDispatcher: true})
	s.startFilteredDispatcher(checkout.Options{Steps: testOptions}, func(env event.Envelope) bool {
		return !strings.HasPrefix(env.StreamID, "order-far-")
	})
	s.placeAndChoose("near-1", "10.00", order.MethodCard, order.PlanKind{})
	s.placeAndChoose("far-1", "10.00", order.MethodCard, order.PlanKind{})
	s.placeAndChoose("far-2", "10.00", order.MethodCard, order.PlanKind{})
	s.placeAndChoose("far-open", "10.00", order.PaymentMethod{}, order.PlanKind{}) // no choice yet: its saga waits
	if res := s.checkout("near-1"); res.Outcome != checkout.OutcomeConfirmed {
		t.Fatalf("near-1: %+v", res)
	}
	s.waitDispatched()
	for _, id := range []string{"far-1", "far-2", "far-open"} {
		if _, err := s.client.DescribeWorkflowExecution(s.ctx, checkout.WorkflowID(id), ""); err == nil {
			t.Fatalf("%s has a saga although the filter refused its events", id)
		}
	}

	far := []dispatcher.RedriveOrder{{OrderID: "far-1", Tenant: "t1"}, {OrderID: "far-2", Tenant: "t1"}, {OrderID: "far-open", Tenant: "t1"}}
	n, err := s.disp.Redrive(s.ctx, far)
	if err != nil || n != 3 {
		t.Fatalf("redrive: %d started, %v", n, err)
	}
	for _, id := range []string{"far-1", "far-2"} {
		if res := s.checkout(id); res.Outcome != checkout.OutcomeConfirmed {
			t.Fatalf("%s after redrive: %+v", id, res)
		}
	}
	// Again: far-1 and far-2 finished (a new run finds them handed over
	// and their fulfillment running: nothing to do); far-open still waits
	// and is left alone.
	if n, err := s.disp.Redrive(s.ctx, far); err != nil || n != 2 {
		t.Fatalf("second redrive: %d started, %v", n, err)
	}
	for _, id := range []string{"far-1", "far-2"} {
		if res := s.checkout(id); res.Outcome != checkout.OutcomeAlreadyConfirmed && res.Outcome != checkout.OutcomeConfirmed {
			t.Fatalf("%s re-driven again: %+v", id, res)
		}
	}
	// A terminated saga (its home was lost) is replaced by the next take.
	if err := s.client.TerminateWorkflow(s.ctx, checkout.WorkflowID("far-open"), "", "home lost"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.disp.Redrive(s.ctx, far[2:]); err != nil || n != 1 {
		t.Fatalf("redrive after terminate: %d started, %v", n, err)
	}
	fmt.Printf("dispatcher filter and redrive: 1 saga by the filtered dispatcher, 3 by redrive, 2 finished ones run again on a second redrive, 1 after a terminate; stats %+v\n", s.disp.Stats())
}

// TestRedriveResumesFulfillment: an order in fulfillment whose fulfillment
// run is lost (the old owner's Temporal: here its run is terminated, as a
// region does for a home it no longer holds) is re-driven: the new
// checkout run resumes the fulfillment from the aggregates. The parcel
// delivered before is settled as recorded (no report for it comes again)
// and captured once, not twice; the rest of the order is fulfilled by the
// resumed run.
func TestRedriveResumesFulfillment(t *testing.T) {
	s := newStockedStack(t, stackOptions{})
	w := s.world
	s.placeAndChoose("moved-1", "10.00", order.MethodCard, order.PlanKind{})
	if res := s.checkout("moved-1"); res.Outcome != checkout.OutcomeConfirmed || len(res.Shipments) != 2 {
		t.Fatalf("%+v", res)
	}
	s.carrier("moved-1", fulfillment.CarrierUpdate{ShipmentID: "s1", Event: fulfillment.Dispatched},
		fulfillment.CarrierUpdate{ShipmentID: "s1", Event: fulfillment.Delivered})
	for delivered := false; !delivered; {
		v, err := s.client.QueryWorkflow(s.ctx, fulfillment.WorkflowID("moved-1"), "", fulfillment.QueryStatus)
		if err != nil {
			t.Fatal(err)
		}
		var st fulfillment.Status
		if err := v.Get(&st); err != nil {
			t.Fatal(err)
		}
		for _, sh := range st.Shipments {
			delivered = delivered || sh.ID == "s1" && sh.State == fulfillment.StateDelivered
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.client.TerminateWorkflow(s.ctx, fulfillment.WorkflowID("moved-1"), "", "home lost"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.disp.Redrive(s.ctx, []dispatcher.RedriveOrder{{OrderID: "moved-1", Tenant: "t1"}}); err != nil || n != 1 {
		t.Fatalf("redrive: %d started, %v", n, err)
	}
	if res := s.checkout("moved-1"); res.Outcome != checkout.OutcomeConfirmed || res.FulfillmentID == "" {
		t.Fatalf("re-driven checkout: %+v", res)
	}
	// The resumed run knows s1 was delivered (no report will come again):
	// s2's reports are all it needs to finish.
	s.carrier("moved-1", fulfillment.CarrierUpdate{ShipmentID: "s2", Event: fulfillment.Dispatched},
		fulfillment.CarrierUpdate{ShipmentID: "s2", Event: fulfillment.Delivered})
	st := s.fulfilled("moved-1")
	captures := w.PSP.Effects("moved-1", sandbox.OpCapture)
	fmt.Printf("redrive resumes fulfillment: captured %s of 25.00 in %d provider captures; order %s\n", st.Captured, captures, w.Order(t, "moved-1").Status())
	if !st.Captured.Equal(sagatest.USD("25.00")) || captures != 2 || w.Order(t, "moved-1").Status() != order.StatusCompleted {
		t.Fatalf("status %+v, %d captures, order %s", st, captures, w.Order(t, "moved-1").Status())
	}
	if got := w.Payment(t, "moved-1").Captured(); !got.Equal(sagatest.USD("25.00")) {
		t.Fatalf("payment captured %s in the books", got)
	}
}

// waitDispatched waits until the dispatcher's checkpoint reaches the
// store's head as of now.
func (s *stack) waitDispatched() {
	s.t.Helper()
	head, err := s.world.Store.Head(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	for {
		pos, err := dispatcher.ReadCheckpoint(filepath.Join(s.dir, "dispatcher.checkpoint"))
		if err != nil {
			s.t.Fatal(err)
		}
		if pos >= head {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedriveSchedules: a BNPL plan's schedule whose run is lost (the old
// owner's Temporal; here terminated, as a region does for a home it no
// longer holds) is started again by RedriveSchedules and carries on from
// the plan's state: the first installment, collected at checkout, is not
// collected again, and an early payoff closes the plan. A running schedule
// is left alone.
func TestRedriveSchedules(t *testing.T) {
	s := newStockedStack(t, stackOptions{})
	w := s.world
	s.placeAndChoose("moved-bnpl", "50.00", order.MethodBNPL, order.PlanPayIn4)
	res := s.checkout("moved-bnpl")
	if res.Outcome != checkout.OutcomeConfirmed || res.ScheduleID == "" {
		t.Fatalf("%+v", res)
	}
	var st bnpl.Status
	s.waitQuery(res.ScheduleID, bnpl.QueryStatus, &st, func() bool { return !st.NextWake.IsZero() })
	collected := w.Plan(t, "moved-bnpl").Collected()
	if err := s.client.TerminateWorkflow(s.ctx, res.ScheduleID, "", "home lost"); err != nil {
		t.Fatal(err)
	}
	plans := []dispatcher.RedrivePlan{{PlanID: "moved-bnpl", OrderID: "moved-bnpl", Tenant: "t1"}}
	if n, err := s.disp.RedriveSchedules(s.ctx, plans); err != nil || n != 1 {
		t.Fatalf("redrive schedules: %d started, %v", n, err)
	}
	if n, err := s.disp.RedriveSchedules(s.ctx, plans); err != nil || n != 0 {
		t.Fatalf("redrive of a running schedule: %d started, %v", n, err)
	}
	st = bnpl.Status{}
	s.waitQuery(res.ScheduleID, bnpl.QueryStatus, &st, func() bool { return !st.NextWake.IsZero() })
	if got := w.Plan(t, "moved-bnpl").Collected(); !got.Equal(collected) {
		t.Fatalf("the re-driven schedule collected again: %s, was %s", got, collected)
	}
	s.signal(res.ScheduleID, bnpl.SignalPayoff, bnpl.PayoffRequest{RequestID: "p1"})
	if err := s.await(res.ScheduleID, &st); err != nil || st.PlanStatus != "paid_off" {
		t.Fatalf("%+v %v", st, err)
	}
	fmt.Printf("redrive schedules: collected %s before the move, plan %s after the re-driven schedule's payoff (collected %s)\n",
		collected, w.Plan(t, "moved-bnpl").Status(), w.Plan(t, "moved-bnpl").Collected())
	if p := w.Plan(t, "moved-bnpl"); p.Status() != financing.StatusPaidOff || !p.Collected().Equal(sagatest.USD("105.00")) {
		t.Fatalf("plan %s collected %s", p.Status(), p.Collected())
	}
}

// TestRedriveRefunds: a refund asked for in a home this region does not
// hold gets no saga from the filtered dispatcher; RedriveRefunds (the home
// taken over) runs it: the money goes back once, and a second redrive of
// the completed refund starts nothing.
func TestRedriveRefunds(t *testing.T) {
	s := newStockedStack(t, stackOptions{NoDispatcher: true})
	w := s.world
	refundFiltered := func(env event.Envelope) bool { return env.Type != order.TypeRefundRequested }
	s.startFilteredDispatcher(checkout.Options{Steps: testOptions}, refundFiltered)
	s.placeAndChoose("rf-1", "10.00", order.MethodCard, order.PlanKind{})
	if res := s.checkout("rf-1"); res.Outcome != checkout.OutcomeConfirmed {
		t.Fatalf("%+v", res)
	}
	s.carrier("rf-1", fulfillment.CarrierUpdate{ShipmentID: "s1", Event: fulfillment.Dispatched},
		fulfillment.CarrierUpdate{ShipmentID: "s2", Event: fulfillment.Dispatched})
	for w.PSP.Effects("rf-1", sandbox.OpCapture) < 2 {
		time.Sleep(20 * time.Millisecond)
	}
	amount := sagatest.USD("7.50")
	s.exec("rf-1", "refund", func(o *order.Order) ([]event.Event, error) {
		return o.RequestRefund("goodwill-1", amount, "goodwill", time.Now())
	})
	s.waitDispatched()
	if _, err := s.client.DescribeWorkflowExecution(s.ctx, refund.WorkflowID("rf-1", "goodwill-1"), ""); err == nil {
		t.Fatal("the filtered dispatcher started the refund saga")
	}
	in := []refund.Input{{OrderID: "rf-1", Tenant: "t1", RefundID: "goodwill-1", Amount: amount, Reason: "goodwill"}}
	if n, err := s.disp.RedriveRefunds(s.ctx, in); err != nil || n != 1 {
		t.Fatalf("redrive refunds: %d started, %v", n, err)
	}
	var rr refund.Result
	if err := s.await(refund.WorkflowID("rf-1", "goodwill-1"), &rr); err != nil || rr.Outcome != refund.OutcomeRefunded {
		t.Fatalf("%+v %v", rr, err)
	}
	if n, err := s.disp.RedriveRefunds(s.ctx, in); err != nil || n != 0 {
		t.Fatalf("redrive of a completed refund: %d started, %v", n, err)
	}
	refunds := w.PSP.Effects("rf-1", sandbox.OpRefund)
	fmt.Printf("redrive refunds: %s refunded in %d provider refund(s); order refunded %s\n", rr.Refunded, refunds, w.Order(t, "rf-1").Refunded())
	if refunds != 1 || !w.Order(t, "rf-1").Refunded().Equal(amount) {
		t.Fatalf("%d provider refunds, order refunded %s", refunds, w.Order(t, "rf-1").Refunded())
	}
}
