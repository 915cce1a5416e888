package payment

import (
	"fmt"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
)

// Payment is one authorization and what happened to it: captures, a void or
// expiry of the remainder, refunds and chargebacks. Build it by applying its
// stream's events to the zero Payment; decide with its methods, which return
// events and never change the Payment. A Payment is not safe for concurrent
// use.
type Payment struct {
	id, orderID   string
	method        Method
	status        Status
	providerRef   string
	declineReason DeclineReason
	authorizedAt  time.Time
	expiresAt     time.Time

	authorized  money.Money
	captured    money.Money
	released    money.Money // voided or expired remainder
	refunded    money.Money
	disputed    money.Money // under an open chargeback
	chargedBack money.Money // lost chargebacks

	captures    map[string]money.Money
	refunds     map[string]money.Money
	chargebacks map[string]chargeback
}

type chargeback struct {
	amount money.Money
	reason ChargebackReason
	state  chargebackState
}

type chargebackState uint8

const (
	chargebackOpen chargebackState = iota + 1
	chargebackWon
	chargebackLost
)

// ID is the payment's ID ("" before the first event).
func (p *Payment) ID() string { return p.id }

// OrderID is the order the payment is for.
func (p *Payment) OrderID() string { return p.orderID }

// Method is how the payment is funded.
func (p *Payment) Method() Method { return p.method }

// Status is where the authorization stands.
func (p *Payment) Status() Status { return p.status }

// ProviderRef is the provider's reference of the authorization.
func (p *Payment) ProviderRef() string { return p.providerRef }

// DeclineReason is why the authorization was declined (zero unless
// StatusDeclined).
func (p *Payment) DeclineReason() DeclineReason { return p.declineReason }

// ExpiresAt is when the authorization stops being capturable.
func (p *Payment) ExpiresAt() time.Time { return p.expiresAt }

// Authorized is the amount held (for a declined payment: the amount asked).
func (p *Payment) Authorized() money.Money { return p.authorized }

// Captured is the sum of captures.
func (p *Payment) Captured() money.Money { return p.captured }

// Released is the uncaptured remainder given up by a void or expiry.
func (p *Payment) Released() money.Money { return p.released }

// Refunded is the sum of refunds.
func (p *Payment) Refunded() money.Money { return p.refunded }

// Disputed is the amount under open chargebacks.
func (p *Payment) Disputed() money.Money { return p.disputed }

// ChargedBack is the sum of lost chargebacks.
func (p *Payment) ChargedBack() money.Money { return p.chargedBack }

// Capturable is what can still be captured before now; zero once the hold
// is closed, declined or expired.
func (p *Payment) Capturable(now time.Time) money.Money {
	if p.status != StatusAuthorized || !now.Before(p.expiresAt) {
		return zeroOf(p.authorized)
	}
	return sub(sub(p.authorized, p.captured), p.released)
}

// Refundable is captured - refunded - disputed - charged back: money the
// merchant holds that is not claimed by a dispute.
func (p *Payment) Refundable() money.Money {
	if p.status == StatusNew || p.status == StatusDeclined {
		return zeroOf(p.authorized)
	}
	return sub(sub(sub(p.captured, p.refunded), p.disputed), p.chargedBack)
}

// Apply evolves the payment by one event of its stream. It is total over
// this package's events (as pointers, as decisions return them and the
// registry decodes them) and ignores any other event.
func (p *Payment) Apply(e event.Event) {
	switch e := e.(type) {
	case *Authorized:
		p.id, p.orderID, p.method, p.providerRef = e.PaymentID, e.OrderID, e.Method, e.ProviderRef
		p.status = StatusAuthorized
		p.authorizedAt, p.expiresAt = e.AuthorizedAt, e.ExpiresAt
		p.initAmounts(e.Amount)
	case *Declined:
		p.id, p.orderID, p.method, p.providerRef = e.PaymentID, e.OrderID, e.Method, e.ProviderRef
		p.status, p.declineReason = StatusDeclined, e.Reason
		p.initAmounts(e.Amount)
	case *Captured:
		p.captured = add(p.captured, e.Amount)
		p.captures[e.CaptureID] = e.Amount
		if p.captured.Equal(p.authorized) {
			p.status = StatusCaptured
		}
	case *Voided:
		p.released = add(p.released, e.Released)
		p.status = StatusVoided
	case *Expired:
		p.released = add(p.released, e.Released)
		p.status = StatusExpired
	case *Refunded:
		p.refunded = add(p.refunded, e.Amount)
		p.refunds[e.RefundID] = e.Amount
	case *ChargebackOpened:
		p.disputed = add(p.disputed, e.Amount)
		p.chargebacks[e.ChargebackID] = chargeback{amount: e.Amount, reason: e.Reason, state: chargebackOpen}
	case *ChargebackWon:
		p.resolve(e.ChargebackID, chargebackWon)
	case *ChargebackLost:
		p.resolve(e.ChargebackID, chargebackLost)
	}
}

