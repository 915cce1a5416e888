package workflows_test

import (
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/workflows/bnpl"
	"github.com/livecore/livecore/workflows/checkout"
	"github.com/livecore/livecore/workflows/fulfillment"
	"github.com/livecore/livecore/workflows/internal/sagatest"
	"github.com/livecore/livecore/workflows/refund"
)

var ams, ber = sagatest.Locations[0], sagatest.Locations[1]

// placeAndChoose places order id (2 x A at price from ams-1, 1 x B at 5.00
// from ber-1) and records the payment choice, as the API does; the
// dispatcher does the rest.
func (s *stack) placeAndChoose(id, price string, method order.PaymentMethod, plan order.PlanKind) {
	s.t.Helper()
	s.world.PlaceOrder(s.t, id, sagatest.Line{SKU: "A", Qty: 2, Price: price}, sagatest.Line{SKU: "B", Qty: 1, Price: "5.00"})
	if !method.IsZero() {
		s.world.StartCheckout(s.t, id, method, plan)
	}
}

func (s *stack) stock() {
	s.world.Stock(s.t, "A", ams, 100)
	s.world.Stock(s.t, "B", ber, 100)
}

func (s *stack) checkout(id string) checkout.Result {
	s.t.Helper()
	var res checkout.Result
	if err := s.await(checkout.WorkflowID(id), &res); err != nil {
		s.t.Fatalf("checkout %s: %v", id, err)
	}
	return res
}

func (s *stack) carrier(orderID string, updates ...fulfillment.CarrierUpdate) {
	for _, u := range updates {
		if u.Carrier == "" {
			u.Carrier, u.TrackingNumber = "dhl", "trk-"+u.ShipmentID
		}
		s.signal(fulfillment.WorkflowID(orderID), fulfillment.SignalCarrier, u)
	}
}

func (s *stack) fulfilled(orderID string) fulfillment.Status {
	s.t.Helper()
	var st fulfillment.Status
	if err := s.await(fulfillment.WorkflowID(orderID), &st); err != nil {
		s.t.Fatalf("fulfillment %s: %v", orderID, err)
	}
	return st
}

