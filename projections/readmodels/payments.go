package readmodels

import (
	"context"
	"fmt"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/projections"
)

// PaymentRow is one payment (one authorization and what happened to it).
// Amounts are minor units of Currency; Released is what a void or expiry
// gave up.
type PaymentRow struct {
	PaymentID, Tenant, OrderID, Method, Status, Currency string
	Authorized, Captured, Released, Refunded             int64
	Disputed, ChargedBack, Captures, Refunds             int64
	DeclineReason, ProviderRef                           string
	AuthorizedAt, ExpiresAt, UpdatedAt                   string
	Version, Position                                    int64
}

var paymentsSpec = projections.Spec[PaymentRow]{
	Name: "rm_payments",
	Cols: []string{"payment_id", "tenant", "order_id", "method", "status", "currency", "authorized", "captured", "released", "refunded",
		"disputed", "charged_back", "captures", "refunds", "decline_reason", "provider_ref", "authorized_at", "expires_at", "updated_at", "version", "position"},
	Key: 1,
	Fields: func(r *PaymentRow) []any {
		return []any{&r.PaymentID, &r.Tenant, &r.OrderID, &r.Method, &r.Status, &r.Currency, &r.Authorized, &r.Captured, &r.Released, &r.Refunded,
			&r.Disputed, &r.ChargedBack, &r.Captures, &r.Refunds, &r.DeclineReason, &r.ProviderRef, &r.AuthorizedAt, &r.ExpiresAt, &r.UpdatedAt, &r.Version, &r.Position}
	},
	Indexes: []string{"CREATE INDEX {{table}}_order ON {{table}} (tenant, order_id)"},
}

// Payments is the payments read model: authorized, captured, released
// (voided or expired), refunded and disputed amounts per payment, queried
// per order. Its name "payments" is stable.
type Payments struct{ Registry *event.Registry }

func (Payments) Name() string                { return "payments" }
func (Payments) Version() int                { return 1 }
func (Payments) Tables() []projections.Table { return []projections.Table{paymentsSpec.Table()} }

// Decodes implements projections.Decoding: Apply decodes the payment events.
func (p Payments) Decodes(e *event.Envelope) *event.Registry {
	if event.Category(e.StreamID) == "payment" {
		return p.Registry
	}
	return nil
}

