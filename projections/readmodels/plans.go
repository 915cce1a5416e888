package readmodels

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/projections"
)

// PlanRow is one BNPL plan: the credit decision and, if approved, what is
// owed and paid. Outstanding amounts are what the installments still owe
// (all scheduled interest included). Amounts in minor units of Currency.
type PlanRow struct {
	PlanID, Tenant, CustomerID, OrderID, Status, Kind, Currency string
	APRBasisPoints, Financed, Collected, FeesAssessed           int64
	Refunded, ReturnedToCustomer, WrittenOff                    int64
	PrincipalOutstanding, InterestOutstanding, FeesOutstanding  int64
	Installments, FailedCollections                             int64
	Reasons, DecidedAt, UpdatedAt                               string
	Version, Position                                           int64
}

var plansSpec = projections.Spec[PlanRow]{
	Name: "rm_plans",
	Cols: []string{"plan_id", "tenant", "customer_id", "order_id", "status", "kind", "currency", "apr_bp", "financed", "collected", "fees_assessed",
		"refunded", "returned_to_customer", "written_off", "principal_outstanding", "interest_outstanding", "fees_outstanding",
		"installments", "failed_collections", "reasons", "decided_at", "updated_at", "version", "position"},
	Key: 1,
	Fields: func(r *PlanRow) []any {
		return []any{&r.PlanID, &r.Tenant, &r.CustomerID, &r.OrderID, &r.Status, &r.Kind, &r.Currency, &r.APRBasisPoints, &r.Financed, &r.Collected, &r.FeesAssessed,
			&r.Refunded, &r.ReturnedToCustomer, &r.WrittenOff, &r.PrincipalOutstanding, &r.InterestOutstanding, &r.FeesOutstanding,
			&r.Installments, &r.FailedCollections, &r.Reasons, &r.DecidedAt, &r.UpdatedAt, &r.Version, &r.Position}
	},
	Indexes: []string{
		"CREATE INDEX {{table}}_customer ON {{table}} (tenant, customer_id)",
		"CREATE INDEX {{table}}_order ON {{table}} (tenant, order_id)",
	},
}

// InstallmentRow is one installment: what it owes in all (principal,
// interest, fee, after refunds, waivers and write-offs) and what was paid.
type InstallmentRow struct {
	PlanID                               string
	Number                               int64
	Tenant, Currency, DueAt              string
	Principal, Interest, Fee             int64
	PaidPrincipal, PaidInterest, PaidFee int64
	Position                             int64
}

// Unpaid is what the installment still owes.
func (in InstallmentRow) Unpaid() int64 {
	return in.Principal - in.PaidPrincipal + in.Interest - in.PaidInterest + in.Fee - in.PaidFee
}

var installmentsSpec = projections.Spec[InstallmentRow]{
	Name: "rm_plan_installments",
	Cols: []string{"plan_id", "number", "tenant", "currency", "due_at", "principal", "interest", "fee", "paid_principal", "paid_interest", "paid_fee", "position"},
	Key:  2,
	Fields: func(r *InstallmentRow) []any {
		return []any{&r.PlanID, &r.Number, &r.Tenant, &r.Currency, &r.DueAt, &r.Principal, &r.Interest, &r.Fee, &r.PaidPrincipal, &r.PaidInterest, &r.PaidFee, &r.Position}
	},
	Indexes: []string{"CREATE INDEX {{table}}_due ON {{table}} (tenant, due_at)"},
}

// Plans is the BNPL read model: plans and their installments, for
// receivables and aging. Its name "plans" is stable.
type Plans struct{ Registry *event.Registry }

func (Plans) Name() string { return "plans" }
func (Plans) Version() int { return 1 }
func (Plans) Tables() []projections.Table {
	return []projections.Table{plansSpec.Table(), installmentsSpec.Table()}
}

// Decodes implements projections.Decoding: Apply decodes the plan events.
func (p Plans) Decodes(e *event.Envelope) *event.Registry {
	if event.Category(e.StreamID) == "plan" {
		return p.Registry
	}
	return nil
}

