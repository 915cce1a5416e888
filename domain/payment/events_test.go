package payment

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/livecore/livecore/domain/event"
)

func TestRegisterAndRoundTripEveryEvent(t *testing.T) {
	reg := event.NewRegistry()
	Register(reg)
	all := []event.Event{
		authorized("100.00"), declined("100.00"), captured("c1", "10.00", t1), voided, expired,
		refunded("r1", "5.00", t1), cbOpened("cb1", "5.00"),
		&ChargebackWon{PaymentID: "p1", ChargebackID: "cb1", Amount: usd("5.00"), ResolvedAt: t1},
		&ChargebackLost{PaymentID: "p1", ChargebackID: "cb1", Amount: usd("5.00"), ResolvedAt: t1},
	}
	want := []string{TypeDeclined, TypeExpired, TypeAuthorized, TypeCaptured, TypeChargebackLost,
		TypeChargebackOpened, TypeChargebackWon, TypeRefunded, TypeVoided}
	if diff := cmp.Diff(want, reg.Names()); diff != "" {
		t.Errorf("registered names (-want +got):\n%s", diff)
	}
	for _, e := range all {
		typ, _, data, err := reg.Encode(e)
		if err != nil {
			t.Fatalf("encode %T: %v", e, err)
		}
		got, err := reg.Decode(typ, data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if diff := cmp.Diff(e, got, cmpOpts...); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", typ, diff)
		}
	}
	if got := StreamID("p1"); got != "payment-p1" || event.Category(got) != "payment" {
		t.Errorf("StreamID = %q", got)
	}
}

func TestClosedSetsParseOnlyTheirNames(t *testing.T) {
	for _, s := range []string{"card", "bnpl"} {
		if m, err := ParseMethod(s); err != nil || m.String() != s {
			t.Errorf("ParseMethod(%q) = %v, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "Card", "cash", " card"} {
		if _, err := ParseMethod(s); err == nil {
			t.Errorf("ParseMethod(%q) accepted", s)
		}
		if _, err := ParseDeclineReason(s); err == nil {
			t.Errorf("ParseDeclineReason(%q) accepted", s)
		}
		if _, err := ParseChargebackReason(s); err == nil {
			t.Errorf("ParseChargebackReason(%q) accepted", s)
		}
	}
	if _, err := (Method{}).MarshalText(); err == nil {
		t.Error("the zero Method marshals")
	}
	var m Method
	if err := m.UnmarshalText([]byte("paypal")); err == nil {
		t.Error("unmarshalled an unknown method")
	}
}
