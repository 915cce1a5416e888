package fulfillment_test

import (
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/workflows"
	"github.com/livecore/livecore/workflows/fulfillment"
	"github.com/livecore/livecore/workflows/internal/sagatest"
)

var ams, ber = sagatest.Locations[0], sagatest.Locations[1]

// confirmed places order o1 (2 x A at 10.00 from ams-1, 1 x B at 5.00 from
// ber-1: parcels s1 = 20.00 and s2 = 5.00) and confirms it.
func confirmed(t *testing.T, method order.PaymentMethod, plan order.PlanKind, price string) (*testsuite.TestWorkflowEnvironment, *sagatest.World, fulfillment.Input) {
	env, w := sagatest.NewEnv(t)
	w.Stock(t, "A", ams, 10)
	w.Stock(t, "B", ber, 5)
	w.PlaceOrder(t, "o1", sagatest.Line{SKU: "A", Qty: 2, Price: price}, sagatest.Line{SKU: "B", Qty: 1, Price: "5.00"})
	return env, w, w.Confirm(t, "o1", method, plan)
}

// carrier sends carrier updates at the given offsets from the start.
func carrier(env *testsuite.TestWorkflowEnvironment, at time.Duration, updates ...fulfillment.CarrierUpdate) {
	for i, u := range updates {
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(fulfillment.SignalCarrier, u) }, at+time.Duration(i)*time.Minute)
	}
}