// Apply folds the batch's plan events.
func (p Plans) Apply(ctx context.Context, tx projections.Tx, batch []event.Envelope) error {
	type decoded struct {
		env *event.Envelope
		ev  event.Event
	}
	var evs []decoded
	ids := map[string]bool{}
	for i := range batch {
		e := &batch[i]
		if p.Decodes(e) == nil {
			continue
		}
		ev, err := tx.Decode(p.Registry, e)
		if err != nil {
			return fmt.Errorf("position %d: %w", e.Position, err)
		}
		evs = append(evs, decoded{e, ev})
		ids[e.StreamID[len("plan-"):]] = true
	}
	if len(evs) == 0 {
		return nil
	}
	plans, insts := projections.NewRowSet[PlanRow](), projections.NewRowSet[InstallmentRow]()
	instsOf := map[string][]*InstallmentRow{}
	ikey := func(plan string, n int64) string { return plan + "\x00" + strconv.FormatInt(n, 10) }
	idList := projections.Keys(ids)
	if err := projections.Load(ctx, tx, plansSpec, "plan_id", idList, func(r *PlanRow) { plans.Put(r.PlanID, r) }); err != nil {
		return err
	}
	if err := projections.Load(ctx, tx, installmentsSpec, "plan_id", idList, func(r *InstallmentRow) {
		insts.Put(ikey(r.PlanID, r.Number), r)
		instsOf[r.PlanID] = append(instsOf[r.PlanID], r)
	}); err != nil {
		return err
	}
	for _, d := range evs {
		id := d.env.StreamID[len("plan-"):]
		pl := plans.Get(id)
		if pl == nil {
			pl = &PlanRow{PlanID: id, Tenant: d.env.Metadata.Tenant}
			plans.Put(id, pl)
		}
		pos := int64(d.env.Position)
		inst := func(n int) *InstallmentRow {
			r := insts.Get(ikey(id, int64(n)))
			if r != nil {
				r.Position = pos
				insts.Touch(ikey(id, int64(n)))
			}
			return r
		}
		pay := func(allocs []financing.Allocation) {
			for _, a := range allocs {
				if in := inst(a.Installment); in != nil {
					in.PaidPrincipal += a.Principal.MinorUnits()
					in.PaidInterest += a.Interest.MinorUnits()
					in.PaidFee += a.Fee.MinorUnits()
				}
			}
		}
		reduce := func(allocs []financing.Allocation) {
			for _, a := range allocs {
				if in := inst(a.Installment); in != nil {
					in.Principal -= a.Principal.MinorUnits()
					in.Interest -= a.Interest.MinorUnits()
					in.Fee -= a.Fee.MinorUnits()
				}
			}
		}
		owed := func() int64 {
			var n int64
			for _, in := range instsOf[id] {
				n += in.Unpaid()
			}
			return n
		}
		switch e := d.ev.(type) {
		case *financing.CreditDecided:
			pl.CustomerID, pl.OrderID, pl.Kind, pl.Currency = e.CustomerID, e.OrderID, e.Kind.String(), e.Amount.Currency().Code()
			pl.APRBasisPoints, pl.Financed = int64(e.APR.BasisPoints()), e.Amount.MinorUnits()
			pl.Status = financing.StatusDeclined.String()
			if e.Approved {
				pl.Status = financing.StatusActive.String()
			}
			pl.Reasons = ""
			for i, r := range e.Reasons {
				if i > 0 {
					pl.Reasons += ","
				}
				pl.Reasons += r.String()
			}
			pl.DecidedAt, pl.UpdatedAt = projections.Timestamp(e.DecidedAt), projections.Timestamp(e.DecidedAt)
		case *financing.Originated:
			for _, s := range e.Installments {
				r := &InstallmentRow{PlanID: id, Number: int64(s.Number), Tenant: pl.Tenant, Currency: pl.Currency, DueAt: projections.Timestamp(s.DueAt),
					Principal: s.Principal.MinorUnits(), Interest: s.Interest.MinorUnits(), Position: pos}
				insts.Put(ikey(id, r.Number), r)
				insts.Touch(ikey(id, r.Number))
				instsOf[id] = append(instsOf[id], r)
			}
			pl.Installments = int64(len(e.Installments))
			pl.UpdatedAt = projections.Timestamp(e.OriginatedAt)
		case *financing.InstallmentCollected:
			pay(e.Allocations)
			pl.Collected += e.Amount.MinorUnits()
			if owed() <= 0 {
				pl.Status = financing.StatusPaidOff.String()
			}
			pl.UpdatedAt = projections.Timestamp(e.CollectedAt)
		case *financing.CollectionFailed:
			pl.FailedCollections++
			pl.UpdatedAt = projections.Timestamp(e.FailedAt)
		case *financing.LateFeeAssessed:
			if in := inst(e.Installment); in != nil {
				in.Fee += e.Fee.MinorUnits()
			}
			pl.FeesAssessed += e.Fee.MinorUnits()
			pl.UpdatedAt = projections.Timestamp(e.AssessedAt)
		case *financing.PaidOff:
			pay(e.Allocations)
			reduce(e.Waived)
			pl.Collected += e.Amount.MinorUnits()
			pl.Status = financing.StatusPaidOff.String()
			pl.UpdatedAt = projections.Timestamp(e.PaidOffAt)
		case *financing.Refunded:
			reduce(e.Reductions)
			pl.Refunded += e.Amount.MinorUnits()
			pl.ReturnedToCustomer += e.ReturnedToCustomer.MinorUnits()
			if (pl.Status == financing.StatusActive.String() || pl.Status == financing.StatusDefaulted.String()) && owed() <= 0 {
				pl.Status = financing.StatusRefunded.String()
			}
			pl.UpdatedAt = projections.Timestamp(e.RefundedAt)
		case *financing.Defaulted:
			pl.Status = financing.StatusDefaulted.String()
			pl.UpdatedAt = projections.Timestamp(e.DefaultedAt)
		case *financing.ChargedOff:
			reduce(e.Allocations)
			reduce(e.Waived)
			pl.WrittenOff += e.WrittenOff.MinorUnits()
			pl.Status = financing.StatusChargedOff.String()
			pl.UpdatedAt = projections.Timestamp(e.ChargedOffAt)
		}
		pl.PrincipalOutstanding, pl.InterestOutstanding, pl.FeesOutstanding = 0, 0, 0
		for _, in := range instsOf[id] {
			pl.PrincipalOutstanding += in.Principal - in.PaidPrincipal
			pl.InterestOutstanding += in.Interest - in.PaidInterest
			pl.FeesOutstanding += in.Fee - in.PaidFee
		}
		pl.Version, pl.Position = int64(d.env.Version), pos
		plans.Touch(id)
	}
	if err := projections.Save(ctx, tx, plansSpec, plans.Changed()); err != nil {
		return err
	}
	return projections.Save(ctx, tx, installmentsSpec, insts.Changed())
}

