package financing

import (
	"fmt"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

// Plan is one credit decision and, if approved, the installment plan that
// followed. Build it by applying its stream's events to the zero Plan;
// decide with its methods, which return events and never change the Plan.
// A Plan is not safe for concurrent use.
type Plan struct {
	id, customerID, orderID string
	status                  Status
	terms                   Terms
	financed                money.Money
	application             Application // as decided, to recognise a retried Decide
	reasons                 []ReasonCode
	decidedAt               time.Time

	installments []Installment

	collected           money.Money // all collections, payoff included
	feesAssessed        money.Money
	refunded            money.Money // all refunds
	principalCancelled  money.Money // the part of refunds taken off principal
	returned            money.Money // the part of refunds paid back to the customer
	writtenOff          money.Money
	principalWrittenOff money.Money
	failedCollections   int

	collections map[string]collection
	refunds     map[string]money.Money
}

type collectionKind uint8

const (
	collected collectionKind = iota + 1
	failed
	paidOff
)

type collection struct {
	kind   collectionKind
	amount money.Money
	reason payment.DeclineReason
}

// Installment is an installment's current state. Principal, Interest and
// Fee are what it owes in all (paid or not): the schedule's amounts less
// refund reductions, waivers and write-offs, plus late fees.
type Installment struct {
	Number                               int
	DueAt                                time.Time
	Principal, Interest, Fee             money.Money
	PaidPrincipal, PaidInterest, PaidFee money.Money
	FeeAssessed                          bool
}

// UnpaidPrincipal, UnpaidInterest and UnpaidFee are what is still owed of
// each part.
func (in Installment) UnpaidPrincipal() money.Money { return sub(in.Principal, in.PaidPrincipal) }
func (in Installment) UnpaidInterest() money.Money  { return sub(in.Interest, in.PaidInterest) }
func (in Installment) UnpaidFee() money.Money       { return sub(in.Fee, in.PaidFee) }

// Unpaid is everything still owed on the installment.
func (in Installment) Unpaid() money.Money {
	return add(add(in.UnpaidPrincipal(), in.UnpaidInterest()), in.UnpaidFee())
}

// ID is the plan's ID ("" before the first event).
func (p *Plan) ID() string { return p.id }

// CustomerID is the borrower.
func (p *Plan) CustomerID() string { return p.customerID }

// OrderID is the financed order.
func (p *Plan) OrderID() string { return p.orderID }

// Status is where the plan stands.
func (p *Plan) Status() Status { return p.status }

// Terms are the plan's kind and APR.
func (p *Plan) Terms() Terms { return p.terms }

// Financed is the amount financed (the order amount).
func (p *Plan) Financed() money.Money { return p.financed }

// Reasons are why credit was declined (none when approved).
func (p *Plan) Reasons() []ReasonCode { return append([]ReasonCode(nil), p.reasons...) }

// Installments returns a copy of the installments in order.
func (p *Plan) Installments() []Installment { return append([]Installment(nil), p.installments...) }

// Collected is everything collected, payoff included.
func (p *Plan) Collected() money.Money { return p.collected }

// Refunded is the sum of refunds.
func (p *Plan) Refunded() money.Money { return p.refunded }

// PrincipalCancelled is the part of refunds taken off principal still owed.
func (p *Plan) PrincipalCancelled() money.Money { return p.principalCancelled }

// ReturnedToCustomer is the part of refunds that exceeded what was owed and
// went back to the customer.
func (p *Plan) ReturnedToCustomer() money.Money { return p.returned }

// FeesAssessed is the sum of late fees assessed.
func (p *Plan) FeesAssessed() money.Money { return p.feesAssessed }

// WrittenOff is what a charge-off wrote off.
func (p *Plan) WrittenOff() money.Money { return p.writtenOff }

// PrincipalWrittenOff is the principal part of WrittenOff.
func (p *Plan) PrincipalWrittenOff() money.Money { return p.principalWrittenOff }

// FailedCollections counts failed collection attempts.
func (p *Plan) FailedCollections() int { return p.failedCollections }

// Owed is everything still owed: principal, all scheduled interest (due or
// not) and fees. Zero for a closed plan.
func (p *Plan) Owed() money.Money {
	total := zeroOf(p.financed)
	for _, in := range p.installments {
		total = add(total, in.Unpaid())
	}
	return total
}

// PayoffQuote is what paying the plan off at now costs: unpaid principal,
// fees, and the unpaid interest of installments due at or before now.
// Interest of installments not yet due is not owed on payoff.
func (p *Plan) PayoffQuote(now time.Time) money.Money {
	owed, _ := p.settle(now)
	return sumOf(zeroOf(p.financed), owed)
}

// DaysPastDue is how many whole days the oldest installment that still owes
// something is past its due date at now; 0 if none is past due or the plan
// is not active or defaulted.
func (p *Plan) DaysPastDue(now time.Time) int {
	if p.status != StatusActive && p.status != StatusDefaulted {
		return 0
	}
	for _, in := range p.installments {
		if in.Unpaid().IsPositive() {
			return daysPastDue(in.DueAt, now)
		}
	}
	return 0
}

// Delinquency is the plan's bucket at now, from DaysPastDue.
func (p *Plan) Delinquency(now time.Time) Bucket { return BucketOf(p.DaysPastDue(now)) }

func daysPastDue(due, now time.Time) int {
	if !now.After(due) {
		return 0
	}
	return int(now.Sub(due) / (24 * time.Hour))
}

// Apply evolves the plan by one event of its stream. It is total over this
// package's events (as pointers, as decisions return them and the registry
// decodes them) and ignores any other event.
func (p *Plan) Apply(e event.Event) {
	switch e := e.(type) {
	case *CreditDecided:
		p.id, p.customerID, p.orderID = e.PlanID, e.CustomerID, e.OrderID
		p.terms = Terms{Kind: e.Kind, APR: e.APR}
		p.financed = e.Amount
		p.application = Application{
			PlanID: e.PlanID, CustomerID: e.CustomerID, OrderID: e.OrderID, Amount: e.Amount, Terms: p.terms,
			CurrentExposure: e.CurrentExposure, ExposureLimit: e.ExposureLimit, OpenDelinquencies: e.OpenDelinquencies,
		}
		p.reasons = append([]ReasonCode(nil), e.Reasons...)
		p.decidedAt = e.DecidedAt
		p.status = StatusDeclined
		if e.Approved {
			p.status = StatusActive
		}
		z := money.Zero(e.Amount.Currency())
		p.collected, p.feesAssessed, p.refunded, p.principalCancelled = z, z, z, z
		p.returned, p.writtenOff, p.principalWrittenOff = z, z, z
		p.collections = map[string]collection{}
		p.refunds = map[string]money.Money{}
	case *Originated:
		z := money.Zero(e.Financed.Currency())
		p.installments = make([]Installment, len(e.Installments))
		for i, s := range e.Installments {
			p.installments[i] = Installment{
				Number: s.Number, DueAt: s.DueAt, Principal: s.Principal, Interest: s.Interest,
				Fee: z, PaidPrincipal: z, PaidInterest: z, PaidFee: z,
			}
		}
	case *InstallmentCollected:
		p.pay(e.Allocations)
		p.collected = add(p.collected, e.Amount)
		p.collections[e.CollectionID] = collection{kind: collected, amount: e.Amount}
		if !p.Owed().IsPositive() {
			p.status = StatusPaidOff
		}
	case *CollectionFailed:
		p.collections[e.CollectionID] = collection{kind: failed, amount: e.Amount, reason: e.Reason}
		p.failedCollections++
	case *LateFeeAssessed:
		if in := p.installment(e.Installment); in != nil {
			in.Fee = add(in.Fee, e.Fee)
			in.FeeAssessed = true
		}
		p.feesAssessed = add(p.feesAssessed, e.Fee)
	case *PaidOff:
		p.pay(e.Allocations)
		p.reduce(e.Waived)
		p.collected = add(p.collected, e.Amount)
		p.collections[e.CollectionID] = collection{kind: paidOff, amount: e.Amount}
		p.status = StatusPaidOff
	case *Refunded:
		cut := p.reduce(e.Reductions)
		p.principalCancelled = add(p.principalCancelled, cut)
		p.refunded = add(p.refunded, e.Amount)
		p.returned = add(p.returned, e.ReturnedToCustomer)
		p.refunds[e.RefundID] = e.Amount
		if (p.status == StatusActive || p.status == StatusDefaulted) && !p.Owed().IsPositive() {
			p.status = StatusRefunded
		}
	case *Defaulted:
		p.status = StatusDefaulted
	case *ChargedOff:
		cut := p.reduce(e.Allocations)
		p.reduce(e.Waived)
		p.principalWrittenOff = add(p.principalWrittenOff, cut)
		p.writtenOff = add(p.writtenOff, e.WrittenOff)
		p.status = StatusChargedOff
	}
}

func (p *Plan) installment(number int) *Installment {
	if number < 1 || number > len(p.installments) {
		return nil
	}
	return &p.installments[number-1]
}

// pay records allocations as paid.
func (p *Plan) pay(allocs []Allocation) {
	for _, a := range allocs {
		if in := p.installment(a.Installment); in != nil {
			in.PaidPrincipal = add(in.PaidPrincipal, a.Principal)
			in.PaidInterest = add(in.PaidInterest, a.Interest)
			in.PaidFee = add(in.PaidFee, a.Fee)
		}
	}
}

// reduce takes allocations off what installments owe and returns the
// principal taken off.
func (p *Plan) reduce(allocs []Allocation) money.Money {
	cut := zeroOf(p.financed)
	for _, a := range allocs {
		if in := p.installment(a.Installment); in != nil {
			in.Principal = sub(in.Principal, a.Principal)
			in.Interest = sub(in.Interest, a.Interest)
			in.Fee = sub(in.Fee, a.Fee)
			cut = add(cut, a.Principal)
		}
	}
	return cut
}

// add, sub and minOf are for amounts a decision has already checked: one
// currency, within bounds. A failure means a history no decision could have
// produced (corruption); Apply has no error to return, so it panics.
func add(a, b money.Money) money.Money {
	r, err := a.Add(b)
	if err != nil {
		panic(fmt.Sprintf("financing: impossible history: %v", err))
	}
	return r
}

func sub(a, b money.Money) money.Money {
	r, err := a.Sub(b)
	if err != nil {
		panic(fmt.Sprintf("financing: impossible history: %v", err))
	}
	return r
}

func minOf(a money.Money, bs ...money.Money) money.Money {
	for _, b := range bs {
		if b.LessThan(a) {
			a = b
		}
	}
	return a
}

func zeroOf(m money.Money) money.Money {
	if !m.IsValid() {
		return m
	}
	return money.Zero(m.Currency())
}

// sumOf adds the parts of allocations to start.
func sumOf(start money.Money, allocs []Allocation) money.Money {
	for _, a := range allocs {
		start = add(add(add(start, a.Principal), a.Interest), a.Fee)
	}
	return start
}