// Apply folds the batch's payment events.
func (p Payments) Apply(ctx context.Context, tx projections.Tx, batch []event.Envelope) error {
	type decoded struct {
		env *event.Envelope
		ev  event.Event
	}
	var evs []decoded
	ids := map[string]bool{}
	for i := range batch {
		e := &batch[i]
		if p.Decodes(e) == nil {
			continue
		}
		ev, err := tx.Decode(p.Registry, e)
		if err != nil {
			return fmt.Errorf("position %d: %w", e.Position, err)
		}
		evs = append(evs, decoded{e, ev})
		ids[e.StreamID[len("payment-"):]] = true
	}
	if len(evs) == 0 {
		return nil
	}
	rows := projections.NewRowSet[PaymentRow]()
	if err := projections.Load(ctx, tx, paymentsSpec, "payment_id", projections.Keys(ids), func(r *PaymentRow) { rows.Put(r.PaymentID, r) }); err != nil {
		return err
	}
	for _, d := range evs {
		id := d.env.StreamID[len("payment-"):]
		r := rows.Get(id)
		if r == nil {
			r = &PaymentRow{PaymentID: id, Tenant: d.env.Metadata.Tenant}
			rows.Put(id, r)
		}
		switch e := d.ev.(type) {
		case *payment.Authorized:
			r.OrderID, r.Method, r.Status, r.Currency = e.OrderID, e.Method.String(), payment.StatusAuthorized.String(), e.Amount.Currency().Code()
			r.Authorized, r.ProviderRef = e.Amount.MinorUnits(), e.ProviderRef
			r.AuthorizedAt, r.ExpiresAt, r.UpdatedAt = projections.Timestamp(e.AuthorizedAt), projections.Timestamp(e.ExpiresAt), projections.Timestamp(e.AuthorizedAt)
		case *payment.Declined:
			r.OrderID, r.Method, r.Status, r.Currency = e.OrderID, e.Method.String(), payment.StatusDeclined.String(), e.Amount.Currency().Code()
			r.Authorized, r.ProviderRef, r.DeclineReason = e.Amount.MinorUnits(), e.ProviderRef, e.Reason.String()
			r.UpdatedAt = projections.Timestamp(e.DeclinedAt)
		case *payment.Captured:
			r.Captured += e.Amount.MinorUnits()
			r.Captures++
			if r.Captured == r.Authorized {
				r.Status = payment.StatusCaptured.String()
			}
			r.UpdatedAt = projections.Timestamp(e.CapturedAt)
		case *payment.Voided:
			r.Released += e.Released.MinorUnits()
			r.Status = payment.StatusVoided.String()
			r.UpdatedAt = projections.Timestamp(e.VoidedAt)
		case *payment.Expired:
			r.Released += e.Released.MinorUnits()
			r.Status = payment.StatusExpired.String()
			r.UpdatedAt = projections.Timestamp(e.ExpiredAt)
		case *payment.Refunded:
			r.Refunded += e.Amount.MinorUnits()
			r.Refunds++
			r.UpdatedAt = projections.Timestamp(e.RefundedAt)
		case *payment.ChargebackOpened:
			r.Disputed += e.Amount.MinorUnits()
			r.UpdatedAt = projections.Timestamp(e.OpenedAt)
		case *payment.ChargebackWon:
			r.Disputed -= e.Amount.MinorUnits()
			r.UpdatedAt = projections.Timestamp(e.ResolvedAt)
		case *payment.ChargebackLost:
			r.Disputed -= e.Amount.MinorUnits()
			r.ChargedBack += e.Amount.MinorUnits()
			r.UpdatedAt = projections.Timestamp(e.ResolvedAt)
		}
		r.Version, r.Position = int64(d.env.Version), int64(d.env.Position)
		rows.Touch(id)
	}
	return projections.Save(ctx, tx, paymentsSpec, rows.Changed())
}

// OrderPayments is every payment of an order with the totals per currency
// (an order has one currency, so one total in practice).
type OrderPayments struct {
	Payments []PaymentRow
	// Totals over the payments that were authorized (declined ones
	// excluded), in minor units, by currency.
	Totals map[string]PaymentTotals
}

// PaymentTotals sums payments.
type PaymentTotals struct {
	Authorized, Captured, Released, Refunded, Disputed, ChargedBack int64
}

// PaymentsForOrder returns tenant's payments of order id (none is not an
// error: an order may not be paid yet).
func PaymentsForOrder(ctx context.Context, db *projections.DB, tenant, orderID string) (OrderPayments, error) {
	rows, err := projections.Query(ctx, db, paymentsSpec, `WHERE tenant = $1 AND order_id = $2 ORDER BY authorized_at, payment_id`, tenant, orderID)
	if err != nil {
		return OrderPayments{}, err
	}
	out := OrderPayments{Payments: rows, Totals: map[string]PaymentTotals{}}
	for _, r := range rows {
		if r.Status == payment.StatusDeclined.String() {
			continue
		}
		t := out.Totals[r.Currency]
		t.Authorized += r.Authorized
		t.Captured += r.Captured
		t.Released += r.Released
		t.Refunded += r.Refunded
		t.Disputed += r.Disputed
		t.ChargedBack += r.ChargedBack
		out.Totals[r.Currency] = t
	}
	return out, nil
}

// GetPayment returns tenant's payment id or projections.ErrNotFound.
func GetPayment(ctx context.Context, db *projections.DB, tenant, id string) (PaymentRow, error) {
	rows, err := projections.Query(ctx, db, paymentsSpec, `WHERE tenant = $1 AND payment_id = $2`, tenant, id)
	if err != nil {
		return PaymentRow{}, err
	}
	if len(rows) == 0 {
		return PaymentRow{}, fmt.Errorf("payment %s: %w", id, projections.ErrNotFound)
	}
	return rows[0], nil
}