func (p *Payment) initAmounts(amount money.Money) {
	z := money.Zero(amount.Currency())
	p.authorized = amount
	p.captured, p.released, p.refunded, p.disputed, p.chargedBack = z, z, z, z, z
	p.captures = map[string]money.Money{}
	p.refunds = map[string]money.Money{}
	p.chargebacks = map[string]chargeback{}
}

func (p *Payment) resolve(id string, to chargebackState) {
	cb, ok := p.chargebacks[id]
	if !ok || cb.state != chargebackOpen {
		return
	}
	p.disputed = sub(p.disputed, cb.amount)
	if to == chargebackLost {
		p.chargedBack = add(p.chargedBack, cb.amount)
	}
	cb.state = to
	p.chargebacks[id] = cb
}

// Authorization is the data of an authorization attempt: the payment, its
// order, the method, the amount and the provider's reference.
type Authorization struct {
	PaymentID   string
	OrderID     string
	Method      Method
	Amount      money.Money
	ProviderRef string
}

func (a Authorization) validate(needRef bool) error {
	switch {
	case a.PaymentID == "" || a.OrderID == "":
		return fmt.Errorf("%w: payment and order IDs are required", ErrInvalidCommand)
	case a.Method.IsZero():
		return fmt.Errorf("%w: method is required", ErrInvalidCommand)
	case !a.Amount.IsValid() || !a.Amount.IsPositive():
		return fmt.Errorf("%w: amount %v must be positive", ErrInvalidCommand, a.Amount)
	case needRef && a.ProviderRef == "":
		return fmt.Errorf("%w: provider reference is required", ErrInvalidCommand)
	}
	return nil
}

func (p *Payment) sameAuthorization(a Authorization) bool {
	return p.id == a.PaymentID && p.orderID == a.OrderID && p.method == a.Method &&
		p.authorized.Equal(a.Amount) && p.providerRef == a.ProviderRef
}

// Authorize records an authorization the provider granted at now. It
// expires after the method's AuthorizationValidity. Repeating it with the
// same data yields no events; a payment already authorized or declined
// otherwise gives ErrAlreadyDecided.
func (p *Payment) Authorize(a Authorization, now time.Time) ([]event.Event, error) {
	if err := a.validate(true); err != nil {
		return nil, err
	}
	if p.status != StatusNew {
		if p.status != StatusDeclined && p.sameAuthorization(a) {
			return nil, nil
		}
		return nil, fmt.Errorf("authorize %s: %w (status %s)", a.PaymentID, ErrAlreadyDecided, p.status)
	}
	now = now.UTC()
	return []event.Event{&Authorized{
		PaymentID: a.PaymentID, OrderID: a.OrderID, Method: a.Method, Amount: a.Amount,
		ProviderRef: a.ProviderRef, AuthorizedAt: now, ExpiresAt: now.Add(a.Method.AuthorizationValidity()),
	}}, nil
}

// Decline records that the provider declined a (ProviderRef may be empty).
// Repeating it with the same data yields no events; a payment already
// decided otherwise gives ErrAlreadyDecided.
func (p *Payment) Decline(a Authorization, reason DeclineReason, now time.Time) ([]event.Event, error) {
	if err := a.validate(false); err != nil {
		return nil, err
	}
	if reason.IsZero() {
		return nil, fmt.Errorf("%w: decline reason is required", ErrInvalidCommand)
	}
	if p.status != StatusNew {
		if p.status == StatusDeclined && p.sameAuthorization(a) && p.declineReason == reason {
			return nil, nil
		}
		return nil, fmt.Errorf("decline %s: %w (status %s)", a.PaymentID, ErrAlreadyDecided, p.status)
	}
	return []event.Event{&Declined{
		PaymentID: a.PaymentID, OrderID: a.OrderID, Method: a.Method, Amount: a.Amount,
		Reason: reason, ProviderRef: a.ProviderRef, DeclinedAt: now.UTC(),
	}}, nil
}

