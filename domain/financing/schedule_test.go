package financing

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/livecore/livecore/domain/money"
)

// TestScheduleSumsExactly draws seeded random plans (JPY, USD and BHD,
// amounts from one minor unit to 10^13 minor units, every kind, APRs 0-36%)
// and checks each schedule against an independent exact computation in
// big.Rat:
//   - principal parts sum to the financed amount exactly, none negative;
//   - each month's interest is balance × APR/12 rounded half-even;
//   - at an APR, every installment but the last totals the level payment
//     P·r/(1−(1+r)^−n) rounded half-even (unless the balance ran out first),
//     and the last one is within 2n minor units of it;
//   - 0% plans are split evenly (parts differ by at most one minor unit);
//   - pay-in-4 is due at checkout and every 14 days, monthly plans monthly.
func TestScheduleSumsExactly(t *testing.T) {
	const n = 20000
	rng := rand.New(rand.NewPCG(4, 2026))
	currencies := []money.Currency{money.JPY, money.USD, money.BHD}
	counts := map[string]int{}
	clamped, maxDrift := 0, int64(0)
	for i := range n {
		cur := currencies[rng.IntN(len(currencies))]
		var minor int64
		switch rng.IntN(3) { // log-uniform-ish: small, medium and huge amounts
		case 0:
			minor = 1 + rng.Int64N(1000)
		case 1:
			minor = 1 + rng.Int64N(100_000_000)
		default:
			minor = 1 + rng.Int64N(10_000_000_000_000)
		}
		financed, err := money.FromMinor(minor, cur)
		if err != nil {
			t.Fatal(err)
		}
		kind := kinds[rng.IntN(len(kinds))]
		bp := 0
		if kind != PayIn4 && rng.IntN(10) > 0 {
			bp = rng.IntN(MaxAPRBasisPoints + 1)
		}
		start := t0.Add(time.Duration(rng.Int64N(int64(400 * day))))
		s, err := Schedule(financed, Terms{Kind: kind, APR: MustAPR(bp)}, start)
		if err != nil {
			t.Fatalf("plan %d: %v", i, err)
		}
		c, drift, err := checkSchedule(financed, kind, bp, start, s)
		if err != nil {
			t.Fatalf("plan %d (%s, %s, %d bp): %v\n%v", i, financed, kind, bp, err, s)
		}
		if c {
			clamped++
		}
		maxDrift = max(maxDrift, drift)
		counts[cur.Code()+" "+kind.String()]++
	}
	t.Logf("%d schedules, 0 inexact sums, 0 interest or payment mismatches against big.Rat; %d ran out of balance early (tiny amounts); largest last-installment drift from the level payment: %d minor units; by currency and kind: %v",
		n, clamped, maxDrift, counts)
}

// checkSchedule verifies s as described on TestScheduleSumsExactly. It
// reports whether the balance ran out before the last installment and how
// far the last installment's total is from the level payment, in minor
// units.
func checkSchedule(financed money.Money, kind Kind, bp int, start time.Time, s []ScheduledInstallment) (clamped bool, drift int64, err error) {
	if len(s) != kind.Installments() {
		return false, 0, fmt.Errorf("%d installments", len(s))
	}
	exp := financed.Currency().Exponent()
	unit := new(big.Rat).SetFrac64(1, pow10(exp))
	toRat := func(m money.Money) *big.Rat { return new(big.Rat).Mul(new(big.Rat).SetInt64(m.MinorUnits()), unit) }
	sum := new(big.Rat)
	balance := toRat(financed)
	r := new(big.Rat).SetFrac64(int64(bp), 120000)
	payment := levelPaymentRat(balance, r, len(s), exp)
	minP, maxP := int64(1<<62), int64(-1)
	for k, in := range s {
		if in.Number != k+1 || !in.Principal.SameCurrency(financed) || !in.Interest.SameCurrency(financed) {
			return false, 0, fmt.Errorf("installment %d: number %d or currency", k+1, in.Number)
		}
		if in.Principal.IsNegative() || in.Interest.IsNegative() {
			return false, 0, fmt.Errorf("installment %d: negative part", k+1)
		}
		want := start.UTC().Add(time.Duration(k) * PayIn4Interval)
		if kind != PayIn4 {
			want = addMonths(start.UTC(), k+1)
		}
		if !in.DueAt.Equal(want) || (k > 0 && !in.DueAt.After(s[k-1].DueAt)) {
			return false, 0, fmt.Errorf("installment %d due %s, want %s", k+1, in.DueAt, want)
		}
		wantInterest := roundHalfEven(new(big.Rat).Mul(balance, r), exp)
		if toRat(in.Interest).Cmp(wantInterest) != 0 {
			return false, 0, fmt.Errorf("installment %d interest %s, want %s", k+1, in.Interest, wantInterest.FloatString(int(exp)))
		}
		p := in.Principal.MinorUnits()
		minP, maxP = min(minP, p), max(maxP, p)
		total := new(big.Rat).Add(toRat(in.Principal), toRat(in.Interest))
		if bp > 0 && k < len(s)-1 && total.Cmp(payment) != 0 {
			if toRat(in.Principal).Cmp(balance) != 0 {
				return false, 0, fmt.Errorf("installment %d totals %s, level payment %s", k+1, total.FloatString(int(exp)), payment.FloatString(int(exp)))
			}
			clamped = true
		}
		if bp > 0 && k == len(s)-1 && !clamped {
			d := new(big.Rat).Sub(total, payment)
			d.Quo(d, unit)
			drift = d.Num().Int64()
			drift = max(drift, -drift)
			// Rounding the payment and each interest moves the balance by at
			// most one unit a month, compounded: below 2n units for r <= 3%.
			if drift > 2*int64(len(s)) {
				return clamped, drift, fmt.Errorf("last installment %s is %d units from the level payment %s", total.FloatString(int(exp)), drift, payment.FloatString(int(exp)))
			}
		}
		balance.Sub(balance, toRat(in.Principal))
		sum.Add(sum, toRat(in.Principal))
	}
	if sum.Cmp(toRat(financed)) != 0 {
		return clamped, drift, fmt.Errorf("principal sums to %s, financed %s", sum.FloatString(int(exp)), financed)
	}
	if bp == 0 && maxP-minP > 1 {
		return clamped, drift, fmt.Errorf("0%% parts differ by %d minor units", maxP-minP)
	}
	return clamped, drift, nil
}

