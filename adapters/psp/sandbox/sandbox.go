// Package sandbox is an in-process payment provider that behaves like real
// providers' test modes. It implements payment.Provider for development and
// tests: decisions are driven by test tokens, idempotency keys are honoured
// the way Stripe honours them, and a ledger records every effect so tests
// can assert "0 duplicate charges".
//
// # Test tokens
//
//	tok_visa_approve, tok_mastercard_approve, tok_bnpl_approve  approved
//	tok_decline_do_not_honor        declined: do_not_honor
//	tok_decline_insufficient_funds  declined: insufficient_funds
//	tok_decline_expired_card        declined: expired_card
//	tok_decline_fraud               declined: suspected_fraud
//	tok_timeout_approve             approved, but the first answer is lost:
//	                                the caller gets payment.ErrUnknownOutcome
//	                                although the hold WAS placed; a retry with
//	                                the same idempotency key returns it
//	tok_unavailable                 payment.ErrProviderUnavailable, nothing
//	                                happens, nothing is remembered
//
// Any other valid token is refused with payment.ErrInvalidToken.
//
// # Test card numbers
//
// Tokenize maps a test card number to its token at once and keeps nothing;
// only the API layer should call it, and nothing below it ever sees a
// number:
//
//	4242 4242 4242 4242  tok_visa_approve
//	5555 5555 5555 4444  tok_mastercard_approve
//	4000 0000 0000 0002  tok_decline_do_not_honor
//	4000 0000 0000 9995  tok_decline_insufficient_funds
//	4000 0000 0000 0069  tok_decline_expired_card
//	4100 0000 0000 0019  tok_decline_fraud
//	4000 0000 0000 0127  tok_timeout_approve
//	4000 0000 0000 0135  tok_unavailable
//
// # Behaviour
//
//   - Idempotency: the first call with a key is answered and remembered,
//     success or business refusal (a decline, an amount over the limit, a
//     voided or expired hold); later calls with the key get that answer
//     again and act no further. The same key with a different request (other
//     operation or fields) is payment.ErrIdempotencyKeyReused. Keys are
//     global to the sandbox, like one merchant account. Not remembered,
//     because nothing started: payment.ErrProviderUnavailable, context
//     errors and malformed requests (payment.ErrInvalidCommand,
//     payment.ErrInvalidToken, money.ErrCurrencyMismatch,
//     payment.ErrUnknownProviderRef), as Stripe saves no result for a
//     request that failed validation.
//   - Holds expire after the method's payment.Method.AuthorizationValidity
//     (7 days for cards), measured with Config.Now.
//   - Rules: capture <= authorized - captured (partial and multiple
//     captures allowed) else *payment.LimitError with
//     payment.ErrCaptureExceedsAuthorized; refund <= captured - refunded else
//     payment.ErrRefundExceedsCaptured; void releases only the uncaptured
//     remainder (payment.ErrNothingToVoid when everything is captured);
//     capture or void after a void: payment.ErrAuthorizationVoided; after
//     expiry: payment.ErrAuthorizationExpired; unknown reference:
//     payment.ErrUnknownProviderRef.
//   - Concurrency: a Sandbox is safe for concurrent use; calls are
//     serialised, so concurrent duplicates with one key have one effect and
//     all see the same answer.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

// Op names a provider operation.
type Op string

// Operations.
const (
	OpAuthorize Op = "authorize"
	OpCapture   Op = "capture"
	OpVoid      Op = "void"
	OpRefund    Op = "refund"
)

// Config configures a Sandbox. The zero Config is valid.
type Config struct {
	// Now is the clock used for expiry and the ledger. Default: time.Now.
	Now func() time.Time
	// DropResponse, if set, is asked after a call with a new key took
	// effect; true makes the caller get payment.ErrUnknownOutcome although
	// the effect happened (a response lost in flight). A retry with the
	// same key returns the real answer. For fault injection in tests.
	DropResponse func(op Op, key string) bool
}

