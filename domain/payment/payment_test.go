package payment

import (
	"errors"
	"testing"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
)

func authorization(amount string) Authorization {
	return Authorization{PaymentID: "p1", OrderID: "o1", Method: MethodCard, Amount: usd(amount), ProviderRef: "auth_1"}
}

func authorized(amount string) *Authorized {
	return &Authorized{PaymentID: "p1", OrderID: "o1", Method: MethodCard, Amount: usd(amount), ProviderRef: "auth_1",
		AuthorizedAt: t0, ExpiresAt: t0.Add(CardAuthorizationValidity)}
}

func declined(amount string) *Declined {
	return &Declined{PaymentID: "p1", OrderID: "o1", Method: MethodCard, Amount: usd(amount), Reason: DeclineDoNotHonor, DeclinedAt: t0}
}

func captured(id, amount string, at time.Time) *Captured {
	return &Captured{PaymentID: "p1", CaptureID: id, Amount: usd(amount), CapturedAt: at}
}

func refunded(id, amount string, at time.Time) *Refunded {
	return &Refunded{PaymentID: "p1", RefundID: id, Amount: usd(amount), RefundedAt: at}
}

func cbOpened(id, amount string) *ChargebackOpened {
	return &ChargebackOpened{PaymentID: "p1", ChargebackID: id, Amount: usd(amount), Reason: ChargebackFraud, OpenedAt: t1}
}

var (
	t1      = t0.Add(24 * time.Hour)
	expiry  = t0.Add(CardAuthorizationValidity)
	voided  = &Voided{PaymentID: "p1", Released: usd("100.00"), VoidedAt: t1}
	expired = &Expired{PaymentID: "p1", Released: usd("100.00"), ExpiredAt: expiry}
)

func events(es ...event.Event) []event.Event { return es }

// with returns base followed by more, never sharing base's array.
func with(base []event.Event, more ...event.Event) []event.Event {
	return append(append([]event.Event{}, base...), more...)
}

func TestAuthorize(t *testing.T) {
	bnpl := authorization("100.00")
	bnpl.Method = MethodBNPL
	noRef := authorization("100.00")
	noRef.ProviderRef = ""
	noMethod := authorization("100.00")
	noMethod.Method = Method{}
	noOrder := authorization("100.00")
	noOrder.OrderID = ""
	zeroMoney := authorization("100.00")
	zeroMoney.Amount = money.Money{}
	runCases(t, []testCase{
		{name: "card hold expires in 7 days",
			when: func(p *Payment) ([]event.Event, error) { return p.Authorize(authorization("100.00"), t0) },
			then: events(authorized("100.00"))},
		{name: "bnpl hold expires in 28 days",
			when: func(p *Payment) ([]event.Event, error) { return p.Authorize(bnpl, t0) },
			then: events(&Authorized{PaymentID: "p1", OrderID: "o1", Method: MethodBNPL, Amount: usd("100.00"),
				ProviderRef: "auth_1", AuthorizedAt: t0, ExpiresAt: t0.Add(28 * 24 * time.Hour)})},
		{name: "time is stored in UTC",
			when: func(p *Payment) ([]event.Event, error) {
				return p.Authorize(authorization("100.00"), t0.In(time.FixedZone("X", 3600)))
			},
			then: events(authorized("100.00"))},
		{name: "retry with the same data is a no-op", given: events(authorized("100.00")),
			when: func(p *Payment) ([]event.Event, error) { return p.Authorize(authorization("100.00"), t1) }},
		{name: "other amount on an authorized payment", given: events(authorized("100.00")),
			when: func(p *Payment) ([]event.Event, error) { return p.Authorize(authorization("90.00"), t1) },
			err:  ErrAlreadyDecided},
		{name: "after a decline", given: events(declined("100.00")),
			when: func(p *Payment) ([]event.Event, error) { return p.Authorize(authorization("100.00"), t1) },
			err:  ErrAlreadyDecided},
		{name: "zero amount",
			when: func(p *Payment) ([]event.Event, error) { return p.Authorize(authorization("0.00"), t0) },
			err:  ErrInvalidCommand},
		{name: "negative amount",
			when: func(p *Payment) ([]event.Event, error) { return p.Authorize(authorization("-1.00"), t0) },
			err:  ErrInvalidCommand},
		{name: "zero money",
			when: func(p *Payment) ([]event.Event, error) { return p.Authorize(zeroMoney, t0) },
			err:  ErrInvalidCommand},
		{name: "no provider reference",
			when: func(p *Payment) ([]event.Event, error) { return p.Authorize(noRef, t0) },
			err:  ErrInvalidCommand},
		{name: "no method",
			when: func(p *Payment) ([]event.Event, error) { return p.Authorize(noMethod, t0) },
			err:  ErrInvalidCommand},
		{name: "no order",
			when: func(p *Payment) ([]event.Event, error) { return p.Authorize(noOrder, t0) },
			err:  ErrInvalidCommand},
	})
}

