package financing

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/livecore/livecore/domain/money"
)

// ScheduledInstallment is one installment as agreed at origination.
type ScheduledInstallment struct {
	Number    int         `json:"number"` // 1-based
	DueAt     time.Time   `json:"due_at"`
	Principal money.Money `json:"principal"`
	Interest  money.Money `json:"interest"`
}

// ratePrecision is the number of decimal places kept in rate arithmetic
// before the final rounding to minor units. It is far more than any
// currency's exponent needs: b·APR/12 has denominator 3·10^k, so a quotient
// kept to this many places cannot be mistaken for a rounding tie.
const ratePrecision = 40

// Schedule returns the installments of a plan financing financed on terms,
// originated at start:
//
//   - pay-in-4: financed split in four (money.Split: parts differ by at
//     most one minor unit, the earlier ones carry the extra units), due at
//     start (checkout) and then every PayIn4Interval; no interest.
//   - monthly at 0% APR: financed split in n the same way, due one, two, ...
//     n months after start.
//   - monthly at an APR: standard amortization with r = APR/12. The level
//     payment P·r/(1−(1+r)^−n) is computed in decimal to ratePrecision
//     places and rounded half-even to minor units. Each month's interest is
//     the outstanding balance × r rounded half-even; its principal is the
//     payment minus that interest (never more than the balance). The last
//     installment's principal is the whole remaining balance, so it absorbs
//     every rounding difference.
//
// Monthly due dates keep the day of month of start, or the month's last day
// when it has fewer days (Jan 31 → Feb 28). The principal parts always sum
// to financed exactly. financed must be positive.
func Schedule(financed money.Money, terms Terms, start time.Time) ([]ScheduledInstallment, error) {
	if !financed.IsValid() || !financed.IsPositive() {
		return nil, fmt.Errorf("%w: financed amount %v must be positive", ErrInvalidCommand, financed)
	}
	if err := terms.validate(); err != nil {
		return nil, err
	}
	start = start.UTC()
	n := terms.Kind.Installments()
	zero := money.Zero(financed.Currency())
	out := make([]ScheduledInstallment, n)
	if terms.APR.bp == 0 {
		parts, err := financed.Split(n)
		if err != nil {
			return nil, fmt.Errorf("schedule: %w", err)
		}
		for i := range out {
			due := addMonths(start, i+1)
			if terms.Kind == PayIn4 {
				due = start.Add(time.Duration(i) * PayIn4Interval)
			}
			out[i] = ScheduledInstallment{Number: i + 1, DueAt: due, Principal: parts[i], Interest: zero}
		}
		return out, nil
	}
	exp := financed.Currency().Exponent()
	r := decimal.New(int64(terms.APR.bp), 0).DivRound(decimal.New(120000, 0), ratePrecision)
	payment := levelPayment(financed.Amount(), r, n).RoundBank(exp)
	balance := financed.Amount()
	for i := range out {
		interest := monthlyInterest(balance, terms.APR).RoundBank(exp)
		principal := payment.Sub(interest)
		if i == n-1 || principal.GreaterThan(balance) {
			principal = balance
		}
		if principal.IsNegative() { // unreachable: payment >= interest (see above)
			principal = decimal.Zero
		}
		balance = balance.Sub(principal)
		p, err1 := money.New(principal, financed.Currency())
		in, err2 := money.New(interest, financed.Currency())
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("schedule: %w", firstErr(err1, err2))
		}
		out[i] = ScheduledInstallment{Number: i + 1, DueAt: addMonths(start, i+1), Principal: p, Interest: in}
	}
	return out, nil
}

// levelPayment is P·r·(1+r)^n / ((1+r)^n − 1), to ratePrecision places.
func levelPayment(p, r decimal.Decimal, n int) decimal.Decimal {
	f := decimal.NewFromInt(1)
	onePlusR := f.Add(r)
	for range n {
		f = f.Mul(onePlusR).Round(ratePrecision)
	}
	return p.Mul(r).Mul(f).DivRound(f.Sub(decimal.NewFromInt(1)), ratePrecision)
}

// monthlyInterest is b × APR/12 to ratePrecision places. It multiplies
// before dividing, so an exact tie (b·bp/120000 = x.xx5) stays exact and
// half-even rounding sees it as a tie.
func monthlyInterest(b decimal.Decimal, apr APR) decimal.Decimal {
	return b.Mul(decimal.New(int64(apr.bp), 0)).DivRound(decimal.New(120000, 0), ratePrecision)
}

// addMonths returns t plus n calendar months, on t's day of month or the
// last day of the target month if that is shorter.
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	if last := first.AddDate(0, 1, -1).Day(); d > last {
		d = last
	}
	return time.Date(first.Year(), first.Month(), d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