func run(t *testing.T, env *testsuite.TestWorkflowEnvironment, in fulfillment.Input) fulfillment.Status {
	t.Helper()
	env.ExecuteWorkflow(fulfillment.Fulfill, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var st fulfillment.Status
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func upd(id string, ev fulfillment.CarrierEvent) fulfillment.CarrierUpdate {
	return fulfillment.CarrierUpdate{ShipmentID: id, Event: ev, Carrier: "dhl", TrackingNumber: "trk-" + id}
}

func TestParcelsAreCapturedOnDispatchOnce(t *testing.T) {
	env, w, in := confirmed(t, order.MethodCard, order.PlanKind{}, "10.00")
	carrier(env, time.Hour,
		upd("s1", fulfillment.Dispatched), upd("s1", fulfillment.Dispatched), // a repeated report
		upd("s2", fulfillment.Dispatched), upd("s1", fulfillment.Delivered), upd("s2", fulfillment.Delivered))
	st := run(t, env, in)
	if !st.Done || !st.Captured.Equal(sagatest.USD("25.00")) {
		t.Fatalf("status %+v", st)
	}
	if n := w.PSP.Effects("o1", sandbox.OpCapture); n != 2 {
		t.Fatalf("%d captures, want 2 (one per parcel)", n)
	}
	if p := w.Payment(t, "o1"); p.Status() != payment.StatusCaptured {
		t.Fatalf("payment %s", p.Status())
	}
	if o := w.Order(t, "o1"); o.Status() != order.StatusCompleted {
		t.Fatalf("order %s", o.Status())
	}
	if n := w.Count(t, "inventory-A@ams-1", "inventory.stock_committed.v1"); n != 1 {
		t.Fatalf("A committed %d times", n)
	}
}

func TestLostParcelIsRefunded(t *testing.T) {
	env, w, in := confirmed(t, order.MethodCard, order.PlanKind{}, "10.00")
	carrier(env, time.Hour, upd("s1", fulfillment.Dispatched), upd("s2", fulfillment.Dispatched),
		upd("s1", fulfillment.Delivered), upd("s2", fulfillment.Lost))
	st := run(t, env, in)
	if !st.Refunded.Equal(sagatest.USD("5.00")) || st.Shipments[1].State != fulfillment.StateLost || !st.Shipments[1].Refunded {
		t.Fatalf("status %+v", st)
	}
	if n := w.PSP.Effects("o1", sandbox.OpRefund); n != 1 {
		t.Fatalf("%d refunds", n)
	}
	if o := w.Order(t, "o1"); !o.Refunded().Equal(sagatest.USD("5.00")) {
		t.Fatalf("order refunded %s", o.Refunded())
	}
}

func TestFailedDeliveryReportedFirstIsShippedCapturedAndRefunded(t *testing.T) {
	env, w, in := confirmed(t, order.MethodCard, order.PlanKind{}, "10.00")
	f := upd("s1", fulfillment.Failed)
	f.Reason = "address unknown"
	carrier(env, time.Hour, f, upd("s2", fulfillment.Dispatched), upd("s2", fulfillment.Delivered))
	st := run(t, env, in)
	if !st.Captured.Equal(sagatest.USD("25.00")) || !st.Refunded.Equal(sagatest.USD("20.00")) {
		t.Fatalf("status %+v", st)
	}
	if p := w.Payment(t, "o1"); !p.Refunded().Equal(sagatest.USD("20.00")) {
		t.Fatalf("payment refunded %s", p.Refunded())
	}
}

func TestAuthorizationExpiryVoidsTheRemainderAndAlerts(t *testing.T) {
	env, w, in := confirmed(t, order.MethodCard, order.PlanKind{}, "10.00")
	carrier(env, time.Hour, upd("s1", fulfillment.Dispatched))
	// s2 never leaves; s1 arrives after the hold lapsed.
	carrier(env, 7*24*time.Hour, upd("s1", fulfillment.Delivered))
	st := run(t, env, in)
	if !st.Released.Equal(sagatest.USD("5.00")) || st.Shipments[1].State != fulfillment.StateCancelled {
		t.Fatalf("status %+v", st)
	}
	if p := w.Payment(t, "o1"); p.Status() != payment.StatusVoided || !p.Captured().Equal(sagatest.USD("20.00")) {
		t.Fatalf("payment %s captured %s", p.Status(), p.Captured())
	}
	if n := w.PSP.Effects("o1", sandbox.OpVoid); n != 1 {
		t.Fatalf("%d voids", n)
	}
	if n := w.Count(t, workflows.AlertStreamID("o1"), "saga.alert_raised.v1"); n != 1 {
		t.Fatalf("%d alerts recorded", n)
	}
	if o := w.Order(t, "o1"); o.Status() != order.StatusCompleted || !o.CancelledValue().Equal(sagatest.USD("5.00")) {
		t.Fatalf("order %s, cancelled %s", o.Status(), o.CancelledValue())
	}
	if b := w.Available(t, "B", ber); b != 5 {
		t.Fatalf("B not released: %d available", b)
	}
}

func TestCancelBeforeDispatchVoidsEverything(t *testing.T) {
	env, w, in := confirmed(t, order.MethodCard, order.PlanKind{}, "10.00")
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(fulfillment.SignalCancel, fulfillment.CancelRequest{Reason: "customer changed mind"})
	}, time.Hour)
	st := run(t, env, in)
	if !st.Released.Equal(sagatest.USD("25.00")) {
		t.Fatalf("status %+v", st)
	}
	if o := w.Order(t, "o1"); o.Status() != order.StatusCancelled {
		t.Fatalf("order %s", o.Status())
	}
	if a, b := w.Available(t, "A", ams), w.Available(t, "B", ber); a != 10 || b != 5 {
		t.Fatalf("stock not released: %d %d", a, b)
	}
}

func TestBNPLCapturesInTheBooksAndTakesUnshippedOffThePlan(t *testing.T) {
	env, w, in := confirmed(t, order.MethodBNPL, order.PlanPayIn4, "50.00") // 105.00: s1 = 100.00, s2 = 5.00
	carrier(env, time.Hour, upd("s1", fulfillment.Dispatched), upd("s1", fulfillment.Delivered))
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(fulfillment.SignalCancel, fulfillment.CancelRequest{Reason: "B discontinued"})
	}, 2*time.Hour)
	st := run(t, env, in)
	if !st.Captured.Equal(sagatest.USD("100.00")) || !st.Released.Equal(sagatest.USD("5.00")) {
		t.Fatalf("status %+v", st)
	}
	if n := w.PSP.Effects("o1", ""); n != 0 {
		t.Fatalf("the provider saw %d calls for the BNPL order payment", n)
	}
	plan := w.Plan(t, "o1")
	if !plan.Refunded().Equal(sagatest.USD("5.00")) || plan.Status() != financing.StatusActive {
		t.Fatalf("plan refunded %s, status %s", plan.Refunded(), plan.Status())
	}
}
