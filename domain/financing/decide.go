package financing

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

// Decide records a credit decision on a (see Evaluate for the rules) and,
// if approved, originates the plan: CreditDecided, then Originated with the
// Schedule from now. A decline is a recorded decision, not an error.
// Deciding again with the same application yields no events; with another
// it is ErrPlanExists. Errors: ErrInvalidCommand, money.ErrCurrencyMismatch
// for malformed applications.
func (p *Plan) Decide(a Application, now time.Time) ([]event.Event, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	if p.status != StatusNew {
		if p.sameApplication(a) {
			return nil, nil
		}
		return nil, fmt.Errorf("decide %s: %w (status %s)", a.PlanID, ErrPlanExists, p.status)
	}
	now = now.UTC()
	reasons := Evaluate(a)
	decided := &CreditDecided{
		PlanID: a.PlanID, CustomerID: a.CustomerID, OrderID: a.OrderID, Amount: a.Amount,
		Kind: a.Terms.Kind, APR: a.Terms.APR, CurrentExposure: a.CurrentExposure, ExposureLimit: a.ExposureLimit,
		OpenDelinquencies: a.OpenDelinquencies, Approved: len(reasons) == 0, Reasons: reasons, DecidedAt: now,
	}
	if !decided.Approved {
		return []event.Event{decided}, nil
	}
	schedule, err := Schedule(a.Amount, a.Terms, now)
	if err != nil {
		return nil, fmt.Errorf("decide %s: %w", a.PlanID, err)
	}
	return []event.Event{decided, &Originated{
		PlanID: a.PlanID, Financed: a.Amount, Kind: a.Terms.Kind, APR: a.Terms.APR,
		Installments: schedule, OriginatedAt: now,
	}}, nil
}

func (p *Plan) sameApplication(a Application) bool {
	b := p.application
	return a.PlanID == b.PlanID && a.CustomerID == b.CustomerID && a.OrderID == b.OrderID &&
		a.Amount.Equal(b.Amount) && a.Terms == b.Terms && a.CurrentExposure.Equal(b.CurrentExposure) &&
		a.ExposureLimit.Equal(b.ExposureLimit) && a.OpenDelinquencies == b.OpenDelinquencies
}

// Collect records amt collected under collectionID and applies it to the
// oldest installments first: to each one's late fee, then interest, then
// principal. Paying ahead is allowed (future installments are paid early,
// scheduled interest included; PayOff is how to avoid future interest).
// When nothing is owed any more the plan is paid off. The same
// collectionID with the same amount yields no events; otherwise it is
// ErrIDReused. Errors: ErrNoPlan, ErrCreditDeclined, ErrPlanClosed,
// *LimitError with ErrCollectionExceedsOwed.
func (p *Plan) Collect(collectionID string, amt money.Money, now time.Time) ([]event.Event, error) {
	if retry, err := p.checkCollection(collectionID, collected, amt, payment.DeclineReason{}); retry || err != nil {
		return nil, err
	}
	if err := p.checkOpen(); err != nil {
		return nil, fmt.Errorf("collect %s: %w", collectionID, err)
	}
	if err := p.checkAmount(amt); err != nil {
		return nil, fmt.Errorf("collect %s: %w", collectionID, err)
	}
	if owed := p.Owed(); amt.GreaterThan(owed) {
		return nil, &LimitError{Err: ErrCollectionExceedsOwed, Requested: amt, Available: owed}
	}
	return []event.Event{&InstallmentCollected{
		PlanID: p.id, CollectionID: collectionID, Amount: amt, Allocations: p.waterfall(amt), CollectedAt: now.UTC(),
	}}, nil
}

// waterfall spreads amt over the installments in order: fee, interest,
// principal of each.
func (p *Plan) waterfall(amt money.Money) []Allocation {
	left := amt
	var out []Allocation
	for _, in := range p.installments {
		if !left.IsPositive() {
			break
		}
		a := Allocation{Installment: in.Number}
		a.Fee, left = take(in.UnpaidFee(), left)
		a.Interest, left = take(in.UnpaidInterest(), left)
		a.Principal, left = take(in.UnpaidPrincipal(), left)
		if sumOf(zeroOf(amt), []Allocation{a}).IsPositive() {
			out = append(out, a)
		}
	}
	return out
}

func take(due, left money.Money) (taken, rest money.Money) {
	taken = minOf(due, left)
	return taken, sub(left, taken)
}