// levelPaymentRat is P·r·(1+r)^n / ((1+r)^n − 1) rounded half-even,
// exactly (0 for r = 0).
func levelPaymentRat(p, r *big.Rat, n int, exp int32) *big.Rat {
	if r.Sign() == 0 {
		return new(big.Rat)
	}
	f := big.NewRat(1, 1)
	onePlusR := new(big.Rat).Add(big.NewRat(1, 1), r)
	for range n {
		f.Mul(f, onePlusR)
	}
	num := new(big.Rat).Mul(new(big.Rat).Mul(p, r), f)
	return roundHalfEven(num.Quo(num, new(big.Rat).Sub(f, big.NewRat(1, 1))), exp)
}

// roundHalfEven rounds a non-negative x to exp decimals, ties to even.
func roundHalfEven(x *big.Rat, exp int32) *big.Rat {
	scaled := new(big.Rat).Mul(x, new(big.Rat).SetInt64(pow10(exp)))
	q, rem := new(big.Int).QuoRem(scaled.Num(), scaled.Denom(), new(big.Int))
	twice := new(big.Int).Mul(rem, big.NewInt(2))
	if c := twice.Cmp(scaled.Denom()); c > 0 || c == 0 && q.Bit(0) == 1 {
		q.Add(q, big.NewInt(1))
	}
	return new(big.Rat).SetFrac(q, big.NewInt(pow10(exp)))
}

func pow10(exp int32) int64 {
	p := int64(1)
	for range exp {
		p *= 10
	}
	return p
}

func TestScheduleRejects(t *testing.T) {
	for _, c := range []struct {
		name     string
		financed money.Money
		terms    Terms
	}{
		{"zero amount", usd("0"), Terms{Kind: PayIn4}},
		{"negative amount", usd("-10.00"), Terms{Kind: Monthly3}},
		{"zero money", money.Money{}, Terms{Kind: Monthly3}},
		{"no kind", usd("100.00"), Terms{}},
		{"pay-in-4 with interest", usd("100.00"), Terms{Kind: PayIn4, APR: MustAPR(1)}},
	} {
		if _, err := Schedule(c.financed, c.terms, t0); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

func TestAddMonthsClampsToMonthEnd(t *testing.T) {
	for _, c := range []struct {
		from string
		n    int
		want string
	}{
		{"2026-01-31", 1, "2026-02-28"},
		{"2028-01-31", 1, "2028-02-29"},
		{"2026-01-31", 2, "2026-03-31"},
		{"2026-08-31", 1, "2026-09-30"},
		{"2026-11-30", 3, "2027-02-28"},
		{"2026-01-15", 12, "2027-01-15"},
	} {
		from, _ := time.Parse(time.DateOnly, c.from)
		if got := addMonths(from, c.n).Format(time.DateOnly); got != c.want {
			t.Errorf("%s + %d months = %s, want %s", c.from, c.n, got, c.want)
		}
	}
}