func (c *Config) setDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Entry is one effect in the ledger.
type Entry struct {
	Seq       int
	Op        Op
	Key       string      // the idempotency key of the call that had the effect
	Ref       string      // the reference the call created (auth_..., cap_..., void_..., re_...)
	AuthRef   string      // the authorization it belongs to
	PaymentID string      // the merchant's payment ID given at authorization
	Amount    money.Money // authorized, captured, released or refunded
	At        time.Time
}

// Sandbox is the simulated provider. Create it with New.
type Sandbox struct {
	cfg Config

	mu     sync.Mutex
	seq    int
	keys   map[string]*answer
	calls  map[string]int
	holds  map[string]*hold
	ledger []Entry
}

var _ payment.Provider = (*Sandbox)(nil)

type answer struct {
	fingerprint string
	result      payment.Result
	err         error
}

type hold struct {
	paymentID                            string
	amount, captured, refunded, released money.Money
	voided                               bool
	expiresAt                            time.Time
}

// New returns an empty sandbox.
func New(cfg Config) *Sandbox {
	cfg.setDefaults()
	return &Sandbox{cfg: cfg, keys: map[string]*answer{}, calls: map[string]int{}, holds: map[string]*hold{}}
}

// decisions maps test tokens to what the issuer does; a nil error approves.
var decisions = map[string]error{
	"tok_visa_approve":               nil,
	"tok_mastercard_approve":         nil,
	"tok_bnpl_approve":               nil,
	"tok_timeout_approve":            nil,
	"tok_decline_do_not_honor":       &payment.DeclinedError{Reason: payment.DeclineDoNotHonor},
	"tok_decline_insufficient_funds": &payment.DeclinedError{Reason: payment.DeclineInsufficientFunds},
	"tok_decline_expired_card":       &payment.DeclinedError{Reason: payment.DeclineExpiredCard},
	"tok_decline_fraud":              &payment.DeclinedError{Reason: payment.DeclineSuspectedFraud},
	"tok_unavailable":                payment.ErrProviderUnavailable,
}

var errInvalidRequest = fmt.Errorf("sandbox: %w", payment.ErrInvalidCommand)

// Authorize places a hold of req.Amount on req.Token; see the package doc
// for the test tokens.
func (s *Sandbox) Authorize(ctx context.Context, req payment.AuthorizeRequest) (payment.Result, error) {
	fp := fmt.Sprintf("authorize|%s|%s|%s|%v", req.PaymentID, req.Method, req.Token, req.Amount)
	return s.call(ctx, OpAuthorize, req.IdempotencyKey, fp, req.Token.String() == "tok_timeout_approve", func(now time.Time) (payment.Result, error) {
		if req.Token.IsZero() || req.Method.IsZero() || !req.Amount.IsValid() || !req.Amount.IsPositive() {
			return payment.Result{}, fmt.Errorf("%w: authorize needs a token, a method and a positive amount", errInvalidRequest)
		}
		decision, known := decisions[req.Token.String()]
		if !known {
			return payment.Result{}, fmt.Errorf("sandbox: %w: not a test token", payment.ErrInvalidToken)
		}
		if decision != nil {
			var de *payment.DeclinedError
			if errors.As(decision, &de) {
				return payment.Result{}, &payment.DeclinedError{Reason: de.Reason, ProviderRef: s.nextRef("decl")}
			}
			return payment.Result{}, fmt.Errorf("sandbox: %w", decision)
		}
		ref := s.nextRef("auth")
		z := money.Zero(req.Amount.Currency())
		h := &hold{paymentID: req.PaymentID, amount: req.Amount, captured: z, refunded: z, released: z,
			expiresAt: now.Add(req.Method.AuthorizationValidity())}
		s.holds[ref] = h
		s.record(OpAuthorize, req.IdempotencyKey, ref, ref, h, req.Amount, now)
		return payment.Result{ProviderRef: ref, Status: payment.ResultAuthorized, Amount: req.Amount, ExpiresAt: h.expiresAt}, nil
	})
}

