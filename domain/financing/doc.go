// Package financing is the buy-now-pay-later aggregate: a credit decision
// and the installment plan that follows it (stream "plan-" + ID).
//
// # Credit decision
//
// Decide records CreditDecided with every input it used and, if approved,
// Originated with the schedule. Evaluate declines, recording every reason
// that applies (ReasonCode), when:
//
//   - the currency has no CurrencyTerms (plans are offered in USD, EUR, GBP,
//     JPY and BHD);
//   - the amount is outside the currency's bounds for the kind: pay-in-4
//     USD/EUR 35-1,000, GBP 30-800, JPY 3,000-150,000, BHD 15-400; monthly
//     USD/EUR 100-10,000, GBP 80-8,000, JPY 10,000-1,500,000, BHD 40-4,000;
//   - the customer's current exposure (supplied by the caller) plus the
//     amount exceeds their exposure limit (also supplied);
//   - the customer has any open delinquency (count supplied).
//
// # Plans
//
//   - Pay-in-4: four installments at 0% APR, the first due at checkout, then
//     every 14 days. The amount is split with money.Split: parts differ by
//     at most one minor unit and the first ones carry the odd units.
//   - Monthly 3/6/12 at an APR of 0-36% (basis points): standard
//     amortization, payment = P·r/(1−(1+r)^−n) with r = APR/12, computed in
//     decimal and rounded half-even to minor units; each month's interest is
//     the balance × r rounded half-even; the last installment takes the
//     remaining balance, absorbing all rounding. At 0% the amount is split
//     like pay-in-4. The first installment is due one month after
//     origination; due dates keep the day of month or clamp to month end.
//
// Principal parts always sum to the financed amount exactly; interest is
// kept separately on each installment.
//
// # Servicing
//
//   - Collect applies money to the oldest installment first: its late fee,
//     then interest, then principal. A failed attempt is recorded
//     (FailCollection) and owes nothing; it is retried under a new ID.
//   - Late fees: once an installment is more than GraceDays (10) whole days
//     past due, one fee may be assessed on it: the currency's fixed fee
//     (USD/EUR 7.00, GBP 6.00, JPY 1,000, BHD 3.000), capped at 25% of the
//     installment and at what remains of 25% of the financed amount across
//     the plan (both rounded down). No fees once defaulted.
//   - Delinquency: days past due of the oldest installment still owing,
//     bucketed current, 1-30, 31-60, 61-90, 90+.
//   - Early payoff: unpaid principal and fees plus the interest of
//     installments already due; interest not yet due is waived.
//   - Refund: the merchant's refund takes principal off the LAST installment
//     first, then backwards. A partly cut installment has its unpaid
//     interest cut in proportion (rounded up, for the customer) and keeps
//     its fee; a fully cut one owes nothing more. Once no principal is owed,
//     all interest and fees still owed are waived and the excess of the
//     refund over the principal that was owed goes back to the customer
//     (ReturnedToCustomer: money already collected). Refunds never exceed
//     the financed amount in all.
//   - Default: more than DefaultAfterDays (90) days past due. Collections
//     and refunds continue; fees stop. Charge-off (defaulted plans only)
//     writes off principal, fees and interest due, waives interest not yet
//     due, and closes the plan.
//
// A plan that owes nothing becomes paid off (by collections or payoff) or
// refunded (by a refund); both, and charged off, are closed to collections.
//
// # Idempotency
//
// Commands are safe to retry after their events were stored: a collection,
// payoff or refund ID seen before with the same data yields no events (with
// other data: ErrIDReused); deciding the same application again,
// assessing a fee on an installment that has one, defaulting a defaulted
// plan and charging off a charged-off one also yield no events.
//
// Decisions are methods that return events (pointers) and never change the
// Plan; Apply folds events into it. Nothing here reads the clock.
package financing