func TestDecline(t *testing.T) {
	noRef := authorization("100.00")
	noRef.ProviderRef = ""
	runCases(t, []testCase{
		{name: "new payment",
			when: func(p *Payment) ([]event.Event, error) { return p.Decline(noRef, DeclineDoNotHonor, t0) },
			then: events(declined("100.00"))},
		{name: "retry with the same data is a no-op", given: events(declined("100.00")),
			when: func(p *Payment) ([]event.Event, error) { return p.Decline(noRef, DeclineDoNotHonor, t1) }},
		{name: "other reason on a declined payment", given: events(declined("100.00")),
			when: func(p *Payment) ([]event.Event, error) { return p.Decline(noRef, DeclineInsufficientFunds, t1) },
			err:  ErrAlreadyDecided},
		{name: "after an authorization", given: events(authorized("100.00")),
			when: func(p *Payment) ([]event.Event, error) { return p.Decline(noRef, DeclineDoNotHonor, t1) },
			err:  ErrAlreadyDecided},
		{name: "no reason",
			when: func(p *Payment) ([]event.Event, error) { return p.Decline(noRef, DeclineReason{}, t0) },
			err:  ErrInvalidCommand},
	})
}

func TestCapture(t *testing.T) {
	capture := func(id, amount string, at time.Time) func(p *Payment) ([]event.Event, error) {
		return func(p *Payment) ([]event.Event, error) { return p.Capture(id, usd(amount), at) }
	}
	runCases(t, []testCase{
		{name: "whole amount", given: events(authorized("100.00")),
			when: capture("c1", "100.00", t1), then: events(captured("c1", "100.00", t1))},
		{name: "partial", given: events(authorized("100.00")),
			when: capture("c1", "40.00", t1), then: events(captured("c1", "40.00", t1))},
		{name: "second partial up to the rest", given: events(authorized("100.00"), captured("c1", "40.00", t1)),
			when: capture("c2", "60.00", t1), then: events(captured("c2", "60.00", t1))},
		{name: "second partial above the rest", given: events(authorized("100.00"), captured("c1", "40.00", t1)),
			when: capture("c2", "60.01", t1), err: ErrCaptureExceedsAuthorized},
		{name: "above authorized", given: events(authorized("100.00")),
			when: capture("c1", "100.01", t1), err: ErrCaptureExceedsAuthorized},
		{name: "after a full capture", given: events(authorized("100.00"), captured("c1", "100.00", t1)),
			when: capture("c2", "0.01", t1), err: ErrCaptureExceedsAuthorized},
		{name: "retry of a capture is a no-op", given: events(authorized("100.00"), captured("c1", "40.00", t1)),
			when: capture("c1", "40.00", t1.Add(time.Hour))},
		{name: "retry of the capture that completed it is a no-op", given: events(authorized("100.00"), captured("c1", "100.00", t1)),
			when: capture("c1", "100.00", t1)},
		{name: "retry after expiry is still a no-op", given: events(authorized("100.00"), captured("c1", "40.00", t1),
			&Expired{PaymentID: "p1", Released: usd("60.00"), ExpiredAt: expiry}),
			when: capture("c1", "40.00", expiry.Add(time.Hour))},
		{name: "capture ID reused with another amount", given: events(authorized("100.00"), captured("c1", "40.00", t1)),
			when: capture("c1", "50.00", t1), err: ErrIDReused},
		{name: "after void", given: events(authorized("100.00"), voided),
			when: capture("c1", "10.00", t1), err: ErrAuthorizationVoided},
		{name: "after recorded expiry", given: events(authorized("100.00"), expired),
			when: capture("c1", "10.00", expiry), err: ErrAuthorizationExpired},
		{name: "at the expiry instant without an expiry event", given: events(authorized("100.00")),
			when: capture("c1", "10.00", expiry), err: ErrAuthorizationExpired},
		{name: "a nanosecond before expiry", given: events(authorized("100.00")),
			when: capture("c1", "10.00", expiry.Add(-time.Nanosecond)), then: events(captured("c1", "10.00", expiry.Add(-time.Nanosecond)))},
		{name: "new payment", when: capture("c1", "10.00", t1), err: ErrNotAuthorized},
		{name: "declined payment", given: events(declined("100.00")),
			when: capture("c1", "10.00", t1), err: ErrNotAuthorized},
		{name: "zero amount", given: events(authorized("100.00")),
			when: capture("c1", "0.00", t1), err: ErrInvalidCommand},
		{name: "negative amount", given: events(authorized("100.00")),
			when: capture("c1", "-5.00", t1), err: ErrInvalidCommand},
		{name: "other currency", given: events(authorized("100.00")),
			when: func(p *Payment) ([]event.Event, error) { return p.Capture("c1", money.MustParse("10.00", "EUR"), t1) },
			err:  money.ErrCurrencyMismatch},
		{name: "empty capture ID", given: events(authorized("100.00")),
			when: capture("", "10.00", t1), err: ErrInvalidCommand},
	})
}