// FailCollection records that collecting amt under collectionID was
// declined for reason. It changes nothing owed; the caller retries under a
// new collection ID. The same ID, amount and reason again yields no events.
// Errors: ErrNoPlan, ErrCreditDeclined, ErrPlanClosed, ErrIDReused.
func (p *Plan) FailCollection(collectionID string, amt money.Money, reason payment.DeclineReason, now time.Time) ([]event.Event, error) {
	if reason.IsZero() {
		return nil, fmt.Errorf("%w: decline reason is required", ErrInvalidCommand)
	}
	if retry, err := p.checkCollection(collectionID, failed, amt, reason); retry || err != nil {
		return nil, err
	}
	if err := p.checkOpen(); err != nil {
		return nil, fmt.Errorf("collection %s failed: %w", collectionID, err)
	}
	if err := p.checkAmount(amt); err != nil {
		return nil, fmt.Errorf("collection %s failed: %w", collectionID, err)
	}
	return []event.Event{&CollectionFailed{
		PlanID: p.id, CollectionID: collectionID, Amount: amt, Reason: reason, FailedAt: now.UTC(),
	}}, nil
}

// checkCollection validates the collection ID and recognises a retry (the
// ID is known as the same collection: the caller returns no events). An ID
// known as another collection is ErrIDReused.
func (p *Plan) checkCollection(id string, kind collectionKind, amt money.Money, reason payment.DeclineReason) (retry bool, err error) {
	if id == "" {
		return false, fmt.Errorf("%w: collection ID is required", ErrInvalidCommand)
	}
	prev, ok := p.collections[id]
	switch {
	case !ok:
		return false, nil
	case prev.kind == kind && prev.amount.Equal(amt) && prev.reason == reason:
		return true, nil
	}
	return false, fmt.Errorf("collection %s: %w", id, ErrIDReused)
}

// AssessLateFee adds a late fee to installment number once it is more than
// GraceDays whole days past due at now and still owes principal or
// interest. The fee is the currency's fixed LateFee, capped at
// LateFeeInstallmentCapPercent of the installment (principal + interest)
// and at what is left of LateFeePlanCapPercent of the financed amount
// (both rounded down). One fee per installment: assessing it again yields
// no events. Errors: ErrNoPlan, ErrCreditDeclined, ErrPlanClosed,
// ErrPlanDefaulted, ErrNoSuchInstallment, ErrInstallmentPaid,
// ErrLateFeeNotDue, ErrLateFeeCapReached.
func (p *Plan) AssessLateFee(number int, now time.Time) ([]event.Event, error) {
	if err := p.checkOpen(); err != nil {
		return nil, fmt.Errorf("late fee: %w", err)
	}
	in := p.installment(number)
	switch {
	case in == nil:
		return nil, fmt.Errorf("late fee: %w: %d of %d", ErrNoSuchInstallment, number, len(p.installments))
	case in.FeeAssessed:
		return nil, nil
	case p.status == StatusDefaulted:
		return nil, fmt.Errorf("late fee: %w", ErrPlanDefaulted)
	case !add(in.UnpaidPrincipal(), in.UnpaidInterest()).IsPositive():
		return nil, fmt.Errorf("late fee on installment %d: %w", number, ErrInstallmentPaid)
	}
	if d := daysPastDue(in.DueAt, now); d <= GraceDays {
		return nil, fmt.Errorf("late fee on installment %d: %w (%d days past due, grace %d)", number, ErrLateFeeNotDue, d, GraceDays)
	}
	fixed := zeroOf(p.financed)
	if t, ok := TermsFor(p.financed.Currency()); ok {
		fixed = t.LateFee
	}
	fee := minOf(fixed,
		percentDown(add(in.Principal, in.Interest), LateFeeInstallmentCapPercent),
		sub(percentDown(p.financed, LateFeePlanCapPercent), p.feesAssessed))
	if !fee.IsPositive() {
		return nil, fmt.Errorf("late fee on installment %d: %w", number, ErrLateFeeCapReached)
	}
	return []event.Event{&LateFeeAssessed{PlanID: p.id, Installment: number, Fee: fee, AssessedAt: now.UTC()}}, nil
}

// percentDown is pct% of m rounded down to the minor unit.
func percentDown(m money.Money, pct int64) money.Money {
	q, _ := m.Amount().Mul(decimal.New(pct, 0)).QuoRem(decimal.New(100, 0), m.Currency().Exponent())
	r, err := money.New(q, m.Currency())
	if err != nil {
		panic(fmt.Sprintf("financing: %d%% of %s: %v", pct, m, err))
	}
	return r
}