// TestSagasOnRealTemporal runs every flow against the embedded Temporal
// server, the Pebble event store and the sandbox provider, started by the
// dispatcher from the event log.
func TestSagasOnRealTemporal(t *testing.T) {
	s := newStockedStack(t, stackOptions{})
	w := s.world

	t.Run("card to delivery then partial return", func(t *testing.T) {
		s.placeAndChoose("card-1", "10.00", order.MethodCard, order.PlanKind{})
		res := s.checkout("card-1")
		if res.Outcome != checkout.OutcomeConfirmed || len(res.Shipments) != 2 {
			t.Fatalf("%+v", res)
		}
		s.carrier("card-1", fulfillment.CarrierUpdate{ShipmentID: "s1", Event: fulfillment.Dispatched},
			fulfillment.CarrierUpdate{ShipmentID: "s2", Event: fulfillment.Dispatched},
			fulfillment.CarrierUpdate{ShipmentID: "s1", Event: fulfillment.Delivered},
			fulfillment.CarrierUpdate{ShipmentID: "s2", Event: fulfillment.Delivered})
		st := s.fulfilled("card-1")
		if !st.Captured.Equal(sagatest.USD("25.00")) || w.Order(t, "card-1").Status() != order.StatusCompleted {
			t.Fatalf("%+v, order %s", st, w.Order(t, "card-1").Status())
		}
		// The customer returns one A: the return's value is refunded to the card.
		s.exec("card-1", "return", func(o *order.Order) ([]event.Event, error) {
			return o.RequestReturn("r1", []order.LineQuantity{{Line: 1, Quantity: 1}}, "too small", time.Now())
		})
		s.exec("card-1", "return-received", func(o *order.Order) ([]event.Event, error) {
			return o.ReceiveReturn("r1", []order.LineQuantity{{Line: 1, Quantity: 1}}, time.Now())
		})
		var rr refund.Result
		if err := s.await(refund.WorkflowID("card-1", refund.ReturnRefundID("r1")), &rr); err != nil {
			t.Fatal(err)
		}
		if rr.Outcome != refund.OutcomeRefunded || !rr.Refunded.Equal(sagatest.USD("10.00")) {
			t.Fatalf("%+v", rr)
		}
		if o := w.Order(t, "card-1"); !o.Refunded().Equal(sagatest.USD("10.00")) {
			t.Fatalf("order refunded %s", o.Refunded())
		}
		if a, c, r := w.PSP.Effects("card-1", sandbox.OpAuthorize), w.PSP.Effects("card-1", sandbox.OpCapture), w.PSP.Effects("card-1", sandbox.OpRefund); a != 1 || c != 2 || r != 1 {
			t.Fatalf("ledger: %d authorizations, %d captures, %d refunds", a, c, r)
		}
		s.record("checkout-card", checkout.WorkflowID("card-1"))
		s.record("fulfillment-delivered", fulfillment.WorkflowID("card-1"))
		s.record("refund-card-partial", refund.WorkflowID("card-1", refund.ReturnRefundID("r1")))
	})

	t.Run("declined", func(t *testing.T) {
		w.Tokens.Set("decl-1", "tok_decline_do_not_honor")
		s.placeAndChoose("decl-1", "10.00", order.MethodCard, order.PlanKind{})
		if res := s.checkout("decl-1"); res.Outcome != checkout.OutcomeDeclined {
			t.Fatalf("%+v", res)
		}
		if o := w.Order(t, "decl-1"); o.Status() != order.StatusCancelled {
			t.Fatalf("order %s", o.Status())
		}
		s.record("checkout-declined", checkout.WorkflowID("decl-1"))
	})

	t.Run("out of stock", func(t *testing.T) {
		w.PlaceOrder(t, "oos-1", sagatest.Line{SKU: "A", Qty: 1, Price: "10.00"}, sagatest.Line{SKU: "C", Qty: 1, Price: "1.00"})
		w.StartCheckout(t, "oos-1", order.MethodCard, order.PlanKind{})
		if res := s.checkout("oos-1"); res.Outcome != checkout.OutcomeOutOfStock {
			t.Logf("runs: %d, types %v", s.countRuns(checkout.WorkflowID("oos-1")), w.Types(t, "order-oos-1"))
			t.Fatalf("%+v", res)
		}
		if n := w.PSP.Effects("oos-1", ""); n != 0 {
			t.Fatalf("provider called %d times", n)
		}
		s.record("checkout-out-of-stock", checkout.WorkflowID("oos-1"))
	})

	t.Run("choice after placing arrives by signal", func(t *testing.T) {
		s.placeAndChoose("late-1", "10.00", order.PaymentMethod{}, order.PlanKind{})
		var st checkout.Status
		s.waitQuery(checkout.WorkflowID("late-1"), checkout.QueryStatus, &st, func() bool { return st.Stage == checkout.StageAwaitChoice })
		w.StartCheckout(t, "late-1", order.MethodCard, order.PlanKind{})
		if res := s.checkout("late-1"); res.Outcome != checkout.OutcomeConfirmed {
			t.Fatalf("%+v", res)
		}
		if n := s.disp.Stats().Signalled; n < 1 {
			t.Fatalf("dispatcher signalled %d choices", n)
		}
		s.record("checkout-choice-signal", checkout.WorkflowID("late-1"))
	})

	t.Run("provider answer lost", func(t *testing.T) {
		w.Tokens.Set("lost-1", "tok_timeout_approve")
		s.placeAndChoose("lost-1", "10.00", order.MethodCard, order.PlanKind{})
		if res := s.checkout("lost-1"); res.Outcome != checkout.OutcomeConfirmed {
			t.Fatalf("%+v", res)
		}
		if n := w.PSP.Effects("lost-1", sandbox.OpAuthorize); n != 1 {
			t.Fatalf("%d holds after a lost answer", n)
		}
		if n := w.PSP.Calls("order/lost-1/authorize"); n < 2 {
			t.Fatalf("authorize called %d times: the lost answer was not retried", n)
		}
		s.record("checkout-provider-retry", checkout.WorkflowID("lost-1"))
	})

	t.Run("BNPL first installment declined is compensated", func(t *testing.T) {
		w.Tokens.Set("bnpl-decl", "tok_decline_insufficient_funds")
		s.placeAndChoose("bnpl-decl", "50.00", order.MethodBNPL, order.PlanPayIn4)
		if res := s.checkout("bnpl-decl"); res.Outcome != checkout.OutcomeDeclined {
			t.Fatalf("%+v", res)
		}
		if p := w.Plan(t, "bnpl-decl"); p.Status() != financing.StatusRefunded {
			t.Fatalf("plan %s", p.Status())
		}
		s.record("checkout-bnpl-declined", checkout.WorkflowID("bnpl-decl"))
	})

	t.Run("lost parcel is refunded", func(t *testing.T) {
		s.placeAndChoose("lost-parcel", "10.00", order.MethodCard, order.PlanKind{})
		s.checkout("lost-parcel")
		s.carrier("lost-parcel", fulfillment.CarrierUpdate{ShipmentID: "s1", Event: fulfillment.Dispatched},
			fulfillment.CarrierUpdate{ShipmentID: "s2", Event: fulfillment.Dispatched},
			fulfillment.CarrierUpdate{ShipmentID: "s1", Event: fulfillment.Lost},
			fulfillment.CarrierUpdate{ShipmentID: "s2", Event: fulfillment.Delivered})
		st := s.fulfilled("lost-parcel")
		if !st.Refunded.Equal(sagatest.USD("20.00")) {
			t.Fatalf("%+v", st)
		}
		s.record("fulfillment-lost", fulfillment.WorkflowID("lost-parcel"))
	})

	t.Run("BNPL pay-in-4 then early payoff", func(t *testing.T) {
		s.placeAndChoose("bnpl-1", "50.00", order.MethodBNPL, order.PlanPayIn4)
		res := s.checkout("bnpl-1")
		if res.Outcome != checkout.OutcomeConfirmed || res.ScheduleID != bnpl.WorkflowID("bnpl-1") {
			t.Fatalf("%+v", res)
		}
		var st bnpl.Status
		s.waitQuery(res.ScheduleID, bnpl.QueryStatus, &st, func() bool { return !st.NextWake.IsZero() })
		s.signal(res.ScheduleID, bnpl.SignalPayoff, bnpl.PayoffRequest{RequestID: "p1"})
		if err := s.await(res.ScheduleID, &st); err != nil || st.PlanStatus != "paid_off" {
			t.Fatalf("%+v %v", st, err)
		}
		if p := w.Plan(t, "bnpl-1"); p.Status() != financing.StatusPaidOff || !p.Collected().Equal(sagatest.USD("105.00")) {
			t.Fatalf("plan %s collected %s", p.Status(), p.Collected())
		}
		s.record("checkout-bnpl", checkout.WorkflowID("bnpl-1"))
		s.record("bnpl-payoff", res.ScheduleID)
	})

	t.Run("BNPL return reduces the plan", func(t *testing.T) {
		s.placeAndChoose("bnpl-2", "50.00", order.MethodBNPL, order.PlanPayIn4)
		s.checkout("bnpl-2")
		s.carrier("bnpl-2", fulfillment.CarrierUpdate{ShipmentID: "s1", Event: fulfillment.Dispatched},
			fulfillment.CarrierUpdate{ShipmentID: "s2", Event: fulfillment.Dispatched},
			fulfillment.CarrierUpdate{ShipmentID: "s1", Event: fulfillment.Delivered},
			fulfillment.CarrierUpdate{ShipmentID: "s2", Event: fulfillment.Delivered})
		s.fulfilled("bnpl-2")
		s.exec("bnpl-2", "return", func(o *order.Order) ([]event.Event, error) {
			return o.RequestReturn("r1", []order.LineQuantity{{Line: 1, Quantity: 1}}, "changed mind", time.Now())
		})
		s.exec("bnpl-2", "return-received", func(o *order.Order) ([]event.Event, error) {
			return o.ReceiveReturn("r1", []order.LineQuantity{{Line: 1, Quantity: 1}}, time.Now())
		})
		var rr refund.Result
		if err := s.await(refund.WorkflowID("bnpl-2", refund.ReturnRefundID("r1")), &rr); err != nil || rr.Outcome != refund.OutcomeRefunded || rr.Instrument != "bnpl" {
			t.Fatalf("%+v %v", rr, err)
		}
		if p := w.Plan(t, "bnpl-2"); !p.Refunded().Equal(sagatest.USD("50.00")) {
			t.Fatalf("plan refunded %s", p.Refunded())
		}
		s.record("refund-bnpl", refund.WorkflowID("bnpl-2", refund.ReturnRefundID("r1")))
	})

	t.Run("every hold ends captured or voided", func(t *testing.T) {
		// Sweep the ledger of everything above: no authorization is left
		// open except those of orders still waiting for their parcels.
		open := openHolds(w.PSP.Ledger())
		for ref, pid := range open {
			if pid != "card-1" && pid != "lost-parcel" && pid != "lost-1" && pid != "late-1" {
				t.Errorf("hold %s of %s left open", ref, pid)
			}
		}
		if p := w.Payment(t, "card-1"); p.Status() != payment.StatusCaptured {
			t.Errorf("card-1 payment %s", p.Status())
		}
	})
}