// Capture settles req.Amount of the hold req.ProviderRef.
func (s *Sandbox) Capture(ctx context.Context, req payment.CaptureRequest) (payment.Result, error) {
	fp := fmt.Sprintf("capture|%s|%v", req.ProviderRef, req.Amount)
	return s.call(ctx, OpCapture, req.IdempotencyKey, fp, false, func(now time.Time) (payment.Result, error) {
		h, err := s.openHold(req.ProviderRef, now)
		if err != nil {
			return payment.Result{}, err
		}
		if err := checkAmount(req.Amount, h.amount); err != nil {
			return payment.Result{}, err
		}
		avail := mustSub(mustSub(h.amount, h.captured), h.released)
		if req.Amount.GreaterThan(avail) {
			return payment.Result{}, &payment.LimitError{Err: payment.ErrCaptureExceedsAuthorized, Requested: req.Amount, Available: avail}
		}
		h.captured = mustAdd(h.captured, req.Amount)
		ref := s.nextRef("cap")
		s.record(OpCapture, req.IdempotencyKey, ref, req.ProviderRef, h, req.Amount, now)
		return payment.Result{ProviderRef: ref, Status: payment.ResultCaptured, Amount: req.Amount}, nil
	})
}

// Void releases the uncaptured remainder of the hold req.ProviderRef.
func (s *Sandbox) Void(ctx context.Context, req payment.VoidRequest) (payment.Result, error) {
	fp := "void|" + req.ProviderRef
	return s.call(ctx, OpVoid, req.IdempotencyKey, fp, false, func(now time.Time) (payment.Result, error) {
		h, err := s.openHold(req.ProviderRef, now)
		if err != nil {
			return payment.Result{}, err
		}
		rest := mustSub(h.amount, h.captured)
		if !rest.IsPositive() {
			return payment.Result{}, fmt.Errorf("sandbox: %w", payment.ErrNothingToVoid)
		}
		h.released, h.voided = rest, true
		ref := s.nextRef("void")
		s.record(OpVoid, req.IdempotencyKey, ref, req.ProviderRef, h, rest, now)
		return payment.Result{ProviderRef: ref, Status: payment.ResultVoided, Amount: rest}, nil
	})
}

// Refund returns req.Amount of what was captured on req.ProviderRef.
func (s *Sandbox) Refund(ctx context.Context, req payment.RefundRequest) (payment.Result, error) {
	fp := fmt.Sprintf("refund|%s|%v", req.ProviderRef, req.Amount)
	return s.call(ctx, OpRefund, req.IdempotencyKey, fp, false, func(now time.Time) (payment.Result, error) {
		h, ok := s.holds[req.ProviderRef]
		if !ok {
			return payment.Result{}, fmt.Errorf("sandbox: %w", payment.ErrUnknownProviderRef)
		}
		if err := checkAmount(req.Amount, h.amount); err != nil {
			return payment.Result{}, err
		}
		if avail := mustSub(h.captured, h.refunded); req.Amount.GreaterThan(avail) {
			return payment.Result{}, &payment.LimitError{Err: payment.ErrRefundExceedsCaptured, Requested: req.Amount, Available: avail}
		}
		h.refunded = mustAdd(h.refunded, req.Amount)
		ref := s.nextRef("re")
		s.record(OpRefund, req.IdempotencyKey, ref, req.ProviderRef, h, req.Amount, now)
		return payment.Result{ProviderRef: ref, Status: payment.ResultRefunded, Amount: req.Amount}, nil
	})
}