// PayOff records an early payoff of amt under collectionID. amt must equal
// PayoffQuote(now): unpaid principal and fees plus the unpaid interest of
// installments due by now; the interest of installments not yet due is
// waived. The same collectionID with the same amount yields no events.
// Errors: ErrNoPlan, ErrCreditDeclined, ErrPlanClosed, ErrIDReused,
// *PayoffMismatchError.
func (p *Plan) PayOff(collectionID string, amt money.Money, now time.Time) ([]event.Event, error) {
	if retry, err := p.checkCollection(collectionID, paidOff, amt, payment.DeclineReason{}); retry || err != nil {
		return nil, err
	}
	if err := p.checkOpen(); err != nil {
		return nil, fmt.Errorf("payoff %s: %w", collectionID, err)
	}
	if err := p.checkAmount(amt); err != nil {
		return nil, fmt.Errorf("payoff %s: %w", collectionID, err)
	}
	owed, waived := p.settle(now)
	if quote := sumOf(zeroOf(p.financed), owed); !amt.Equal(quote) {
		return nil, &PayoffMismatchError{Quoted: quote, Offered: amt}
	}
	return []event.Event{&PaidOff{
		PlanID: p.id, CollectionID: collectionID, Amount: amt, Allocations: owed, Waived: waived, PaidOffAt: now.UTC(),
	}}, nil
}

// settle splits what is unpaid at now into what is owed (principal, fees,
// interest of installments due by now) and what is waived (interest of
// installments not yet due).
func (p *Plan) settle(now time.Time) (owed, waived []Allocation) {
	z := zeroOf(p.financed)
	for _, in := range p.installments {
		o := Allocation{Installment: in.Number, Principal: in.UnpaidPrincipal(), Interest: z, Fee: in.UnpaidFee()}
		w := Allocation{Installment: in.Number, Principal: z, Interest: z, Fee: z}
		if in.DueAt.After(now) {
			w.Interest = in.UnpaidInterest()
		} else {
			o.Interest = in.UnpaidInterest()
		}
		if sumOf(z, []Allocation{o}).IsPositive() {
			owed = append(owed, o)
		}
		if w.Interest.IsPositive() {
			waived = append(waived, w)
		}
	}
	return owed, waived
}

// Refund records that the merchant refunded amt of the financed order
// under refundID. The refund takes principal off the installments from the
// LAST one backwards. An installment whose unpaid principal is cut in part
// keeps its fee and has its unpaid interest cut in proportion, rounded up
// (in the customer's favour); one whose unpaid principal is cut to zero
// owes nothing more (interest and fee waived). If the refund covers all
// unpaid principal, all unpaid interest and fees are waived, and whatever
// exceeds the unpaid principal is ReturnedToCustomer: money already
// collected that goes back. A plan left owing nothing is StatusRefunded
// (unless already paid off). Refunds may follow a payoff (all returned).
// The same refundID with the same amount yields no events. Errors:
// ErrNoPlan, ErrCreditDeclined, ErrPlanClosed (charged off), ErrIDReused,
// *LimitError with ErrRefundExceedsFinanced (refunds above the financed
// amount).
func (p *Plan) Refund(refundID string, amt money.Money, now time.Time) ([]event.Event, error) {
	if refundID == "" {
		return nil, fmt.Errorf("%w: refund ID is required", ErrInvalidCommand)
	}
	if prev, ok := p.refunds[refundID]; ok {
		if prev.Equal(amt) {
			return nil, nil
		}
		return nil, fmt.Errorf("refund %s: %w", refundID, ErrIDReused)
	}
	if err := p.checkExists(); err != nil {
		return nil, fmt.Errorf("refund %s: %w", refundID, err)
	}
	if p.status == StatusChargedOff {
		return nil, fmt.Errorf("refund %s: %w (status %s)", refundID, ErrPlanClosed, p.status)
	}
	if err := p.checkAmount(amt); err != nil {
		return nil, fmt.Errorf("refund %s: %w", refundID, err)
	}
	if avail := sub(p.financed, p.refunded); amt.GreaterThan(avail) {
		return nil, &LimitError{Err: ErrRefundExceedsFinanced, Requested: amt, Available: avail}
	}
	z := zeroOf(p.financed)
	left := amt
	var reductions []Allocation
	touched := map[int]bool{}
	for i := len(p.installments) - 1; i >= 0 && left.IsPositive(); i-- {
		in := p.installments[i]
		up := in.UnpaidPrincipal()
		if !up.IsPositive() {
			continue
		}
		cut := minOf(up, left)
		left = sub(left, cut)
		r := Allocation{Installment: in.Number, Principal: cut, Interest: in.UnpaidInterest(), Fee: in.UnpaidFee()}
		if cut.LessThan(up) {
			r.Interest, r.Fee = proportionUp(in.UnpaidInterest(), cut, up), z
		}
		reductions = append(reductions, r)
		touched[in.Number] = true
	}
	if left.IsPositive() || !p.unpaidPrincipalAfter(reductions).IsPositive() {
		// Everything still owed in principal is gone: so is the rest.
		for i := len(p.installments) - 1; i >= 0; i-- {
			in := p.installments[i]
			if !touched[in.Number] && add(in.UnpaidInterest(), in.UnpaidFee()).IsPositive() {
				reductions = append(reductions, Allocation{Installment: in.Number, Principal: z, Interest: in.UnpaidInterest(), Fee: in.UnpaidFee()})
			}
		}
	}
	return []event.Event{&Refunded{
		PlanID: p.id, RefundID: refundID, Amount: amt, Reductions: reductions, ReturnedToCustomer: left, RefundedAt: now.UTC(),
	}}, nil
}