// TestLocalProviderAndAbandonOnRealTemporal runs provider calls as local
// activities, and lets an order without a payment choice be abandoned.
func TestLocalProviderAndAbandonOnRealTemporal(t *testing.T) {
	if testing.Short() {
		t.Skip("real Temporal server")
	}
	opts := checkout.Options{ChoiceTimeout: time.Second}
	opts.Steps = testOptions
	opts.Steps.LocalProvider = true
	s := newStack(t, stackOptions{Checkout: opts})
	s.stock()
	s.placeAndChoose("local-1", "10.00", order.MethodCard, order.PlanKind{})
	if res := s.checkout("local-1"); res.Outcome != checkout.OutcomeConfirmed {
		t.Fatalf("%+v", res)
	}
	s.placeAndChoose("gone-1", "10.00", order.PaymentMethod{}, order.PlanKind{})
	if res := s.checkout("gone-1"); res.Outcome != checkout.OutcomeAbandoned {
		t.Fatalf("%+v", res)
	}
	if o := s.world.Order(t, "gone-1"); o.Status() != order.StatusCancelled {
		t.Fatalf("order %s", o.Status())
	}
	s.record("checkout-card-local-provider", checkout.WorkflowID("local-1"))
	s.record("checkout-abandoned", checkout.WorkflowID("gone-1"))
}

