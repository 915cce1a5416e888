// Package steps holds what the saga activities of every workflow package
// share: running a domain command through the application service with a
// business key as its command ID, the money-moving calls to the payment port
// paired with the events that record them, and the error types workflows
// branch on.
//
// Every function here is safe to retry: provider calls carry a business
// idempotency key ("order/<id>/capture/<shipment>"), never a random value or
// a run ID, and every command's ID is the same kind of key, so a retried
// step appends nothing new (app.Service replays the command) and the
// provider answers the first call's answer again.
package steps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
)

// Application error types. Activities return business rejections as
// non-retryable temporal.ApplicationErrors of these types; workflows branch
// on them with IsType. Anything else an activity returns is retried under
// the activity's retry policy.
const (
	// TypeOutOfStock: a reservation did not fit (inventory.ErrInsufficientStock).
	TypeOutOfStock = "OutOfStock"
	// TypeDeclined: the issuer declined (payment.ErrDeclined) or the token
	// was refused (payment.ErrInvalidToken).
	TypeDeclined = "Declined"
	// TypeCreditDeclined: the BNPL credit decision declined.
	TypeCreditDeclined = "CreditDeclined"
	// TypeAuthorizationClosed: the hold expired or was voided; nothing more
	// can be captured or voided.
	TypeAuthorizationClosed = "AuthorizationClosed"
	// TypeLimit: an amount above what the rules allow (capture above the
	// hold, refund above the captured amount, collection above what is owed).
	TypeLimit = "LimitExceeded"
	// TypeRejected: any other broken business rule. It means the saga and
	// the aggregates disagree, so it is never retried.
	TypeRejected = "Rejected"
)

// IsType reports whether err is (or wraps) an ApplicationError of typ.
func IsType(err error, typ string) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.Type() == typ
}

// Ports are the dependencies every saga activity uses. All fields are
// required except Logger (default slog.Default()).
type Ports struct {
	// App runs domain commands (load, decide, append with expected version).
	App *app.Service
	// Events reads streams the application service has no query for (the
	// collections of a plan).
	Events event.StreamReader
	// Registry decodes what Events returns.
	Registry *event.Registry
	// PSP is the payment-service provider.
	PSP    payment.Provider
	Logger *slog.Logger
}

// Check reports a missing dependency. (A function, not a method: activity
// structs embed Ports, and every exported method of an activity struct is
// registered as an activity.)
func Check(p Ports) error {
	switch {
	case p.App == nil:
		return errors.New("workflows: App required")
	case p.Events == nil:
		return errors.New("workflows: Events required")
	case p.Registry == nil:
		return errors.New("workflows: Registry required")
	case p.PSP == nil:
		return errors.New("workflows: PSP required")
	}
	return nil
}

func (p Ports) log() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// Meta is the metadata of the events a saga step appends.
func Meta(tenant, orderID, actor string) event.Metadata {
	return event.Metadata{Tenant: tenant, CorrelationID: orderID, Actor: actor}
}

// rejection marks an error returned by a domain decision, as opposed to an
// error of the store or the service.
type rejection struct{ err error }

func (r rejection) Error() string { return r.err.Error() }
func (r rejection) Unwrap() error { return r.err }

// Exec runs one domain command under cmdID (a business key: its retries
// append nothing new). A rejection by the domain comes back as a
// non-retryable ApplicationError typed by Classify, which still wraps the
// domain error for errors.Is; store and service errors come back as they
// are, to be retried.
func Exec[A app.Aggregate](ctx context.Context, p Ports, stream string, newAgg func() A, cmdID string, md event.Metadata, decide func(A) ([]event.Event, error)) (app.Result, error) {
	md.CausationID = cmdID
	res, err := app.Execute(ctx, p.App, stream, newAgg, app.Command{ID: cmdID, Metadata: md}, func(a A) ([]event.Event, error) {
		evs, err := decide(a)
		if err != nil {
			return nil, rejection{err}
		}
		return evs, nil
	})
	var r rejection
	if errors.As(err, &r) {
		return res, Reject(r.err)
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", stream, err)
	}
	return res, nil
}

// Reject wraps a business error as a non-retryable ApplicationError of the
// type Classify gives it.
func Reject(err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), Classify(err), err)
}

// Classify maps a domain or provider rejection to its application error
// type.
func Classify(err error) string {
	var limit *payment.LimitError
	var flimit *financing.LimitError
	switch {
	case errors.Is(err, inventory.ErrInsufficientStock):
		return TypeOutOfStock
	case errors.Is(err, payment.ErrDeclined), errors.Is(err, payment.ErrInvalidToken):
		return TypeDeclined
	case errors.Is(err, payment.ErrAuthorizationExpired), errors.Is(err, payment.ErrAuthorizationVoided):
		return TypeAuthorizationClosed
	case errors.As(err, &limit), errors.As(err, &flimit), errors.Is(err, order.ErrRefundExceedsPaid):
		return TypeLimit
	}
	return TypeRejected
}

// Query loads stream into newAgg's aggregate, caught up with the store,
// and calls read with it.
func Query[A app.Aggregate](ctx context.Context, p Ports, stream string, newAgg func() A, read func(a A)) error {
	if err := app.Query(ctx, p.App, stream, newAgg, func(a A, _ uint64) { read(a) }); err != nil {
		return fmt.Errorf("load %s: %w", stream, err)
	}
	return nil
}

// Order loads an order, caught up with the store, and calls read with it.
func Order(ctx context.Context, p Ports, orderID string, read func(o *order.Order)) error {
	err := app.Query(ctx, p.App, order.StreamID(orderID), func() *order.Order { return &order.Order{} }, func(o *order.Order, _ uint64) {
		read(o)
	})
	if err != nil {
		return fmt.Errorf("load order %s: %w", orderID, err)
	}
	return nil
}

// Payment loads a payment and calls read with it.
func Payment(ctx context.Context, p Ports, paymentID string, read func(pm *payment.Payment)) error {
	err := app.Query(ctx, p.App, payment.StreamID(paymentID), func() *payment.Payment { return &payment.Payment{} }, func(pm *payment.Payment, _ uint64) {
		read(pm)
	})
	if err != nil {
		return fmt.Errorf("load payment %s: %w", paymentID, err)
	}
	return nil
}

// Plan loads a financing plan and calls read with it.
func Plan(ctx context.Context, p Ports, planID string, read func(pl *financing.Plan)) error {
	err := app.Query(ctx, p.App, financing.StreamID(planID), func() *financing.Plan { return &financing.Plan{} }, func(pl *financing.Plan, _ uint64) {
		read(pl)
	})
	if err != nil {
		return fmt.Errorf("load plan %s: %w", planID, err)
	}
	return nil
}

// heartbeat records activity heartbeats while fn runs, so a worker that
// dies in the middle of a slow provider call is noticed after the
// activity's HeartbeatTimeout rather than its StartToCloseTimeout. Outside
// a regular activity (local activities, plain tests) it just runs fn.
func heartbeat[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	if !activity.IsActivity(ctx) || activity.GetInfo(ctx).IsLocalActivity || activity.GetInfo(ctx).HeartbeatTimeout <= 0 {
		return fn()
	}
	every := activity.GetInfo(ctx).HeartbeatTimeout / 3
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return fn()
}