func TestVoid(t *testing.T) {
	void := func(at time.Time) func(p *Payment) ([]event.Event, error) {
		return func(p *Payment) ([]event.Event, error) { return p.Void(at) }
	}
	runCases(t, []testCase{
		{name: "untouched hold", given: events(authorized("100.00")),
			when: void(t1), then: events(voided)},
		{name: "remainder after a partial capture", given: events(authorized("100.00"), captured("c1", "30.00", t1)),
			when: void(t1), then: events(&Voided{PaymentID: "p1", Released: usd("70.00"), VoidedAt: t1})},
		{name: "void twice is a no-op", given: events(authorized("100.00"), voided), when: void(t1)},
		{name: "fully captured", given: events(authorized("100.00"), captured("c1", "100.00", t1)),
			when: void(t1), err: ErrNothingToVoid},
		{name: "after recorded expiry", given: events(authorized("100.00"), expired),
			when: void(expiry), err: ErrAuthorizationExpired},
		{name: "past expiry without an expiry event", given: events(authorized("100.00")),
			when: void(expiry), err: ErrAuthorizationExpired},
		{name: "new payment", when: void(t1), err: ErrNotAuthorized},
		{name: "declined payment", given: events(declined("100.00")), when: void(t1), err: ErrNotAuthorized},
	})
}

func TestExpire(t *testing.T) {
	expire := func(at time.Time) func(p *Payment) ([]event.Event, error) {
		return func(p *Payment) ([]event.Event, error) { return p.Expire(at) }
	}
	runCases(t, []testCase{
		{name: "at expiry", given: events(authorized("100.00")), when: expire(expiry), then: events(expired)},
		{name: "remainder after a partial capture", given: events(authorized("100.00"), captured("c1", "30.00", t1)),
			when: expire(expiry.Add(time.Hour)),
			then: events(&Expired{PaymentID: "p1", Released: usd("70.00"), ExpiredAt: expiry.Add(time.Hour)})},
		{name: "before expiry", given: events(authorized("100.00")),
			when: expire(expiry.Add(-time.Nanosecond)), err: ErrNotYetExpired},
		{name: "already expired is a no-op", given: events(authorized("100.00"), expired), when: expire(expiry)},
		{name: "voided is a no-op", given: events(authorized("100.00"), voided), when: expire(expiry)},
		{name: "fully captured is a no-op", given: events(authorized("100.00"), captured("c1", "100.00", t1)), when: expire(expiry)},
		{name: "new payment", when: expire(expiry), err: ErrNotAuthorized},
		{name: "declined payment", given: events(declined("100.00")), when: expire(expiry), err: ErrNotAuthorized},
	})
}