// TestAuthorizationExpiryOnRealTemporal shortens the hold's margin so the
// expiry timer fires seconds after confirmation: the parcel that did not
// leave is called off, the remainder voided and an alert recorded.
func TestAuthorizationExpiryOnRealTemporal(t *testing.T) {
	if testing.Short() {
		t.Skip("real Temporal server")
	}
	opts := checkout.Options{}
	opts.Fulfillment.ExpiryMargin = payment.CardAuthorizationValidity - 3*time.Second
	s := newStack(t, stackOptions{Checkout: opts})
	s.stock()
	s.placeAndChoose("exp-1", "10.00", order.MethodCard, order.PlanKind{})
	s.checkout("exp-1")
	s.carrier("exp-1", fulfillment.CarrierUpdate{ShipmentID: "s1", Event: fulfillment.Dispatched})
	// s2 never leaves; the timer fires; then s1 is delivered.
	var st fulfillment.Status
	s.waitQuery(fulfillment.WorkflowID("exp-1"), fulfillment.QueryStatus, &st, func() bool { return st.Released.IsPositive() })
	s.carrier("exp-1", fulfillment.CarrierUpdate{ShipmentID: "s1", Event: fulfillment.Delivered})
	st = s.fulfilled("exp-1")
	if !st.Released.Equal(sagatest.USD("5.00")) || !st.Captured.Equal(sagatest.USD("20.00")) {
		t.Fatalf("%+v", st)
	}
	if p := s.world.Payment(t, "exp-1"); p.Status() != payment.StatusVoided {
		t.Fatalf("payment %s", p.Status())
	}
	if n := s.world.Count(t, "alert-exp-1", "saga.alert_raised.v1"); n != 1 {
		t.Fatalf("%d alerts", n)
	}
	s.record("fulfillment-expiry", fulfillment.WorkflowID("exp-1"))
}

// openHolds maps each authorization that was neither voided nor fully
// captured to its payment ID.
func openHolds(ledger []sandbox.Entry) map[string]string {
	type h struct {
		pid       string
		auth, cap int64
		voided    bool
	}
	holds := map[string]*h{}
	for _, e := range ledger {
		if e.Op == sandbox.OpAuthorize {
			holds[e.AuthRef] = &h{pid: e.PaymentID, auth: e.Amount.MinorUnits()}
		}
	}
	for _, e := range ledger {
		x := holds[e.AuthRef]
		if x == nil {
			continue
		}
		switch e.Op {
		case sandbox.OpCapture:
			x.cap += e.Amount.MinorUnits()
		case sandbox.OpVoid:
			x.voided = true
		}
	}
	out := map[string]string{}
	for ref, x := range holds {
		if !x.voided && x.cap != x.auth {
			out[ref] = x.pid
		}
	}
	return out
}
