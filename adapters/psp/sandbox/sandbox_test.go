package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func usd(s string) money.Money { return money.MustParse(s, "USD") }

var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b money.Money) bool { return a.Equal(b) }),
	cmp.Comparer(func(a, b payment.ResultStatus) bool { return a == b }),
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newSandbox(t testing.TB) (*sandbox.Sandbox, *clock) {
	t.Helper()
	c := &clock{now: t0}
	return sandbox.New(sandbox.Config{Now: c.Now}), c
}

func token(t testing.TB, s string) payment.Token {
	t.Helper()
	tok, err := payment.ParseToken(s)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func authReq(t testing.TB, key, tok, amount string) payment.AuthorizeRequest {
	return payment.AuthorizeRequest{IdempotencyKey: key, PaymentID: "pay-" + key, Method: payment.MethodCard,
		Token: token(t, tok), Amount: usd(amount)}
}

func TestTestTokens(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		token   string
		err     error
		reason  payment.DeclineReason
		effects int
	}{
		{token: "tok_visa_approve", effects: 1},
		{token: "tok_mastercard_approve", effects: 1},
		{token: "tok_bnpl_approve", effects: 1},
		{token: "tok_decline_do_not_honor", err: payment.ErrDeclined, reason: payment.DeclineDoNotHonor},
		{token: "tok_decline_insufficient_funds", err: payment.ErrDeclined, reason: payment.DeclineInsufficientFunds},
		{token: "tok_decline_expired_card", err: payment.ErrDeclined, reason: payment.DeclineExpiredCard},
		{token: "tok_decline_fraud", err: payment.ErrDeclined, reason: payment.DeclineSuspectedFraud},
		{token: "tok_timeout_approve", err: payment.ErrUnknownOutcome, effects: 1},
		{token: "tok_unavailable", err: payment.ErrProviderUnavailable},
		{token: "tok_no_such_card", err: payment.ErrInvalidToken},
	} {
		t.Run(c.token, func(t *testing.T) {
			s, _ := newSandbox(t)
			res, err := s.Authorize(ctx, authReq(t, "k1", c.token, "50.00"))
			if c.err == nil {
				if err != nil {
					t.Fatalf("error: %v", err)
				}
				want := payment.Result{ProviderRef: res.ProviderRef, Status: payment.ResultAuthorized, Amount: usd("50.00"),
					ExpiresAt: t0.Add(payment.CardAuthorizationValidity)}
				if diff := cmp.Diff(want, res, cmpOpts...); diff != "" || !strings.HasPrefix(res.ProviderRef, "auth_") {
					t.Errorf("result (-want +got):\n%s", diff)
				}
			} else if !errors.Is(err, c.err) {
				t.Fatalf("error = %v, want %v", err, c.err)
			}
			var de *payment.DeclinedError
			if !c.reason.IsZero() && (!errors.As(err, &de) || de.Reason != c.reason || de.ProviderRef == "") {
				t.Errorf("decline %v, want reason %s and a reference", err, c.reason)
			}
			if got := s.Effects("pay-k1", sandbox.OpAuthorize); got != c.effects {
				t.Errorf("%d authorizations in the ledger, want %d", got, c.effects)
			}
		})
	}
}

func TestTokenize(t *testing.T) {
	for number, want := range map[string]string{
		"4242424242424242":    "tok_visa_approve",
		"4242 4242 4242 4242": "tok_visa_approve",
		"5555-5555-5555-4444": "tok_mastercard_approve",
		"4000000000000002":    "tok_decline_do_not_honor",
		"4000000000009995":    "tok_decline_insufficient_funds",
		"4000000000000069":    "tok_decline_expired_card",
		"4100000000000019":    "tok_decline_fraud",
		"4000000000000127":    "tok_timeout_approve",
		"4000000000000135":    "tok_unavailable",
	} {
		tok, err := sandbox.Tokenize(number)
		if err != nil || tok.String() != want {
			t.Errorf("Tokenize(%s) = %v, %v; want %s", number, tok, err, want)
		}
	}
	for _, number := range []string{"4242424242424241", "4111111111111111", "42424242", "4242x424242424242", ""} {
		_, err := sandbox.Tokenize(number)
		if !errors.Is(err, payment.ErrInvalidToken) {
			t.Errorf("Tokenize(%q) = %v, want ErrInvalidToken", number, err)
		}
		if number != "" && strings.Contains(err.Error(), number) {
			t.Errorf("the error echoes the number: %v", err)
		}
	}
}

