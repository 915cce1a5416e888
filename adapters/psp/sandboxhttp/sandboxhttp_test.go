package sandboxhttp_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/adapters/psp/sandboxhttp"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

func setup(t *testing.T) (*sandbox.Sandbox, *sandboxhttp.Client) {
	sb := sandbox.New(sandbox.Config{})
	srv := httptest.NewServer(sandboxhttp.Handler(sb))
	t.Cleanup(srv.Close)
	return sb, sandboxhttp.NewClient(srv.URL, nil)
}

func tok(t *testing.T, s string) payment.Token {
	tk, err := payment.ParseToken(s)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestRoundTrip(t *testing.T) {
	sb, c := setup(t)
	ctx := context.Background()
	usd := func(s string) money.Money { return money.MustParse(s, "USD") }
	req := payment.AuthorizeRequest{IdempotencyKey: "k1", PaymentID: "p1", Method: payment.MethodCard, Token: tok(t, "tok_visa_approve"), Amount: usd("10.00")}
	res, err := c.Authorize(ctx, req)
	if err != nil || res.Status != payment.ResultAuthorized || !res.Amount.Equal(usd("10.00")) || res.ExpiresAt.IsZero() {
		t.Fatalf("authorize: %+v %v", res, err)
	}
	again, err := c.Authorize(ctx, req)
	if err != nil || again.ProviderRef != res.ProviderRef || sb.Effects("p1", sandbox.OpAuthorize) != 1 {
		t.Fatalf("replay: %+v %v", again, err)
	}
	_, err = c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: "k2", ProviderRef: res.ProviderRef, Amount: usd("11.00")})
	var le *payment.LimitError
	if !errors.As(err, &le) || !errors.Is(err, payment.ErrCaptureExceedsAuthorized) || !le.Available.Equal(usd("10.00")) {
		t.Fatalf("capture over the hold: %v", err)
	}
	if _, err := c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: "k3", ProviderRef: res.ProviderRef, Amount: usd("4.00")}); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Void(ctx, payment.VoidRequest{IdempotencyKey: "k4", ProviderRef: res.ProviderRef}); err != nil || !r.Amount.Equal(usd("6.00")) {
		t.Fatalf("void: %+v %v", r, err)
	}
	if _, err := c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: "k5", ProviderRef: res.ProviderRef, Amount: usd("1.00")}); !errors.Is(err, payment.ErrAuthorizationVoided) {
		t.Fatalf("capture after void: %v", err)
	}
	if _, err := c.Refund(ctx, payment.RefundRequest{IdempotencyKey: "k6", ProviderRef: "auth_nope", Amount: usd("1.00")}); !errors.Is(err, payment.ErrUnknownProviderRef) {
		t.Fatalf("refund of an unknown hold: %v", err)
	}
}

func TestDeclineAndUnknownOutcome(t *testing.T) {
	sb, c := setup(t)
	ctx := context.Background()
	amt := money.MustParse("5.00", "EUR")
	_, err := c.Authorize(ctx, payment.AuthorizeRequest{IdempotencyKey: "d1", PaymentID: "p1", Method: payment.MethodCard, Token: tok(t, "tok_decline_insufficient_funds"), Amount: amt})
	var de *payment.DeclinedError
	if !errors.As(err, &de) || de.Reason != payment.DeclineInsufficientFunds || de.ProviderRef == "" {
		t.Fatalf("decline: %v", err)
	}
	req := payment.AuthorizeRequest{IdempotencyKey: "u1", PaymentID: "p2", Method: payment.MethodCard, Token: tok(t, "tok_timeout_approve"), Amount: amt}
	if _, err := c.Authorize(ctx, req); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("first answer lost: %v", err)
	}
	if res, err := c.Authorize(ctx, req); err != nil || res.Status != payment.ResultAuthorized {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if n := sb.Effects("p2", sandbox.OpAuthorize); n != 1 {
		t.Fatalf("%d holds", n)
	}
}

func TestUnreachableProviderIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(sandboxhttp.Handler(sandbox.New(sandbox.Config{})))
	url := srv.URL
	srv.Close()
	c := sandboxhttp.NewClient(url, nil)
	_, err := c.Void(context.Background(), payment.VoidRequest{IdempotencyKey: "k", ProviderRef: "auth_1"})
	if !errors.Is(err, payment.ErrProviderUnavailable) {
		t.Fatalf("got %v", err)
	}
}
