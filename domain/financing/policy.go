package financing

import (
	"fmt"
	"time"

	"github.com/livecore/livecore/domain/money"
)

// Servicing rules. They are part of the contract with the customer; changing
// one changes new decisions only (history keeps what was agreed, because the
// schedule and fees are recorded in events).
const (
	// PayIn4Interval is the time between pay-in-4 installments.
	PayIn4Interval = 14 * 24 * time.Hour
	// GraceDays: a late fee may be assessed on an installment only once it
	// is more than GraceDays whole days past due.
	GraceDays = 10
	// LateFeeInstallmentCapPercent caps one late fee at this share of the
	// installment (principal + interest), rounded down to the minor unit.
	LateFeeInstallmentCapPercent = 25
	// LateFeePlanCapPercent caps all late fees of a plan at this share of
	// the financed amount, rounded down.
	LateFeePlanCapPercent = 25
	// DefaultAfterDays: a plan may be defaulted once its oldest unpaid
	// installment is more than this many whole days past due (bucket 90+).
	DefaultAfterDays = 90
)

// CurrencyTerms are the credit policy's per-currency amounts.
type CurrencyTerms struct {
	// PayIn4Min and PayIn4Max bound the amount of a pay-in-4 plan.
	PayIn4Min, PayIn4Max money.Money
	// MonthlyMin and MonthlyMax bound the amount of a monthly plan.
	MonthlyMin, MonthlyMax money.Money
	// LateFee is the fixed late fee, before the caps.
	LateFee money.Money
}

var currencyTerms = map[string]CurrencyTerms{
	"USD": termsOf("USD", "35.00", "1000.00", "100.00", "10000.00", "7.00"),
	"EUR": termsOf("EUR", "35.00", "1000.00", "100.00", "10000.00", "7.00"),
	"GBP": termsOf("GBP", "30.00", "800.00", "80.00", "8000.00", "6.00"),
	"JPY": termsOf("JPY", "3000", "150000", "10000", "1500000", "1000"),
	"BHD": termsOf("BHD", "15.000", "400.000", "40.000", "4000.000", "3.000"),
}

func termsOf(code, p4min, p4max, mmin, mmax, fee string) CurrencyTerms {
	return CurrencyTerms{
		PayIn4Min: money.MustParse(p4min, code), PayIn4Max: money.MustParse(p4max, code),
		MonthlyMin: money.MustParse(mmin, code), MonthlyMax: money.MustParse(mmax, code),
		LateFee: money.MustParse(fee, code),
	}
}

// TermsFor returns the policy's amounts for c; false if plans are not
// offered in c.
func TermsFor(c money.Currency) (CurrencyTerms, bool) {
	t, ok := currencyTerms[c.Code()]
	return t, ok
}

// Application is a request for credit with the inputs the decision uses.
// The caller looks up CurrentExposure, ExposureLimit and OpenDelinquencies
// (from the customer's other plans and the credit line); the decision
// records them so it can be explained later.
type Application struct {
	PlanID, CustomerID, OrderID string
	Amount                      money.Money
	Terms                       Terms
	// CurrentExposure is what the customer owes on other plans, in
	// Amount's currency.
	CurrentExposure money.Money
	// ExposureLimit is the customer's credit line, in Amount's currency.
	ExposureLimit money.Money
	// OpenDelinquencies counts the customer's plans now past due.
	OpenDelinquencies int
}

func (a Application) validate() error {
	switch {
	case a.PlanID == "" || a.CustomerID == "" || a.OrderID == "":
		return fmt.Errorf("%w: plan, customer and order IDs are required", ErrInvalidCommand)
	case !a.Amount.IsValid() || !a.Amount.IsPositive():
		return fmt.Errorf("%w: amount %v must be positive", ErrInvalidCommand, a.Amount)
	case !a.CurrentExposure.IsValid() || a.CurrentExposure.IsNegative() ||
		!a.ExposureLimit.IsValid() || a.ExposureLimit.IsNegative():
		return fmt.Errorf("%w: exposure and limit must be non-negative amounts", ErrInvalidCommand)
	case !a.Amount.SameCurrency(a.CurrentExposure) || !a.Amount.SameCurrency(a.ExposureLimit):
		return fmt.Errorf("%w: exposure and limit must be in %s", money.ErrCurrencyMismatch, a.Amount.Currency())
	case a.OpenDelinquencies < 0:
		return fmt.Errorf("%w: negative open delinquencies", ErrInvalidCommand)
	}
	return a.Terms.validate()
}

// Evaluate applies the credit policy to a valid application and returns
// every reason to decline it, in a fixed order; none means approve:
//
//   - ReasonCurrencyNotSupported: no CurrencyTerms for the currency;
//   - ReasonAmountBelowMinimum / ReasonAmountAboveMaximum: outside the
//     currency's bounds for the plan kind (pay-in-4 or monthly);
//   - ReasonExposureLimitExceeded: CurrentExposure + Amount > ExposureLimit;
//   - ReasonOpenDelinquency: OpenDelinquencies > 0.
func Evaluate(a Application) []ReasonCode {
	var reasons []ReasonCode
	if t, ok := TermsFor(a.Amount.Currency()); !ok {
		reasons = append(reasons, ReasonCurrencyNotSupported)
	} else {
		lo, hi := t.MonthlyMin, t.MonthlyMax
		if a.Terms.Kind == PayIn4 {
			lo, hi = t.PayIn4Min, t.PayIn4Max
		}
		if a.Amount.LessThan(lo) {
			reasons = append(reasons, ReasonAmountBelowMinimum)
		}
		if a.Amount.GreaterThan(hi) {
			reasons = append(reasons, ReasonAmountAboveMaximum)
		}
	}
	if total, err := a.CurrentExposure.Add(a.Amount); err != nil || total.GreaterThan(a.ExposureLimit) {
		reasons = append(reasons, ReasonExposureLimitExceeded)
	}
	if a.OpenDelinquencies > 0 {
		reasons = append(reasons, ReasonOpenDelinquency)
	}
	return reasons
}
