package bnpl

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/workflows/internal/steps"
)

const day = 24 * time.Hour

// maxFailuresPerRun bounds the declined attempts of one run: a plan that
// goes unpaid for months still keeps a short history.
const maxFailuresPerRun = 20

// Schedule collects a plan's installments as they fall due, until the plan
// is paid off, refunded or charged off:
//
//  1. Load the plan as of now; stop if it is closed.
//  2. Work out the next thing to do for the oldest unpaid installment and
//     when: collect it (at its due date, then every RetryInterval after a
//     decline), add the late fee (once it is more than GraceDays past due),
//     default the plan (more than DefaultAfterDays past due), charge it off
//     (ChargeOffAfter after default).
//  3. Sleep until then on a durable timer; a payoff, refund or plan-changed
//     signal wakes it early and is handled first.
//  4. Do it, and after InstallmentsPerRun collected installments (or 20
//     declined attempts, or when the server suggests it) continue as new
//     with the little state that is not in the plan (Carry).
func Schedule(ctx workflow.Context, in Input) (Status, error) {
	in.Options.setDefaults()
	s := &schedule{in: in, carry: in.Carry}
	s.carry.Runs++
	s.status = Status{PlanID: in.PlanID, Carry: s.carry}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return s.status, nil }); err != nil {
		return Status{}, err
	}
	s.payoffs = workflow.GetSignalChannel(ctx, SignalPayoff)
	s.refunds = workflow.GetSignalChannel(ctx, SignalRefund)
	s.changes = workflow.GetSignalChannel(ctx, SignalPlanChanged)

	for {
		now := workflow.Now(ctx)
		plan, err := s.load(ctx, now)
		if err != nil {
			return s.status, err
		}
		if plan.Closed {
			s.status.NextWake = time.Time{}
			return s.status, nil
		}
		next := s.next(plan, now)
		if next.at.After(now) {
			s.status.NextWake = next.at
			s.sleepUntil(ctx, next.at)
			continue
		}
		done, err := s.do(ctx, next, plan, now)
		if err != nil || done {
			return s.status, err
		}
		if s.status.Collected >= in.Options.InstallmentsPerRun || s.status.Failed >= maxFailuresPerRun ||
			workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			s.drainSignals(ctx)
			in.Carry = s.carry
			return s.status, workflow.NewContinueAsNewError(ctx, Schedule, in)
		}
	}
}

type schedule struct {
	in                        Input
	carry                     Carry
	status                    Status
	payoffs, refunds, changes workflow.ReceiveChannel
	// tried remembers late fees and defaults the plan refused in this run,
	// so a refusal is not asked again and again.
	tried map[string]bool
}

type action int

const (
	collect action = iota
	lateFee
	defaultPlan
	chargeOff
)

type step struct {
	what action
	at   time.Time
	inst InstallmentView
}

func (s *schedule) load(ctx workflow.Context, now time.Time) (PlanView, error) {
	var a *Activities
	var v PlanView
	err := steps.Local(ctx, a.LoadPlan, LoadPlanInput{PlanID: s.in.PlanID, At: now}).Get(ctx, &v)
	s.status.PlanStatus, s.status.Delinquency = v.Status, v.Delinquency
	return v, err
}

// next decides what to do for the oldest unpaid installment, and when.
func (s *schedule) next(p PlanView, now time.Time) step {
	var oldest InstallmentView
	for _, in := range p.Installments {
		if in.Unpaid.IsPositive() {
			oldest = in
			break
		}
	}
	if oldest.Number == 0 {
		// Nothing unpaid but not closed: only a reload can tell; look again
		// tomorrow (a signal wakes the schedule sooner).
		return step{what: collect, at: now.Add(day)}
	}
	collectAt := oldest.DueAt
	if s.carry.Installment == oldest.Number && s.carry.NextAttemptAt.After(collectAt) {
		collectAt = s.carry.NextAttemptAt
	}
	candidates := []step{}
	if p.Status == financing.StatusDefaulted.String() {
		if s.carry.DefaultedAt.IsZero() {
			s.carry.DefaultedAt = now // defaulted by someone else
		}
		candidates = append(candidates, step{what: chargeOff, at: s.carry.DefaultedAt.Add(s.in.Options.ChargeOffAfter)})
	} else {
		if !oldest.FeeAssessed && !s.tried[fmt.Sprint("fee", oldest.Number)] {
			candidates = append(candidates, step{what: lateFee, at: oldest.DueAt.Add((financing.GraceDays + 1) * day), inst: oldest})
		}
		if !s.tried["default"] {
			candidates = append(candidates, step{what: defaultPlan, at: oldest.DueAt.Add((financing.DefaultAfterDays + 1) * day)})
		}
	}
	best := step{what: collect, at: collectAt, inst: oldest}
	for _, c := range candidates {
		if !c.at.After(best.at) { // on a tie the fee or default goes first
			best = c
		}
	}
	return best
}

// sleepUntil waits for the timer or the first signal, which it handles.
func (s *schedule) sleepUntil(ctx workflow.Context, at time.Time) {
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	timer := workflow.NewTimer(tctx, at.Sub(workflow.Now(ctx)))
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(timer, func(workflow.Future) {})
	s.addSignals(ctx, sel)
	sel.Select(ctx)
}