func TestRefund(t *testing.T) {
	refund := func(id, amount string) func(p *Payment) ([]event.Event, error) {
		return func(p *Payment) ([]event.Event, error) { return p.Refund(id, usd(amount), t1) }
	}
	capturedAll := events(authorized("100.00"), captured("c1", "100.00", t1))
	runCases(t, []testCase{
		{name: "partial", given: capturedAll, when: refund("r1", "25.00"), then: events(refunded("r1", "25.00", t1))},
		{name: "second partial up to captured", given: with(capturedAll, refunded("r1", "25.00", t1)),
			when: refund("r2", "75.00"), then: events(refunded("r2", "75.00", t1))},
		{name: "second partial above captured", given: with(capturedAll, refunded("r1", "25.00", t1)),
			when: refund("r2", "75.01"), err: ErrRefundExceedsCaptured},
		{name: "above captured but within authorized", given: events(authorized("100.00"), captured("c1", "40.00", t1)),
			when: refund("r1", "40.01"), err: ErrRefundExceedsCaptured},
		{name: "nothing captured", given: events(authorized("100.00")),
			when: refund("r1", "0.01"), err: ErrRefundExceedsCaptured},
		{name: "after void of the remainder", given: events(authorized("100.00"), captured("c1", "30.00", t1), &Voided{PaymentID: "p1", Released: usd("70.00"), VoidedAt: t1}),
			when: refund("r1", "30.00"), then: events(refunded("r1", "30.00", t1))},
		{name: "after expiry of the remainder", given: events(authorized("100.00"), captured("c1", "30.00", t1), &Expired{PaymentID: "p1", Released: usd("70.00"), ExpiredAt: expiry}),
			when: refund("r1", "30.00"), then: events(refunded("r1", "30.00", t1))},
		{name: "retry is a no-op", given: with(capturedAll, refunded("r1", "100.00", t1)), when: refund("r1", "100.00")},
		{name: "refund ID reused with another amount", given: with(capturedAll, refunded("r1", "25.00", t1)),
			when: refund("r1", "26.00"), err: ErrIDReused},
		{name: "disputed amount is not refundable", given: with(capturedAll, cbOpened("cb1", "80.00")),
			when: refund("r1", "20.01"), err: ErrRefundExceedsCaptured},
		{name: "undisputed rest is refundable", given: with(capturedAll, cbOpened("cb1", "80.00")),
			when: refund("r1", "20.00"), then: events(refunded("r1", "20.00", t1))},
		{name: "won chargeback is refundable again", given: with(capturedAll, cbOpened("cb1", "80.00"),
			&ChargebackWon{PaymentID: "p1", ChargebackID: "cb1", Amount: usd("80.00"), ResolvedAt: t1}),
			when: refund("r1", "100.00"), then: events(refunded("r1", "100.00", t1))},
		{name: "lost chargeback is not", given: with(capturedAll, cbOpened("cb1", "80.00"),
			&ChargebackLost{PaymentID: "p1", ChargebackID: "cb1", Amount: usd("80.00"), ResolvedAt: t1}),
			when: refund("r1", "20.01"), err: ErrRefundExceedsCaptured},
		{name: "new payment", when: refund("r1", "1.00"), err: ErrNotAuthorized},
		{name: "declined payment", given: events(declined("100.00")), when: refund("r1", "1.00"), err: ErrNotAuthorized},
		{name: "zero amount", given: capturedAll, when: refund("r1", "0"), err: ErrInvalidCommand},
		{name: "empty refund ID", given: capturedAll, when: refund("", "1.00"), err: ErrInvalidCommand},
		{name: "other currency", given: capturedAll,
			when: func(p *Payment) ([]event.Event, error) { return p.Refund("r1", money.MustParse("1", "JPY"), t1) },
			err:  money.ErrCurrencyMismatch},
	})
}

