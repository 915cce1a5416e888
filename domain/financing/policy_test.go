package financing

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/livecore/livecore/domain/money"
)

func TestEvaluateBoundsPerCurrency(t *testing.T) {
	app := func(amount, code string, kind Kind) Application {
		return Application{PlanID: "p", CustomerID: "c", OrderID: "o", Amount: money.MustParse(amount, code), Terms: Terms{Kind: kind},
			CurrentExposure: money.MustParse("0", code), ExposureLimit: money.MustParse("99999999", code)}
	}
	for _, c := range []struct {
		amount, code string
		kind         Kind
		want         []ReasonCode
	}{
		{"35.00", "USD", PayIn4, nil},
		{"1000.00", "USD", PayIn4, nil},
		{"1000.01", "USD", PayIn4, []ReasonCode{ReasonAmountAboveMaximum}},
		{"100.00", "USD", Monthly3, nil},
		{"10000.00", "USD", Monthly12, nil},
		{"10000.01", "USD", Monthly12, []ReasonCode{ReasonAmountAboveMaximum}},
		{"2999", "JPY", PayIn4, []ReasonCode{ReasonAmountBelowMinimum}},
		{"3000", "JPY", PayIn4, nil},
		{"1500000", "JPY", Monthly6, nil},
		{"14.999", "BHD", PayIn4, []ReasonCode{ReasonAmountBelowMinimum}},
		{"4000.000", "BHD", Monthly12, nil},
		{"29.99", "GBP", PayIn4, []ReasonCode{ReasonAmountBelowMinimum}},
		{"100.00", "EUR", PayIn4, nil},
		{"100.00", "CHF", PayIn4, []ReasonCode{ReasonCurrencyNotSupported}},
	} {
		got := Evaluate(app(c.amount, c.code, c.kind))
		if diff := cmp.Diff(c.want, got, cmpOpts...); diff != "" {
			t.Errorf("%s %s %s (-want +got):\n%s", c.amount, c.code, c.kind, diff)
		}
	}
}