func (s *schedule) addSignals(ctx workflow.Context, sel workflow.Selector) {
	sel.AddReceive(s.payoffs, func(c workflow.ReceiveChannel, _ bool) {
		var req PayoffRequest
		c.Receive(ctx, &req)
		s.payoff(ctx, req)
	})
	sel.AddReceive(s.refunds, func(c workflow.ReceiveChannel, _ bool) {
		var req RefundRequest
		c.Receive(ctx, &req)
		s.refund(ctx, req)
	})
	sel.AddReceive(s.changes, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
}

// drainSignals handles signals that are already there, so none is lost by
// continuing as new.
func (s *schedule) drainSignals(ctx workflow.Context) {
	for {
		sel := workflow.NewSelector(ctx)
		s.addSignals(ctx, sel)
		if !sel.HasPending() {
			return
		}
		sel.Select(ctx)
	}
}

// do carries out one due step; done reports that the plan is finished.
func (s *schedule) do(ctx workflow.Context, st step, plan PlanView, now time.Time) (done bool, err error) {
	var a *Activities
	log := workflow.GetLogger(ctx)
	in := PlanStepInput{PlanID: s.in.PlanID, OrderID: s.in.OrderID, Tenant: s.in.Tenant, Installment: st.inst.Number, At: now}
	switch st.what {
	case lateFee:
		if err := steps.Local(ctx, a.AssessLateFee, in).Get(ctx, nil); err != nil {
			log.Warn("late fee refused", "plan", s.in.PlanID, "installment", st.inst.Number, "error", err)
			s.mark(fmt.Sprint("fee", st.inst.Number))
		}
	case defaultPlan:
		if err := steps.Local(ctx, a.DefaultPlan, in).Get(ctx, nil); err != nil {
			log.Warn("default refused", "plan", s.in.PlanID, "error", err)
			s.mark("default")
			return false, nil
		}
		s.carry.DefaultedAt = now
	case chargeOff:
		if err := steps.Local(ctx, a.ChargeOffPlan, in).Get(ctx, nil); err != nil {
			return false, err
		}
		s.status.PlanStatus = financing.StatusChargedOff.String()
		return true, nil
	case collect:
		if !plan.Due.IsPositive() {
			return false, nil
		}
		if s.carry.Installment != st.inst.Number {
			s.carry.Installment, s.carry.Attempt, s.carry.NextAttemptAt = st.inst.Number, 0, time.Time{}
		}
		s.carry.Attempt++
		err := steps.Provider(ctx, s.in.Options.Steps, a.CollectInstallment, CollectInput{
			PlanID: s.in.PlanID, OrderID: s.in.OrderID, Tenant: s.in.Tenant,
			CollectionID: fmt.Sprintf("i%d-a%d", st.inst.Number, s.carry.Attempt), Amount: plan.Due, At: now,
		}).Get(ctx, nil)
		if err != nil {
			log.Warn("installment not collected", "plan", s.in.PlanID, "installment", st.inst.Number, "attempt", s.carry.Attempt, "error", err)
			s.status.Failed++
			s.carry.NextAttemptAt = now.Add(s.in.Options.RetryInterval)
		} else {
			s.status.Collected++
			s.carry.Attempt, s.carry.NextAttemptAt = 0, time.Time{}
		}
	}
	s.status.Carry = s.carry
	return false, nil
}

func (s *schedule) mark(k string) {
	if s.tried == nil {
		s.tried = map[string]bool{}
	}
	s.tried[k] = true
}

// payoff collects the payoff quote at once.
func (s *schedule) payoff(ctx workflow.Context, req PayoffRequest) {
	var a *Activities
	now := workflow.Now(ctx)
	plan, err := s.load(ctx, now)
	if err != nil || plan.Closed || !plan.PayoffQuote.IsPositive() {
		workflow.GetLogger(ctx).Warn("payoff skipped", "plan", s.in.PlanID, "request", req.RequestID, "error", err)
		return
	}
	err = steps.Provider(ctx, s.in.Options.Steps, a.CollectInstallment, CollectInput{
		PlanID: s.in.PlanID, OrderID: s.in.OrderID, Tenant: s.in.Tenant,
		CollectionID: "payoff-" + req.RequestID, Amount: plan.PayoffQuote, Payoff: true, At: now,
	}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("payoff failed", "plan", s.in.PlanID, "request", req.RequestID, "error", err)
	}
}

// refund takes a merchant refund off the plan.
func (s *schedule) refund(ctx workflow.Context, req RefundRequest) {
	var a *Activities
	err := steps.Provider(ctx, s.in.Options.Steps, a.ReducePlan, RefundInput{
		PlanID: s.in.PlanID, OrderID: s.in.OrderID, Tenant: s.in.Tenant, RefundID: req.RefundID, Amount: req.Amount, At: workflow.Now(ctx),
	}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Error("plan refund failed", "plan", s.in.PlanID, "refund", req.RefundID, "error", err)
	}
}
