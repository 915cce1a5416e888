package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

// TokenSource finds the payment token a customer gave for an order (the
// HTTP API stores it when it accepts the checkout, next to nothing else).
// Tokens never travel through workflow inputs, so no workflow history holds
// one.
type TokenSource interface {
	PaymentToken(ctx context.Context, orderID string) (payment.Token, error)
}

// TokenFunc adapts a function to TokenSource.
type TokenFunc func(ctx context.Context, orderID string) (payment.Token, error)

// PaymentToken calls f.
func (f TokenFunc) PaymentToken(ctx context.Context, orderID string) (payment.Token, error) {
	return f(ctx, orderID)
}

// Hold is an authorization as a saga needs it.
type Hold struct {
	PaymentID   string         `json:"payment_id"`
	ProviderRef string         `json:"provider_ref"`
	Method      payment.Method `json:"method,omitzero"`
	Amount      money.Money    `json:"amount,omitzero"`
	ExpiresAt   time.Time      `json:"expires_at,omitzero"`
}

func newPayment() *payment.Payment { return &payment.Payment{} }

// providerErr sorts a provider error: rejections become non-retryable
// ApplicationErrors; ErrUnknownOutcome, ErrProviderUnavailable and transport
// errors stay retryable (the retry carries the same idempotency key, which
// is what makes an unknown outcome safe to retry).
func providerErr(op string, err error) error {
	var de *payment.DeclinedError
	var limit *payment.LimitError
	switch {
	case errors.As(err, &de), errors.Is(err, payment.ErrInvalidToken),
		errors.As(err, &limit),
		errors.Is(err, payment.ErrAuthorizationExpired), errors.Is(err, payment.ErrAuthorizationVoided),
		errors.Is(err, payment.ErrNothingToVoid),
		errors.Is(err, payment.ErrIdempotencyKeyReused), errors.Is(err, payment.ErrUnknownProviderRef),
		errors.Is(err, payment.ErrInvalidCommand), errors.Is(err, money.ErrCurrencyMismatch):
		return temporal.NewNonRetryableApplicationError(op+": "+err.Error(), Classify(err), err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// AuthorizeArgs asks for a hold and names its records.
type AuthorizeArgs struct {
	PaymentID string
	OrderID   string
	Method    payment.Method
	Token     payment.Token
	Amount    money.Money
	// Key is the provider idempotency key and the command ID of the
	// recording ("order/<id>/authorize").
	Key  string
	At   time.Time
	Meta event.Metadata
}

// Authorize asks the provider for a hold and records the answer on the
// payment: Authorized, or Declined and a TypeDeclined error.
func Authorize(ctx context.Context, p Ports, a AuthorizeArgs) (Hold, error) {
	auth := payment.Authorization{PaymentID: a.PaymentID, OrderID: a.OrderID, Method: a.Method, Amount: a.Amount}
	res, err := heartbeat(ctx, func() (payment.Result, error) {
		return p.PSP.Authorize(ctx, payment.AuthorizeRequest{
			IdempotencyKey: a.Key, PaymentID: a.PaymentID, Method: a.Method, Token: a.Token, Amount: a.Amount,
		})
	})
	var de *payment.DeclinedError
	switch {
	case errors.As(err, &de):
		auth.ProviderRef = de.ProviderRef
		if _, rerr := Exec(ctx, p, payment.StreamID(a.PaymentID), newPayment, a.Key, a.Meta, func(pm *payment.Payment) ([]event.Event, error) {
			return pm.Decline(auth, de.Reason, a.At)
		}); rerr != nil {
			return Hold{}, rerr
		}
		return Hold{}, providerErr("authorize", err)
	case err != nil:
		return Hold{}, providerErr("authorize", err)
	}
	auth.ProviderRef = res.ProviderRef
	if _, err := Exec(ctx, p, payment.StreamID(a.PaymentID), newPayment, a.Key, a.Meta, func(pm *payment.Payment) ([]event.Event, error) {
		return pm.Authorize(auth, a.At)
	}); err != nil {
		return Hold{}, err
	}
	h := Hold{PaymentID: a.PaymentID, ProviderRef: res.ProviderRef, Method: a.Method, Amount: a.Amount}
	err = Payment(ctx, p, a.PaymentID, func(pm *payment.Payment) { h.ExpiresAt = pm.ExpiresAt() })
	return h, err
}

// RecordHold records a hold that no provider granted: a BNPL order's
// authorization, which is the in-house lender's commitment (ProviderRef
// names the plan).
func RecordHold(ctx context.Context, p Ports, a AuthorizeArgs, providerRef string) (Hold, error) {
	auth := payment.Authorization{PaymentID: a.PaymentID, OrderID: a.OrderID, Method: a.Method, Amount: a.Amount, ProviderRef: providerRef}
	if _, err := Exec(ctx, p, payment.StreamID(a.PaymentID), newPayment, a.Key, a.Meta, func(pm *payment.Payment) ([]event.Event, error) {
		return pm.Authorize(auth, a.At)
	}); err != nil {
		return Hold{}, err
	}
	h := Hold{PaymentID: a.PaymentID, ProviderRef: providerRef, Method: a.Method, Amount: a.Amount}
	err := Payment(ctx, p, a.PaymentID, func(pm *payment.Payment) { h.ExpiresAt = pm.ExpiresAt() })
	return h, err
}

// MoveArgs describes a capture, void or refund of a recorded payment.
type MoveArgs struct {
	PaymentID string
	// ID is the capture or refund ID recorded on the payment (unused for a
	// void).
	ID     string
	Amount money.Money
	// Key is the provider idempotency key and the command ID of the
	// recording ("order/<id>/capture/<shipment>").
	Key string
	// ViaPSP is false for a BNPL order's payment: the lender is in house,
	// so only the payment's events record the move.
	ViaPSP bool
	At     time.Time
	Meta   event.Metadata
}

// precheck loads the payment and runs decide against it without appending,
// so the provider is never asked for what the aggregate would then refuse to
// record. It returns the provider reference of the hold.
func precheck(ctx context.Context, p Ports, paymentID string, decide func(pm *payment.Payment) ([]event.Event, error)) (ref string, events int, err error) {
	var derr error
	lerr := Payment(ctx, p, paymentID, func(pm *payment.Payment) {
		ref = pm.ProviderRef()
		var evs []event.Event
		evs, derr = decide(pm)
		events = len(evs)
	})
	if lerr != nil {
		return "", 0, lerr
	}
	if derr != nil {
		return "", 0, Reject(derr)
	}
	return ref, events, nil
}

// Capture captures a.Amount under capture ID a.ID and records it. A
// capture already recorded is a no-op.
func Capture(ctx context.Context, p Ports, a MoveArgs) error {
	decide := func(pm *payment.Payment) ([]event.Event, error) { return pm.Capture(a.ID, a.Amount, a.At) }
	ref, n, err := precheck(ctx, p, a.PaymentID, decide)
	if err != nil || n == 0 {
		return err
	}
	if a.ViaPSP {
		if _, err := heartbeat(ctx, func() (payment.Result, error) {
			return p.PSP.Capture(ctx, payment.CaptureRequest{IdempotencyKey: a.Key, ProviderRef: ref, Amount: a.Amount})
		}); err != nil {
			return providerErr("capture", err)
		}
	}
	_, err = Exec(ctx, p, payment.StreamID(a.PaymentID), newPayment, a.Key, a.Meta, decide)
	return err
}

// Void releases the uncaptured remainder of a hold and records it; it
// returns what was released (zero when nothing was left or the payment was
// never authorized). A TypeAuthorizationClosed error means the hold expired
// first.
func Void(ctx context.Context, p Ports, a MoveArgs) (money.Money, error) {
	var released money.Money
	var skip bool
	if err := Payment(ctx, p, a.PaymentID, func(pm *payment.Payment) {
		switch pm.Status() {
		case payment.StatusNew, payment.StatusDeclined, payment.StatusCaptured:
			skip = true
		case payment.StatusVoided:
			skip, released = true, pm.Released()
		}
	}); err != nil {
		return money.Money{}, err
	}
	if skip {
		return released, nil
	}
	decide := func(pm *payment.Payment) ([]event.Event, error) { return pm.Void(a.At) }
	ref, n, err := precheck(ctx, p, a.PaymentID, decide)
	if err != nil || n == 0 {
		return released, err
	}
	if a.ViaPSP {
		if _, err := heartbeat(ctx, func() (payment.Result, error) {
			return p.PSP.Void(ctx, payment.VoidRequest{IdempotencyKey: a.Key, ProviderRef: ref})
		}); err != nil && !errors.Is(err, payment.ErrNothingToVoid) {
			return released, providerErr("void", err)
		}
	}
	if _, err := Exec(ctx, p, payment.StreamID(a.PaymentID), newPayment, a.Key, a.Meta, decide); err != nil {
		return released, err
	}
	err = Payment(ctx, p, a.PaymentID, func(pm *payment.Payment) { released = pm.Released() })
	return released, err
}

// Refund returns a.Amount of the captured money under refund ID a.ID and
// records it. A refund already recorded is a no-op.
func Refund(ctx context.Context, p Ports, a MoveArgs) error {
	decide := func(pm *payment.Payment) ([]event.Event, error) { return pm.Refund(a.ID, a.Amount, a.At) }
	ref, n, err := precheck(ctx, p, a.PaymentID, decide)
	if err != nil || n == 0 {
		return err
	}
	if a.ViaPSP {
		if _, err := heartbeat(ctx, func() (payment.Result, error) {
			return p.PSP.Refund(ctx, payment.RefundRequest{IdempotencyKey: a.Key, ProviderRef: ref, Amount: a.Amount})
		}); err != nil {
			return providerErr("refund", err)
		}
	}
	_, err = Exec(ctx, p, payment.StreamID(a.PaymentID), newPayment, a.Key, a.Meta, decide)
	return err
}

// Charge takes a.Amount from a card at once (authorize, then capture the
// whole hold): how a plan's installments are collected. Keys are a.Key +
// "/authorize" and a.Key + "/capture".
func Charge(ctx context.Context, p Ports, a AuthorizeArgs) (Hold, error) {
	base := a.Key
	a.Key = base + "/authorize"
	h, err := Authorize(ctx, p, a)
	if err != nil {
		return Hold{}, err
	}
	err = Capture(ctx, p, MoveArgs{PaymentID: a.PaymentID, ID: "full", Amount: a.Amount, Key: base + "/capture", ViaPSP: true, At: a.At, Meta: a.Meta})
	return h, err
}

// refundedUnder is what payment paymentID refunded under refund ID id
// (zero in the payment's currency if nothing, invalid if the payment has no
// events).
func refundedUnder(ctx context.Context, p Ports, paymentID, id string) (money.Money, error) {
	envs, err := p.Events.ReadStream(ctx, payment.StreamID(paymentID), 1, 0)
	if err != nil {
		return money.Money{}, fmt.Errorf("read payment %s: %w", paymentID, err)
	}
	var out money.Money
	for _, env := range envs {
		ev, err := p.Registry.DecodeEnvelope(env)
		if err != nil {
			return money.Money{}, fmt.Errorf("read payment %s: %w", paymentID, err)
		}
		switch e := ev.(type) {
		case *payment.Authorized:
			if !out.IsValid() {
				out = money.Zero(e.Amount.Currency())
			}
		case *payment.Refunded:
			if e.RefundID == id {
				out = e.Amount
			}
		}
	}
	return out, nil
}