func TestRetryReturnsTheFirstAnswer(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	first, err := s.Authorize(ctx, authReq(t, "a1", "tok_visa_approve", "80.00"))
	if err != nil {
		t.Fatal(err)
	}
	const retries = 5
	for range retries {
		again, err := s.Authorize(ctx, authReq(t, "a1", "tok_visa_approve", "80.00"))
		if err != nil || !cmp.Equal(first, again, cmpOpts...) {
			t.Fatalf("retry = %v, %v; want %v", again, err, first)
		}
	}
	_, declined := s.Authorize(ctx, authReq(t, "d1", "tok_decline_insufficient_funds", "80.00"))
	_, again := s.Authorize(ctx, authReq(t, "d1", "tok_decline_insufficient_funds", "80.00"))
	var d1, d2 *payment.DeclinedError
	if !errors.As(declined, &d1) || !errors.As(again, &d2) || *d1 != *d2 {
		t.Errorf("declines %v and %v differ", declined, again)
	}
	capture := payment.CaptureRequest{IdempotencyKey: "c1", ProviderRef: first.ProviderRef, Amount: usd("30.00")}
	c1, err1 := s.Capture(ctx, capture)
	c2, err2 := s.Capture(ctx, capture)
	if err1 != nil || err2 != nil || !cmp.Equal(c1, c2, cmpOpts...) {
		t.Errorf("capture retry: %v %v / %v %v", c1, err1, c2, err2)
	}
	over := payment.CaptureRequest{IdempotencyKey: "c2", ProviderRef: first.ProviderRef, Amount: usd("60.00")}
	_, e1 := s.Capture(ctx, over)
	_, e2 := s.Capture(ctx, over)
	if !errors.Is(e1, payment.ErrCaptureExceedsAuthorized) || !errors.Is(e2, payment.ErrCaptureExceedsAuthorized) {
		t.Errorf("refusal not replayed: %v / %v", e1, e2)
	}
	if n := s.Calls("a1"); n != retries+1 {
		t.Errorf("Calls(a1) = %d, want %d", n, retries+1)
	}
	auths, captures := s.Effects("pay-a1", sandbox.OpAuthorize), s.Effects("pay-a1", sandbox.OpCapture)
	if auths != 1 || captures != 1 {
		t.Errorf("%d authorizations, %d captures; want 1 and 1", auths, captures)
	}
	t.Logf("%d calls with one key: 1 authorization; 2 captures with one key: 1 capture; declines and refusals replayed", retries+1)
}

func TestSameKeyDifferentRequest(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	res, err := s.Authorize(ctx, authReq(t, "k", "tok_visa_approve", "10.00"))
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"other amount": func() error { _, err := s.Authorize(ctx, authReq(t, "k", "tok_visa_approve", "11.00")); return err },
		"other token": func() error {
			_, err := s.Authorize(ctx, authReq(t, "k", "tok_mastercard_approve", "10.00"))
			return err
		},
		"other operation": func() error {
			_, err := s.Capture(ctx, payment.CaptureRequest{IdempotencyKey: "k", ProviderRef: res.ProviderRef, Amount: usd("10.00")})
			return err
		},
	} {
		if err := call(); !errors.Is(err, payment.ErrIdempotencyKeyReused) {
			t.Errorf("%s: %v, want ErrIdempotencyKeyReused", name, err)
		}
	}
	if got := len(s.Ledger()); got != 1 {
		t.Errorf("%d ledger entries, want 1", got)
	}
}

func TestTimeoutThenRetryYieldsOneAuthorization(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	req := authReq(t, "order-7/authorize", "tok_timeout_approve", "120.00")
	_, err := s.Authorize(ctx, req)
	if !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("first call: %v, want ErrUnknownOutcome", err)
	}
	if got := s.Effects(req.PaymentID, sandbox.OpAuthorize); got != 1 {
		t.Fatalf("the timed-out call placed %d holds, want 1 (it did happen)", got)
	}
	res, err := s.Authorize(ctx, req)
	if err != nil || res.Status != payment.ResultAuthorized || !res.Amount.Equal(usd("120.00")) {
		t.Fatalf("retry: %v, %v", res, err)
	}
	if _, err := s.Capture(ctx, payment.CaptureRequest{IdempotencyKey: "order-7/capture", ProviderRef: res.ProviderRef, Amount: usd("120.00")}); err != nil {
		t.Fatalf("capture on the recovered reference: %v", err)
	}
	if got := s.Effects(req.PaymentID, sandbox.OpAuthorize); got != 1 {
		t.Errorf("%d authorizations after the retry, want 1", got)
	}
	t.Logf("timeout then retry with the same key: %d call(s), 1 authorization, 0 duplicates", s.Calls(req.IdempotencyKey))
}