// Plan is a plan with its installments.
type Plan struct {
	PlanRow
	Schedule []InstallmentRow
}

// GetPlan returns tenant's plan id with its installments, or
// projections.ErrNotFound.
func GetPlan(ctx context.Context, db *projections.DB, tenant, id string) (Plan, error) {
	rows, err := projections.Query(ctx, db, plansSpec, `WHERE tenant = $1 AND plan_id = $2`, tenant, id)
	if err != nil {
		return Plan{}, err
	}
	if len(rows) == 0 {
		return Plan{}, fmt.Errorf("plan %s: %w", id, projections.ErrNotFound)
	}
	sched, err := projections.Query(ctx, db, installmentsSpec, `WHERE tenant = $1 AND plan_id = $2 ORDER BY number`, tenant, id)
	return Plan{PlanRow: rows[0], Schedule: sched}, err
}

// ListCustomerPlans returns tenant's plans of a customer.
func ListCustomerPlans(ctx context.Context, db *projections.DB, tenant, customerID string, max int) ([]PlanRow, error) {
	return projections.Query(ctx, db, plansSpec, `WHERE tenant = $1 AND customer_id = $2 ORDER BY decided_at DESC, plan_id`+limit(max), tenant, customerID)
}

// Aging buckets receivables by days past due of each installment, as the
// domain buckets delinquency: current (not yet due), 1-30, 31-60, 61-90
// and 90+ days. Amounts are minor units.
type Aging struct {
	Currency                                   string
	Current, Days1To30, Days31To60, Days61To90 int64
	Over90, Total                              int64
	Plans                                      int64 // open plans counted
}

