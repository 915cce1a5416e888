package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

func newPlan() *financing.Plan { return &financing.Plan{} }

// CollectionPaymentID is the payment that carries one collection of a plan:
// every installment attempt is its own card payment, so the provider's
// ledger and the payment streams show each charge once.
func CollectionPaymentID(planID, collectionID string) string { return planID + "-" + collectionID }

// CollectArgs is one attempt to collect from the customer's card.
type CollectArgs struct {
	PlanID  string
	OrderID string
	// CollectionID is unique per attempt ("i2-a1": installment 2, attempt 1).
	CollectionID string
	Token        payment.Token
	Amount       money.Money
	// Payoff collects the payoff quote (financing.Plan.PayOff) instead of
	// installments (financing.Plan.Collect).
	Payoff bool
	At     time.Time
	Meta   event.Metadata
}

// Collect charges the customer and records the collection on the plan. A
// decline is recorded as a failed collection and returned as TypeDeclined.
// Keys: "plan/<id>/collect/<collection>/{authorize,capture,record}".
func Collect(ctx context.Context, p Ports, a CollectArgs) error {
	key := "plan/" + a.PlanID + "/collect/" + a.CollectionID
	_, err := Charge(ctx, p, AuthorizeArgs{
		PaymentID: CollectionPaymentID(a.PlanID, a.CollectionID), OrderID: a.OrderID, Method: payment.MethodCard,
		Token: a.Token, Amount: a.Amount, Key: key, At: a.At, Meta: a.Meta,
	})
	var de *payment.DeclinedError
	if IsType(err, TypeDeclined) {
		reason := payment.DeclineDoNotHonor
		if errors.As(err, &de) {
			reason = de.Reason
		}
		if _, ferr := Exec(ctx, p, financing.StreamID(a.PlanID), newPlan, key+"/record", a.Meta, func(pl *financing.Plan) ([]event.Event, error) {
			return pl.FailCollection(a.CollectionID, a.Amount, reason, a.At)
		}); ferr != nil {
			return ferr
		}
		return err
	}
	if err != nil {
		return err
	}
	_, err = Exec(ctx, p, financing.StreamID(a.PlanID), newPlan, key+"/record", a.Meta, func(pl *financing.Plan) ([]event.Event, error) {
		if a.Payoff {
			return pl.PayOff(a.CollectionID, a.Amount, a.At)
		}
		return pl.Collect(a.CollectionID, a.Amount, a.At)
	})
	return err
}

// ReducePlanArgs is a refund of a financed order.
type ReducePlanArgs struct {
	PlanID   string
	RefundID string
	Amount   money.Money
	At       time.Time
	Meta     event.Metadata
}

// ReducePlan records a refund on the plan (it takes principal off the last
// installments first) and returns to the customer's card whatever exceeded
// what was still owed, newest collection first. It returns that amount.
// Keys: "plan/<id>/refund/<refund>" and ".../<collection>".
func ReducePlan(ctx context.Context, p Ports, a ReducePlanArgs) (money.Money, error) {
	key := "plan/" + a.PlanID + "/refund/" + a.RefundID
	if _, err := Exec(ctx, p, financing.StreamID(a.PlanID), newPlan, key, a.Meta, func(pl *financing.Plan) ([]event.Event, error) {
		return pl.Refund(a.RefundID, a.Amount, a.At)
	}); err != nil {
		return money.Money{}, err
	}
	collections, returned, err := planCollections(ctx, p, a.PlanID, a.RefundID)
	if err != nil {
		return money.Money{}, err
	}
	left := returned
	for i := len(collections) - 1; i >= 0 && left.IsPositive(); i-- {
		c := collections[i]
		pid := CollectionPaymentID(a.PlanID, c)
		done, err := refundedUnder(ctx, p, pid, a.RefundID)
		if err != nil {
			return money.Money{}, err
		}
		if !done.IsValid() {
			continue // no payment behind this collection (recorded elsewhere)
		}
		var avail money.Money
		if err := Payment(ctx, p, pid, func(pm *payment.Payment) { avail = pm.Refundable() }); err != nil {
			return money.Money{}, err
		}
		// What this refund may take from the payment does not change once
		// part of it is recorded: add back what it already took.
		avail, _ = avail.Add(done)
		r := avail
		if left.LessThan(r) {
			r = left
		}
		if !r.IsPositive() {
			continue
		}
		if err := Refund(ctx, p, MoveArgs{PaymentID: pid, ID: a.RefundID, Amount: r, Key: key + "/" + c, ViaPSP: true, At: a.At, Meta: a.Meta}); err != nil {
			return money.Money{}, err
		}
		left, _ = left.Sub(r)
	}
	if left.IsPositive() {
		return returned, Reject(fmt.Errorf("plan %s refund %s: %s to return exceeds the collected card payments", a.PlanID, a.RefundID, left))
	}
	return returned, nil
}

// planCollections lists a plan's successful collection IDs in order and
// what refund refundID returned to the customer.
func planCollections(ctx context.Context, p Ports, planID, refundID string) ([]string, money.Money, error) {
	envs, err := p.Events.ReadStream(ctx, financing.StreamID(planID), 1, 0)
	if err != nil {
		return nil, money.Money{}, fmt.Errorf("read plan %s: %w", planID, err)
	}
	var ids []string
	var returned money.Money
	for _, env := range envs {
		ev, err := p.Registry.DecodeEnvelope(env)
		if err != nil {
			return nil, money.Money{}, fmt.Errorf("read plan %s: %w", planID, err)
		}
		switch e := ev.(type) {
		case *financing.Originated:
			returned = money.Zero(e.Financed.Currency())
		case *financing.InstallmentCollected:
			ids = append(ids, e.CollectionID)
		case *financing.PaidOff:
			ids = append(ids, e.CollectionID)
		case *financing.Refunded:
			if e.RefundID == refundID {
				returned = e.ReturnedToCustomer
			}
		}
	}
	return ids, returned, nil
}