func TestDropResponseOnCapture(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: t0}
	s := sandbox.New(sandbox.Config{Now: c.Now, DropResponse: func(op sandbox.Op, key string) bool { return op == sandbox.OpCapture }})
	auth, err := s.Authorize(ctx, authReq(t, "a", "tok_visa_approve", "40.00"))
	if err != nil {
		t.Fatal(err)
	}
	req := payment.CaptureRequest{IdempotencyKey: "cap-1", ProviderRef: auth.ProviderRef, Amount: usd("40.00")}
	if _, err := s.Capture(ctx, req); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("first capture: %v", err)
	}
	res, err := s.Capture(ctx, req)
	if err != nil || res.Status != payment.ResultCaptured {
		t.Fatalf("retry: %v, %v", res, err)
	}
	if got := s.Effects("pay-a", sandbox.OpCapture); got != 1 {
		t.Errorf("%d captures, want 1", got)
	}
}

func TestUnavailableDoesNothingAndIsNotRemembered(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	for range 3 {
		if _, err := s.Authorize(ctx, authReq(t, "u", "tok_unavailable", "10.00")); !errors.Is(err, payment.ErrProviderUnavailable) {
			t.Fatalf("err = %v", err)
		}
	}
	if len(s.Ledger()) != 0 || s.Calls("u") != 3 {
		t.Errorf("ledger %v, calls %d", s.Ledger(), s.Calls("u"))
	}
	// Nothing was remembered, so the key is free for the real request.
	if _, err := s.Authorize(ctx, authReq(t, "u", "tok_visa_approve", "10.00")); err != nil {
		t.Errorf("after unavailability: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Authorize(cancelled, authReq(t, "x", "tok_visa_approve", "10.00")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if _, err := s.Authorize(ctx, authReq(t, "", "tok_visa_approve", "10.00")); !errors.Is(err, payment.ErrInvalidCommand) {
		t.Errorf("no key: %v", err)
	}
}

func TestAmountRules(t *testing.T) {
	ctx := context.Background()
	s, c := newSandbox(t)
	auth, err := s.Authorize(ctx, authReq(t, "a", "tok_visa_approve", "100.00"))
	if err != nil {
		t.Fatal(err)
	}
	ref := auth.ProviderRef
	n := 0
	key := func() string { n++; return fmt.Sprint("k", n) }
	capture := func(amount string) error {
		_, err := s.Capture(ctx, payment.CaptureRequest{IdempotencyKey: key(), ProviderRef: ref, Amount: usd(amount)})
		return err
	}
	refund := func(amount string) error {
		_, err := s.Refund(ctx, payment.RefundRequest{IdempotencyKey: key(), ProviderRef: ref, Amount: usd(amount)})
		return err
	}
	void := func(ref string) (payment.Result, error) {
		return s.Void(ctx, payment.VoidRequest{IdempotencyKey: key(), ProviderRef: ref})
	}
	steps := []struct {
		name string
		err  error
		do   func() error
	}{
		{"refund before any capture", payment.ErrRefundExceedsCaptured, func() error { return refund("0.01") }},
		{"partial capture", nil, func() error { return capture("30.00") }},
		{"second partial capture", nil, func() error { return capture("50.00") }},
		{"capture above the rest", payment.ErrCaptureExceedsAuthorized, func() error { return capture("20.01") }},
		{"refund part", nil, func() error { return refund("60.00") }},
		{"refund above the rest captured", payment.ErrRefundExceedsCaptured, func() error { return refund("20.01") }},
		{"capture in another currency", money.ErrCurrencyMismatch, func() error {
			_, err := s.Capture(ctx, payment.CaptureRequest{IdempotencyKey: key(), ProviderRef: ref, Amount: money.MustParse("1", "JPY")})
			return err
		}},
		{"unknown reference", payment.ErrUnknownProviderRef, func() error { _, err := void("auth_999999"); return err }},
		{"void the uncaptured rest", nil, func() error {
			res, err := void(ref)
			if err == nil && !res.Amount.Equal(usd("20.00")) {
				return fmt.Errorf("released %s, want 20.00", res.Amount)
			}
			return err
		}},
		{"capture after void", payment.ErrAuthorizationVoided, func() error { return capture("1.00") }},
		{"void after void", payment.ErrAuthorizationVoided, func() error { _, err := void(ref); return err }},
		{"refund after void", nil, func() error { return refund("20.00") }},
	}
	for _, st := range steps {
		if err := st.do(); st.err == nil && err != nil || st.err != nil && !errors.Is(err, st.err) {
			t.Errorf("%s: %v, want %v", st.name, err, st.err)
		}
	}
	// Fully captured: nothing to void. Expired: nothing to capture.
	full, _ := s.Authorize(ctx, authReq(t, "b", "tok_visa_approve", "10.00"))
	if _, err := s.Capture(ctx, payment.CaptureRequest{IdempotencyKey: key(), ProviderRef: full.ProviderRef, Amount: usd("10.00")}); err != nil {
		t.Fatal(err)
	}
	if _, err := void(full.ProviderRef); !errors.Is(err, payment.ErrNothingToVoid) {
		t.Errorf("void after full capture: %v", err)
	}
	late, _ := s.Authorize(ctx, authReq(t, "c", "tok_visa_approve", "10.00"))
	c.Advance(payment.CardAuthorizationValidity)
	if _, err := s.Capture(ctx, payment.CaptureRequest{IdempotencyKey: key(), ProviderRef: late.ProviderRef, Amount: usd("1.00")}); !errors.Is(err, payment.ErrAuthorizationExpired) {
		t.Errorf("capture at expiry: %v", err)
	}
	var captured, refunded money.Money = usd("0"), usd("0")
	for _, e := range s.Ledger() {
		if e.AuthRef != ref {
			continue
		}
		switch e.Op {
		case sandbox.OpCapture:
			captured, _ = captured.Add(e.Amount)
		case sandbox.OpRefund:
			refunded, _ = refunded.Add(e.Amount)
		}
	}
	if !captured.Equal(usd("80.00")) || !refunded.Equal(usd("80.00")) {
		t.Errorf("ledger: captured %s, refunded %s; want 80.00 and 80.00", captured, refunded)
	}
}

func TestConcurrentDuplicatesHaveOneEffect(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	const goroutines = 64
	results := make([]payment.Result, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			results[i], errs[i] = s.Authorize(ctx, authReq(t, "dup", "tok_visa_approve", "99.00"))
		})
	}
	wg.Wait()
	for i := range goroutines {
		if errs[i] != nil || !cmp.Equal(results[0], results[i], cmpOpts...) {
			t.Fatalf("call %d: %v, %v; call 0: %v", i, results[i], errs[i], results[0])
		}
	}
	// Concurrent captures with distinct keys never exceed the hold.
	var mu sync.Mutex
	captured, accepted := usd("0"), 0
	for i := range goroutines {
		wg.Go(func() {
			res, err := s.Capture(ctx, payment.CaptureRequest{IdempotencyKey: fmt.Sprint("cap-", i%16), ProviderRef: results[0].ProviderRef, Amount: usd("9.00")})
			if err == nil {
				mu.Lock()
				defer mu.Unlock()
				if res.ProviderRef != "" {
					accepted++
				}
			}
		})
	}
	wg.Wait()
	for _, e := range s.Ledger() {
		if e.Op == sandbox.OpCapture {
			captured, _ = captured.Add(e.Amount)
		}
	}
	auths, caps := s.Effects("pay-dup", sandbox.OpAuthorize), s.Effects("pay-dup", sandbox.OpCapture)
	if auths != 1 || caps != 11 || !captured.Equal(usd("99.00")) {
		t.Errorf("%d authorizations, %d captures totalling %s; want 1, 11, 99.00", auths, caps, captured)
	}
	if accepted != caps*goroutines/16 {
		t.Errorf("%d successful answers, want %d (each key's first answer, replayed)", accepted, caps*goroutines/16)
	}
	t.Logf("%d concurrent authorizations with one key: %d hold, identical answers; %d concurrent 9.00 captures over 16 keys: %d captures, %s of 99.00 captured, %d successful answers (all replays of those %d)",
		goroutines, auths, goroutines, caps, captured, accepted, caps)
}
