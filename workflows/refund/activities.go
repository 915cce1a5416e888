package refund

import (
	"context"
	"errors"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/workflows/internal/steps"
)

// Activities are the refund saga's steps, keyed "order/<id>/refund/<refund>".
type Activities struct {
	steps.Ports
}

func newOrder() *order.Order { return &order.Order{} }

func key(orderID, refundID string) string { return "order/" + orderID + "/refund/" + refundID }

func meta(tenant, orderID string) event.Metadata { return steps.Meta(tenant, orderID, "saga:refund") }

// StepInput is one step of one refund.
type StepInput struct {
	OrderID  string      `json:"order_id"`
	Tenant   string      `json:"tenant,omitempty"`
	RefundID string      `json:"refund_id"`
	Amount   money.Money `json:"amount"`
	Reason   string      `json:"reason,omitempty"`
	At       time.Time   `json:"at"`
}

// Target is the instrument to refund.
type Target struct {
	// Method is "card" or "bnpl".
	Method    string `json:"method"`
	PaymentID string `json:"payment_id"`
	// PlanID is the financing plan of a BNPL order.
	PlanID string `json:"plan_id,omitempty"`
}

// RequestRefund records the refund request on the order (pending until
// Settle) and says which instrument to refund. A request already recorded
// under the same refund ID (by the API, or by an earlier run) is accepted
// as it is. Errors: steps.TypeLimit above the refundable amount,
// steps.TypeRejected for an order that was never paid.
func (a *Activities) RequestRefund(ctx context.Context, in StepInput) (Target, error) {
	_, err := steps.Exec(ctx, a.Ports, order.StreamID(in.OrderID), newOrder, key(in.OrderID, in.RefundID)+"/request", meta(in.Tenant, in.OrderID),
		func(o *order.Order) ([]event.Event, error) {
			evs, err := o.RequestRefund(in.RefundID, in.Amount, in.Reason, in.At)
			if errors.Is(err, order.ErrDuplicateRefund) {
				return nil, nil
			}
			return evs, err
		})
	if err != nil {
		return Target{}, err
	}
	var t Target
	err = steps.Order(ctx, a.Ports, in.OrderID, func(o *order.Order) {
		t = Target{Method: o.PaymentMethod().String(), PaymentID: in.OrderID}
		if o.PaymentMethod() == order.MethodBNPL {
			t.PlanID = in.OrderID
		}
	})
	return t, err
}

// RefundCard refunds the card through the provider and records it on the
// payment.
func (a *Activities) RefundCard(ctx context.Context, in StepInput) error {
	return steps.Refund(ctx, a.Ports, steps.MoveArgs{
		PaymentID: in.OrderID, ID: in.RefundID, Amount: in.Amount, Key: key(in.OrderID, in.RefundID),
		ViaPSP: true, At: in.At, Meta: meta(in.Tenant, in.OrderID),
	})
}

// RefundPlan takes the refund off the order's plan, returns what exceeds
// the amount still owed to the customer's card, and records the refund on
// the order's (in-house) BNPL payment as far as it was captured. It
// returns the amount that went back to the card.
func (a *Activities) RefundPlan(ctx context.Context, in StepInput) (money.Money, error) {
	returned, err := steps.ReducePlan(ctx, a.Ports, steps.ReducePlanArgs{
		PlanID: in.OrderID, RefundID: in.RefundID, Amount: in.Amount, At: in.At, Meta: meta(in.Tenant, in.OrderID),
	})
	if err != nil {
		return money.Money{}, err
	}
	var refundable money.Money
	if err := steps.Payment(ctx, a.Ports, in.OrderID, func(pm *payment.Payment) { refundable = pm.Refundable() }); err != nil {
		return money.Money{}, err
	}
	if !in.Amount.GreaterThan(refundable) {
		err = steps.Refund(ctx, a.Ports, steps.MoveArgs{
			PaymentID: in.OrderID, ID: in.RefundID, Amount: in.Amount, Key: key(in.OrderID, in.RefundID),
			At: in.At, Meta: meta(in.Tenant, in.OrderID),
		})
	}
	return returned, err
}

// SettleRefund records on the order what was refunded (zero releases a request
// that could not be honoured). Settling twice is accepted.
func (a *Activities) SettleRefund(ctx context.Context, in StepInput) error {
	_, err := steps.Exec(ctx, a.Ports, order.StreamID(in.OrderID), newOrder, key(in.OrderID, in.RefundID)+"/settle", meta(in.Tenant, in.OrderID),
		func(o *order.Order) ([]event.Event, error) {
			evs, err := o.RecordRefund(in.RefundID, in.Amount, in.At)
			if errors.Is(err, order.ErrRefundAlreadySettled) {
				return nil, nil
			}
			return evs, err
		})
	return err
}