// ReceivablesAging returns tenant's open BNPL receivables (plans active or
// defaulted) aged at asOf, one row per currency. An installment not yet
// due counts its unpaid principal and fee only (its interest is not owed
// yet: payoff waives it); a due one counts everything unpaid.
func ReceivablesAging(ctx context.Context, db *projections.DB, tenant string, asOf time.Time) ([]Aging, error) {
	rows, err := db.QueryContext(ctx, `SELECT i.currency, i.plan_id, i.due_at, i.principal - i.paid_principal, i.interest - i.paid_interest, i.fee - i.paid_fee
		FROM rm_plan_installments i JOIN rm_plans p ON p.plan_id = i.plan_id
		WHERE p.tenant = $1 AND p.status IN ('active', 'defaulted')
		ORDER BY i.currency, i.plan_id, i.number`, tenant)
	if err != nil {
		return nil, fmt.Errorf("aging: %w", err)
	}
	defer rows.Close()
	by := map[string]*Aging{}
	var order []string
	plans := map[string]bool{}
	for rows.Next() {
		var cur, plan, due string
		var principal, interest, fee int64
		if err := rows.Scan(&cur, &plan, &due, &principal, &interest, &fee); err != nil {
			return nil, fmt.Errorf("aging: %w", err)
		}
		a := by[cur]
		if a == nil {
			a = &Aging{Currency: cur}
			by[cur] = a
			order = append(order, cur)
		}
		if !plans[plan] {
			plans[plan] = true
			a.Plans++
		}
		dueAt := projections.ParseTimestamp(due)
		amt := principal + fee
		days := 0
		if asOf.After(dueAt) {
			amt += interest
			days = int(asOf.Sub(dueAt) / (24 * time.Hour))
		}
		if amt <= 0 {
			continue
		}
		switch financing.BucketOf(days) {
		case financing.BucketCurrent:
			a.Current += amt
		case financing.Bucket1To30:
			a.Days1To30 += amt
		case financing.Bucket31To60:
			a.Days31To60 += amt
		case financing.Bucket61To90:
			a.Days61To90 += amt
		default:
			a.Over90 += amt
		}
		a.Total += amt
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("aging: %w", err)
	}
	out := make([]Aging, 0, len(order))
	for _, c := range order {
		out = append(out, *by[c])
	}
	return out, nil
}

// OpenPlan names a BNPL plan whose installment schedule still runs.
type OpenPlan struct {
	PlanID, OrderID, Tenant string
}

// OpenPlans lists the plans still collecting (active or defaulted), every
// tenant: what a region re-drives the schedules of when it takes their
// home over. keep, if set, filters by plan ID.
func OpenPlans(ctx context.Context, db *projections.DB, keep func(planID string) bool) ([]OpenPlan, error) {
	rows, err := db.QueryContext(ctx, `SELECT plan_id, order_id, tenant FROM rm_plans WHERE status IN ('active', 'defaulted') ORDER BY plan_id`)
	if err != nil {
		return nil, fmt.Errorf("open plans: %w", err)
	}
	defer rows.Close()
	var out []OpenPlan
	for rows.Next() {
		var p OpenPlan
		if err := rows.Scan(&p.PlanID, &p.OrderID, &p.Tenant); err != nil {
			return nil, fmt.Errorf("open plans: %w", err)
		}
		if keep == nil || keep(p.PlanID) {
			out = append(out, p)
		}
	}
	return out, rows.Err()
}