// call runs apply once per idempotency key, under the lock, and replays its
// remembered answer to later calls with the key.
func (s *Sandbox) call(ctx context.Context, op Op, key, fingerprint string, loseFirstAnswer bool, apply func(now time.Time) (payment.Result, error)) (payment.Result, error) {
	if err := ctx.Err(); err != nil {
		return payment.Result{}, fmt.Errorf("sandbox %s: %w", op, err)
	}
	if key == "" {
		return payment.Result{}, fmt.Errorf("%w: %s without an idempotency key", errInvalidRequest, op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[key]++
	if a, ok := s.keys[key]; ok {
		if a.fingerprint != fingerprint {
			return payment.Result{}, fmt.Errorf("sandbox %s: %w", op, payment.ErrIdempotencyKeyReused)
		}
		return a.result, a.err
	}
	res, err := apply(s.cfg.Now())
	if !remembered(err) {
		return payment.Result{}, err // nothing started; a retry may succeed
	}
	s.keys[key] = &answer{fingerprint: fingerprint, result: res, err: err}
	if err == nil && (loseFirstAnswer || s.cfg.DropResponse != nil && s.cfg.DropResponse(op, key)) {
		return payment.Result{}, fmt.Errorf("sandbox %s: %w (the call took effect)", op, payment.ErrUnknownOutcome)
	}
	return res, err
}

// remembered reports whether an answer is stored under its key: successes,
// declines and rule refusals are; malformed requests (which never start
// executing, as at Stripe) and unavailability are not.
func remembered(err error) bool {
	var de *payment.DeclinedError
	return err == nil || errors.As(err, &de) ||
		errors.Is(err, payment.ErrCaptureExceedsAuthorized) || errors.Is(err, payment.ErrRefundExceedsCaptured) ||
		errors.Is(err, payment.ErrNothingToVoid) || errors.Is(err, payment.ErrAuthorizationVoided) ||
		errors.Is(err, payment.ErrAuthorizationExpired)
}

// openHold returns the hold ref if it can still be captured or voided.
func (s *Sandbox) openHold(ref string, now time.Time) (*hold, error) {
	h, ok := s.holds[ref]
	switch {
	case !ok:
		return nil, fmt.Errorf("sandbox: %w", payment.ErrUnknownProviderRef)
	case h.voided:
		return nil, fmt.Errorf("sandbox: %w", payment.ErrAuthorizationVoided)
	case !now.Before(h.expiresAt):
		return nil, fmt.Errorf("sandbox: %w", payment.ErrAuthorizationExpired)
	}
	return h, nil
}

func checkAmount(amt, of money.Money) error {
	if !amt.IsValid() || !amt.IsPositive() {
		return fmt.Errorf("%w: amount must be positive", errInvalidRequest)
	}
	if !amt.SameCurrency(of) {
		return fmt.Errorf("sandbox: %w", money.ErrCurrencyMismatch)
	}
	return nil
}

func (s *Sandbox) nextRef(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s_%06d", prefix, s.seq)
}

func (s *Sandbox) record(op Op, key, ref, authRef string, h *hold, amt money.Money, now time.Time) {
	s.ledger = append(s.ledger, Entry{Seq: len(s.ledger) + 1, Op: op, Key: key, Ref: ref, AuthRef: authRef,
		PaymentID: h.paymentID, Amount: amt, At: now})
}

// Calls is how many calls carried key, whatever their outcome.
func (s *Sandbox) Calls(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[key]
}

// Ledger returns a copy of every effect so far, in order.
func (s *Sandbox) Ledger() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Entry(nil), s.ledger...)
}

// Effects counts the ledger entries of op for paymentID (all ops if op is
// ""). Two authorizations for one payment ID are a duplicate charge.
func (s *Sandbox) Effects(paymentID string, op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.ledger {
		if e.PaymentID == paymentID && (op == "" || e.Op == op) {
			n++
		}
	}
	return n
}

func mustAdd(a, b money.Money) money.Money {
	r, err := a.Add(b)
	if err != nil {
		panic(fmt.Sprintf("sandbox: %v", err)) // amounts are checked first
	}
	return r
}

func mustSub(a, b money.Money) money.Money {
	r, err := a.Sub(b)
	if err != nil {
		panic(fmt.Sprintf("sandbox: %v", err))
	}
	return r
}
