package financing

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/payment"
)

func TestRegisterAndRoundTripEveryEvent(t *testing.T) {
	reg := event.NewRegistry()
	Register(reg)
	m12 := approved(t, "1000.00", Monthly12, 1200)
	all := with(m12,
		decidedEvent("34.99", PayIn4, 0, ReasonAmountBelowMinimum, ReasonOpenDelinquency),
		&InstallmentCollected{PlanID: "pl1", CollectionID: "c1", Amount: usd("50.00"), Allocations: []Allocation{alloc(1, "40.00", "10.00", "0")}, CollectedAt: t0},
		&CollectionFailed{PlanID: "pl1", CollectionID: "c2", Amount: usd("50.00"), Reason: payment.DeclineDoNotHonor, FailedAt: t0},
		&LateFeeAssessed{PlanID: "pl1", Installment: 1, Fee: usd("7.00"), AssessedAt: t0},
		&PaidOff{PlanID: "pl1", CollectionID: "po", Amount: usd("10.00"), Allocations: []Allocation{alloc(2, "10.00", "0", "0")},
			Waived: []Allocation{alloc(3, "0", "1.00", "0")}, PaidOffAt: t0},
		&Refunded{PlanID: "pl1", RefundID: "r1", Amount: usd("5.00"), Reductions: []Allocation{alloc(4, "5.00", "0.01", "0")}, ReturnedToCustomer: usd("0"), RefundedAt: t0},
		&Defaulted{PlanID: "pl1", DaysPastDue: 91, Outstanding: usd("10.00"), DefaultedAt: t0},
		&ChargedOff{PlanID: "pl1", WrittenOff: usd("10.00"), Allocations: []Allocation{alloc(5, "10.00", "0", "0")}, ChargedOffAt: t0},
	)
	if got := len(reg.Names()); got != 9 {
		t.Errorf("%d registered names, want 9: %v", got, reg.Names())
	}
	seen := map[string]bool{}
	for _, e := range all {
		typ, _, data, err := reg.Encode(e)
		if err != nil {
			t.Fatalf("encode %T: %v", e, err)
		}
		seen[typ] = true
		got, err := reg.Decode(typ, data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if diff := cmp.Diff(e, got, cmpOpts...); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", typ, diff)
		}
	}
	for _, name := range reg.Names() {
		if !seen[name] {
			t.Errorf("%s not exercised", name)
		}
	}
	if got := StreamID("pl1"); got != "plan-pl1" || event.Category(got) != "plan" {
		t.Errorf("StreamID = %q", got)
	}
}

func TestAPRJSONIsBasisPoints(t *testing.T) {
	var a APR
	for _, bad := range []string{"-1", "3601", "12.5", `"1200"`, "1e3"} {
		if err := a.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("APR accepted %s", bad)
		}
	}
	if err := a.UnmarshalJSON([]byte("1999")); err != nil || a.BasisPoints() != 1999 || a.String() != "19.99%" {
		t.Errorf("APR 1999: %v %v", a, err)
	}
	if b, _ := MustAPR(3600).MarshalJSON(); string(b) != "3600" {
		t.Errorf("marshal: %s", b)
	}
}

func TestClosedSetsParseOnlyTheirNames(t *testing.T) {
	for _, k := range kinds {
		if got, err := ParseKind(k.String()); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k, got, err)
		}
	}
	for _, r := range reasonCodes {
		if got, err := ParseReasonCode(r.String()); err != nil || got != r {
			t.Errorf("ParseReasonCode(%q) = %v, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "PAY_IN_4", "monthly_24", "pay-in-4"} {
		if _, err := ParseKind(s); err == nil {
			t.Errorf("ParseKind(%q) accepted", s)
		}
		if _, err := ParseReasonCode(s); err == nil {
			t.Errorf("ParseReasonCode(%q) accepted", s)
		}
	}
	if Monthly6.Installments() != 6 || !Monthly6.IsMonthly() || PayIn4.IsMonthly() {
		t.Error("kind accessors")
	}
}
