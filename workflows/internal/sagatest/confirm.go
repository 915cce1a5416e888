package sagatest

import (
	"context"
	"testing"

	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/workflows/checkout"
	"github.com/livecore/livecore/workflows/fulfillment"
	"github.com/livecore/livecore/workflows/internal/steps"
)

// Confirm runs the checkout steps for a placed order directly (no
// workflow): choice, stock, payment, confirmation. It returns the input the
// checkout saga would give the fulfillment workflow.
func (w *World) Confirm(t testing.TB, id string, method order.PaymentMethod, plan order.PlanKind) fulfillment.Input {
	t.Helper()
	ctx := context.Background()
	w.StartCheckout(t, id, method, plan)
	c := w.Activities(t).Checkout
	o, err := c.LoadOrder(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	now := w.Now()
	ships, err := c.ReserveStock(ctx, checkout.StockInput{OrderID: id, Tenant: "t1", Lines: o.Lines, Total: o.Total, Until: now.Add(payment.BNPLAuthorizationValidity), At: now})
	if err != nil {
		t.Fatal(err)
	}
	pay := checkout.PayInput{OrderID: id, Tenant: "t1", Amount: o.Total, At: now}
	var hold steps.Hold
	in := fulfillment.Input{OrderID: id, Tenant: "t1", Shipments: ships}
	if method == order.MethodBNPL {
		opened, err := c.OpenPlan(ctx, checkout.PlanInput{OrderID: id, Tenant: "t1", CustomerID: o.CustomerID, Amount: o.Total, Kind: plan, At: now})
		if err != nil {
			t.Fatal(err)
		}
		if opened.DueNow.IsPositive() {
			first := pay
			first.Amount = opened.DueNow
			if err := c.CollectFirstInstallment(ctx, first); err != nil {
				t.Fatal(err)
			}
		}
		if hold, err = c.RecordPlanHold(ctx, pay); err != nil {
			t.Fatal(err)
		}
		in.PlanID = opened.PlanID
	} else {
		hold, err = c.AuthorizeCard(ctx, pay)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ConfirmOrder(ctx, checkout.ConfirmInput{OrderID: id, Tenant: "t1", PaymentRef: hold.ProviderRef, Paid: o.Total, At: now}); err != nil {
		t.Fatal(err)
	}
	in.Payment = hold
	return in
}