func (p *Plan) unpaidPrincipalAfter(reductions []Allocation) money.Money {
	total := zeroOf(p.financed)
	for _, in := range p.installments {
		total = add(total, in.UnpaidPrincipal())
	}
	for _, r := range reductions {
		total = sub(total, r.Principal)
	}
	return total
}

// proportionUp is m × part / whole rounded up to the minor unit (0 < part <
// whole, so the result is at most m).
func proportionUp(m, part, whole money.Money) money.Money {
	q, rem := m.Amount().Mul(part.Amount()).QuoRem(whole.Amount(), m.Currency().Exponent())
	if rem.IsPositive() {
		q = q.Add(decimal.New(1, -m.Currency().Exponent()))
	}
	r, err := money.New(q, m.Currency())
	if err != nil {
		panic(fmt.Sprintf("financing: %s × %s / %s: %v", m, part, whole, err))
	}
	return r
}

// Default records that the plan defaulted: its oldest unpaid installment is
// more than DefaultAfterDays whole days past due at now. Collections and
// refunds still apply; late fees stop. Defaulting a defaulted plan yields no
// events. Errors: ErrNoPlan, ErrCreditDeclined, ErrPlanClosed,
// ErrDefaultTooEarly.
func (p *Plan) Default(now time.Time) ([]event.Event, error) {
	if p.status == StatusDefaulted {
		return nil, nil
	}
	if err := p.checkOpen(); err != nil {
		return nil, fmt.Errorf("default: %w", err)
	}
	dpd := p.DaysPastDue(now)
	if dpd <= DefaultAfterDays {
		return nil, fmt.Errorf("default %s: %w (%d days past due, need more than %d)", p.id, ErrDefaultTooEarly, dpd, DefaultAfterDays)
	}
	return []event.Event{&Defaulted{PlanID: p.id, DaysPastDue: dpd, Outstanding: p.PayoffQuote(now), DefaultedAt: now.UTC()}}, nil
}

// ChargeOff writes off what a defaulted plan owes at now (unpaid
// principal, fees and interest due by now); interest not yet due is
// waived. The plan is closed. Charging off a charged-off plan yields no
// events. Errors: ErrNoPlan, ErrCreditDeclined, ErrPlanClosed,
// ErrNotDefaulted.
func (p *Plan) ChargeOff(now time.Time) ([]event.Event, error) {
	if p.status == StatusChargedOff {
		return nil, nil
	}
	if err := p.checkOpen(); err != nil {
		return nil, fmt.Errorf("charge off: %w", err)
	}
	if p.status != StatusDefaulted {
		return nil, fmt.Errorf("charge off %s: %w", p.id, ErrNotDefaulted)
	}
	owed, waived := p.settle(now)
	return []event.Event{&ChargedOff{
		PlanID: p.id, WrittenOff: sumOf(zeroOf(p.financed), owed), Allocations: owed, Waived: waived, ChargedOffAt: now.UTC(),
	}}, nil
}

// checkExists fails unless credit was approved.
func (p *Plan) checkExists() error {
	switch p.status {
	case StatusNew:
		return ErrNoPlan
	case StatusDeclined:
		return ErrCreditDeclined
	}
	return nil
}

// checkOpen fails unless the plan is active or defaulted.
func (p *Plan) checkOpen() error {
	if err := p.checkExists(); err != nil {
		return err
	}
	if p.status.closed() {
		return fmt.Errorf("%w (status %s)", ErrPlanClosed, p.status)
	}
	return nil
}

func (p *Plan) checkAmount(amt money.Money) error {
	if !amt.IsValid() || !amt.IsPositive() {
		return fmt.Errorf("%w: amount %v must be positive", ErrInvalidCommand, amt)
	}
	if !amt.SameCurrency(p.financed) {
		return fmt.Errorf("%w: %s plan", money.ErrCurrencyMismatch, p.financed.Currency())
	}
	return nil
}