func TestChargebacks(t *testing.T) {
	open := func(id, amount string) func(p *Payment) ([]event.Event, error) {
		return func(p *Payment) ([]event.Event, error) { return p.OpenChargeback(id, usd(amount), ChargebackFraud, t1) }
	}
	win := func(id string) func(p *Payment) ([]event.Event, error) {
		return func(p *Payment) ([]event.Event, error) { return p.WinChargeback(id, t1) }
	}
	lose := func(id string) func(p *Payment) ([]event.Event, error) {
		return func(p *Payment) ([]event.Event, error) { return p.LoseChargeback(id, t1) }
	}
	capturedAll := events(authorized("100.00"), captured("c1", "100.00", t1))
	withOpen := with(capturedAll, cbOpened("cb1", "60.00"))
	won := &ChargebackWon{PaymentID: "p1", ChargebackID: "cb1", Amount: usd("60.00"), ResolvedAt: t1}
	lost := &ChargebackLost{PaymentID: "p1", ChargebackID: "cb1", Amount: usd("60.00"), ResolvedAt: t1}
	runCases(t, []testCase{
		{name: "open", given: capturedAll, when: open("cb1", "60.00"), then: events(cbOpened("cb1", "60.00"))},
		{name: "open above captured", given: events(authorized("100.00"), captured("c1", "50.00", t1)),
			when: open("cb1", "50.01"), err: ErrChargebackExceedsCaptured},
		{name: "open above what is left after a refund", given: with(capturedAll, refunded("r1", "50.00", t1)),
			when: open("cb1", "50.01"), err: ErrChargebackExceedsCaptured},
		{name: "second dispute above the undisputed rest", given: withOpen,
			when: open("cb2", "40.01"), err: ErrChargebackExceedsCaptured},
		{name: "open retry is a no-op", given: withOpen, when: open("cb1", "60.00")},
		{name: "chargeback ID reused", given: withOpen, when: open("cb1", "10.00"), err: ErrIDReused},
		{name: "open on a new payment", when: open("cb1", "1.00"), err: ErrNotAuthorized},
		{name: "open without a reason", given: capturedAll,
			when: func(p *Payment) ([]event.Event, error) {
				return p.OpenChargeback("cb1", usd("1.00"), ChargebackReason{}, t1)
			},
			err: ErrInvalidCommand},
		{name: "win", given: withOpen, when: win("cb1"), then: events(won)},
		{name: "lose", given: withOpen, when: lose("cb1"), then: events(lost)},
		{name: "win twice is a no-op", given: with(withOpen, won), when: win("cb1")},
		{name: "lose twice is a no-op", given: with(withOpen, lost), when: lose("cb1")},
		{name: "win a lost one", given: with(withOpen, lost), when: win("cb1"), err: ErrChargebackResolved},
		{name: "lose a won one", given: with(withOpen, won), when: lose("cb1"), err: ErrChargebackResolved},
		{name: "win unknown", given: capturedAll, when: win("cb9"), err: ErrUnknownChargeback},
		{name: "lose unknown", given: capturedAll, when: lose("cb9"), err: ErrUnknownChargeback},
	})
}

func TestLimitErrorCarriesAmounts(t *testing.T) {
	p := fold(events(authorized("100.00"), captured("c1", "70.00", t1)))
	_, err := p.Capture("c2", usd("31.00"), t1)
	var le *LimitError
	if !errors.As(err, &le) || !le.Requested.Equal(usd("31.00")) || !le.Available.Equal(usd("30.00")) {
		t.Fatalf("err = %v, want a LimitError with requested 31.00 and available 30.00", err)
	}
}

func TestGetters(t *testing.T) {
	p := fold(events(authorized("100.00"), captured("c1", "70.00", t1), refunded("r1", "20.00", t1),
		cbOpened("cb1", "10.00"), &ChargebackLost{PaymentID: "p1", ChargebackID: "cb1", Amount: usd("10.00")},
		cbOpened("cb2", "5.00"), &Voided{PaymentID: "p1", Released: usd("30.00"), VoidedAt: t1}))
	for _, c := range []struct {
		name      string
		got, want money.Money
	}{
		{"authorized", p.Authorized(), usd("100.00")},
		{"captured", p.Captured(), usd("70.00")},
		{"refunded", p.Refunded(), usd("20.00")},
		{"charged back", p.ChargedBack(), usd("10.00")},
		{"disputed", p.Disputed(), usd("5.00")},
		{"released", p.Released(), usd("30.00")},
		{"refundable", p.Refundable(), usd("35.00")},
		{"capturable", p.Capturable(t1), usd("0.00")},
	} {
		if !c.got.Equal(c.want) {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
	if p.Status() != StatusVoided || p.ID() != "p1" || p.OrderID() != "o1" || p.Method() != MethodCard || p.ProviderRef() != "auth_1" {
		t.Errorf("status %s, id %q, order %q, method %s, ref %q", p.Status(), p.ID(), p.OrderID(), p.Method(), p.ProviderRef())
	}
	var empty Payment
	if empty.Refundable().IsValid() || empty.Capturable(t1).IsValid() {
		t.Errorf("a new payment has no amounts")
	}
}