// Capture captures amt of the hold under captureID (one per shipment, say);
// several partial captures are allowed up to the authorized amount. The
// same captureID with the same amount is a retry and yields no events; with
// another amount it is ErrIDReused. Errors: ErrNotAuthorized,
// ErrAuthorizationVoided, ErrAuthorizationExpired (also when now is at or
// past the expiry even if Expire was not recorded), *LimitError with
// ErrCaptureExceedsAuthorized.
func (p *Payment) Capture(captureID string, amt money.Money, now time.Time) ([]event.Event, error) {
	if captureID == "" {
		return nil, fmt.Errorf("%w: capture ID is required", ErrInvalidCommand)
	}
	if prev, ok := p.captures[captureID]; ok {
		if prev.Equal(amt) {
			return nil, nil
		}
		return nil, fmt.Errorf("capture %s: %w: was %s, now %v", captureID, ErrIDReused, prev, amt)
	}
	if err := p.checkHold(now); err != nil {
		return nil, fmt.Errorf("capture %s: %w", captureID, err)
	}
	if err := p.checkAmount(amt); err != nil {
		return nil, fmt.Errorf("capture %s: %w", captureID, err)
	}
	if avail := p.Capturable(now); amt.GreaterThan(avail) {
		return nil, &LimitError{Err: ErrCaptureExceedsAuthorized, Requested: amt, Available: avail}
	}
	return []event.Event{&Captured{PaymentID: p.id, CaptureID: captureID, Amount: amt, CapturedAt: now.UTC()}}, nil
}

// Void releases the uncaptured remainder. Voiding a voided payment yields
// no events. Errors: ErrNotAuthorized, ErrAuthorizationExpired,
// ErrNothingToVoid (everything is captured).
func (p *Payment) Void(now time.Time) ([]event.Event, error) {
	switch p.status {
	case StatusVoided:
		return nil, nil
	case StatusCaptured:
		return nil, fmt.Errorf("void %s: %w", p.id, ErrNothingToVoid)
	}
	if err := p.checkHold(now); err != nil {
		return nil, fmt.Errorf("void %s: %w", p.id, err)
	}
	return []event.Event{&Voided{PaymentID: p.id, Released: p.Capturable(now), VoidedAt: now.UTC()}}, nil
}

// Expire records that the authorization lapsed: its uncaptured remainder is
// released. It needs now at or past ExpiresAt (else ErrNotYetExpired).
// Expiring a hold that is already closed (voided, fully captured, expired)
// yields no events, so an expiry timer may fire blindly.
func (p *Payment) Expire(now time.Time) ([]event.Event, error) {
	switch p.status {
	case StatusNew, StatusDeclined:
		return nil, fmt.Errorf("expire %s: %w", p.id, ErrNotAuthorized)
	case StatusAuthorized:
	default:
		return nil, nil
	}
	if now.Before(p.expiresAt) {
		return nil, fmt.Errorf("expire %s: %w (expires %s)", p.id, ErrNotYetExpired, p.expiresAt.Format(time.RFC3339))
	}
	released := sub(p.authorized, p.captured)
	return []event.Event{&Expired{PaymentID: p.id, Released: released, ExpiredAt: now.UTC()}}, nil
}

// Refund returns amt of the captured money under refundID; several partial
// refunds are allowed, in any status, up to Refundable (captured minus
// refunded, disputed and charged back). The same refundID with the same
// amount yields no events; with another amount it is ErrIDReused. Errors:
// ErrNotAuthorized, *LimitError with ErrRefundExceedsCaptured.
func (p *Payment) Refund(refundID string, amt money.Money, now time.Time) ([]event.Event, error) {
	if refundID == "" {
		return nil, fmt.Errorf("%w: refund ID is required", ErrInvalidCommand)
	}
	if prev, ok := p.refunds[refundID]; ok {
		if prev.Equal(amt) {
			return nil, nil
		}
		return nil, fmt.Errorf("refund %s: %w: was %s, now %v", refundID, ErrIDReused, prev, amt)
	}
	if p.status == StatusNew || p.status == StatusDeclined {
		return nil, fmt.Errorf("refund %s: %w", refundID, ErrNotAuthorized)
	}
	if err := p.checkAmount(amt); err != nil {
		return nil, fmt.Errorf("refund %s: %w", refundID, err)
	}
	if avail := p.Refundable(); amt.GreaterThan(avail) {
		return nil, &LimitError{Err: ErrRefundExceedsCaptured, Requested: amt, Available: avail}
	}
	return []event.Event{&Refunded{PaymentID: p.id, RefundID: refundID, Amount: amt, RefundedAt: now.UTC()}}, nil
}

// OpenChargeback records a dispute of amt under chargebackID. The amount
// must be captured and neither refunded nor already disputed; while open it
// cannot be refunded. The same ID with the same amount and reason yields no
// events. Errors: ErrNotAuthorized, ErrIDReused, *LimitError with
// ErrChargebackExceedsCaptured.
func (p *Payment) OpenChargeback(chargebackID string, amt money.Money, reason ChargebackReason, now time.Time) ([]event.Event, error) {
	if chargebackID == "" || reason.IsZero() {
		return nil, fmt.Errorf("%w: chargeback ID and reason are required", ErrInvalidCommand)
	}
	if prev, ok := p.chargebacks[chargebackID]; ok {
		if prev.amount.Equal(amt) && prev.reason == reason {
			return nil, nil
		}
		return nil, fmt.Errorf("chargeback %s: %w", chargebackID, ErrIDReused)
	}
	if p.status == StatusNew || p.status == StatusDeclined {
		return nil, fmt.Errorf("chargeback %s: %w", chargebackID, ErrNotAuthorized)
	}
	if err := p.checkAmount(amt); err != nil {
		return nil, fmt.Errorf("chargeback %s: %w", chargebackID, err)
	}
	if avail := p.Refundable(); amt.GreaterThan(avail) {
		return nil, &LimitError{Err: ErrChargebackExceedsCaptured, Requested: amt, Available: avail}
	}
	return []event.Event{&ChargebackOpened{
		PaymentID: p.id, ChargebackID: chargebackID, Amount: amt, Reason: reason, OpenedAt: now.UTC(),
	}}, nil
}

// WinChargeback records that the merchant won dispute chargebackID: the
// amount is the merchant's again. Winning a won dispute yields no events.
// Errors: ErrUnknownChargeback, ErrChargebackResolved (it was lost).
func (p *Payment) WinChargeback(chargebackID string, now time.Time) ([]event.Event, error) {
	cb, err := p.openChargeback(chargebackID, chargebackWon)
	if err != nil || cb == nil {
		return nil, err
	}
	return []event.Event{&ChargebackWon{PaymentID: p.id, ChargebackID: chargebackID, Amount: cb.amount, ResolvedAt: now.UTC()}}, nil
}

// LoseChargeback records that the merchant lost dispute chargebackID: the
// amount went back to the cardholder for good. Losing a lost dispute yields
// no events. Errors: ErrUnknownChargeback, ErrChargebackResolved (it was
// won).
func (p *Payment) LoseChargeback(chargebackID string, now time.Time) ([]event.Event, error) {
	cb, err := p.openChargeback(chargebackID, chargebackLost)
	if err != nil || cb == nil {
		return nil, err
	}
	return []event.Event{&ChargebackLost{PaymentID: p.id, ChargebackID: chargebackID, Amount: cb.amount, ResolvedAt: now.UTC()}}, nil
}

// openChargeback returns the open chargeback id, or nil and no error when
// it is already resolved as to (a retry).
func (p *Payment) openChargeback(id string, to chargebackState) (*chargeback, error) {
	cb, ok := p.chargebacks[id]
	switch {
	case !ok:
		return nil, fmt.Errorf("chargeback %s: %w", id, ErrUnknownChargeback)
	case cb.state == to:
		return nil, nil
	case cb.state != chargebackOpen:
		return nil, fmt.Errorf("chargeback %s: %w", id, ErrChargebackResolved)
	}
	return &cb, nil
}

// checkHold says why the hold cannot be captured or voided at now, if it
// cannot.
func (p *Payment) checkHold(now time.Time) error {
	switch p.status {
	case StatusNew, StatusDeclined:
		return ErrNotAuthorized
	case StatusVoided:
		return ErrAuthorizationVoided
	case StatusExpired:
		return ErrAuthorizationExpired
	}
	if !now.Before(p.expiresAt) {
		return fmt.Errorf("%w at %s", ErrAuthorizationExpired, p.expiresAt.Format(time.RFC3339))
	}
	return nil
}

func (p *Payment) checkAmount(amt money.Money) error {
	if !amt.IsValid() || !amt.IsPositive() {
		return fmt.Errorf("%w: amount %v must be positive", ErrInvalidCommand, amt)
	}
	if !amt.SameCurrency(p.authorized) {
		return fmt.Errorf("%w: %s payment", money.ErrCurrencyMismatch, p.authorized.Currency())
	}
	return nil
}

// add and sub are for amounts a decision has already checked: same
// currency, within bounds. A failure means a history no decision could have
// produced (corruption); Apply has no error to return, so it panics.
func add(a, b money.Money) money.Money {
	r, err := a.Add(b)
	if err != nil {
		panic(fmt.Sprintf("payment: impossible history: %v", err))
	}
	return r
}

func sub(a, b money.Money) money.Money {
	r, err := a.Sub(b)
	if err != nil {
		panic(fmt.Sprintf("payment: impossible history: %v", err))
	}
	return r
}

func zeroOf(m money.Money) money.Money {
	if !m.IsValid() {
		return m
	}
	return money.Zero(m.Currency())
}
