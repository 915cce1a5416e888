package financing

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
)

// TestRandomLifecycles runs seeded random plan histories: approvals in JPY,
// USD and BHD of every kind and random APRs, then random collections (exact,
// partial, too large), failed attempts, late fees, payoffs (right and wrong
// amounts), refunds, defaults and charge-offs while time moves on. After
// every step it checks the plan's invariants (checkPlan) and, after each
// refund, that it took principal from the back: no installment after one it
// cut still owes principal, and cuts come last installment first. Each
// history is then re-folded after a JSON round trip through the registry and
// must give the same plan.
func TestRandomLifecycles(t *testing.T) {
	const plans, steps = 1500, 40
	rng := rand.New(rand.NewPCG(1, 2026))
	reg := event.NewRegistry()
	Register(reg)
	currencies := []money.Currency{money.JPY, money.USD, money.BHD}
	var accepted, noops, rejected, refunds, totalEvents int
	statuses, types := map[string]int{}, map[string]int{}
	for i := range plans {
		cur := currencies[rng.IntN(len(currencies))]
		kind := kinds[rng.IntN(len(kinds))]
		terms, _ := TermsFor(cur)
		lo, hi := terms.MonthlyMin, terms.MonthlyMax
		bp := 0
		if kind == PayIn4 {
			lo, hi = terms.PayIn4Min, terms.PayIn4Max
		} else {
			bp = rng.IntN(MaxAPRBasisPoints + 1)
		}
		amount, _ := money.FromMinor(lo.MinorUnits()+rng.Int64N(hi.MinorUnits()-lo.MinorUnits()+1), cur)
		limit, _ := money.FromMinor(hi.MinorUnits()*10, cur)
		now := t0
		var p Plan
		history, err := p.Decide(Application{PlanID: fmt.Sprint("pl", i), CustomerID: "cu", OrderID: "o", Amount: amount,
			Terms: Terms{Kind: kind, APR: MustAPR(bp)}, CurrentExposure: money.Zero(cur), ExposureLimit: limit}, now)
		if err != nil || len(history) != 2 {
			t.Fatalf("plan %d: %v %v", i, history, err)
		}
		for _, e := range history {
			p.Apply(e)
		}
		minor := func(max int64) money.Money {
			m, _ := money.FromMinor(rng.Int64N(max+1), cur)
			return m
		}
		for range steps {
			now = now.Add(time.Duration(rng.Int64N(int64(20 * day))))
			id := fmt.Sprint(rng.IntN(8))
			var out []event.Event
			var err error
			switch rng.IntN(20) {
			case 0, 1, 2, 3, 4, 5:
				amt := nextDue(&p)
				if rng.IntN(3) == 0 {
					amt = minor(p.Owed().MinorUnits() + 2)
				}
				out, err = p.Collect("c"+id, amt, now)
			case 6:
				out, err = p.FailCollection("c"+id, minor(amount.MinorUnits()), payment.DeclineInsufficientFunds, now)
			case 7, 8:
				out, err = p.AssessLateFee(1+rng.IntN(kind.Installments()+1), now)
			case 9:
				if rng.IntN(3) > 0 {
					continue // payoffs end plans: keep them rare
				}
				amt := p.PayoffQuote(now)
				if rng.IntN(4) == 0 {
					amt = minor(amount.MinorUnits())
				}
				out, err = p.PayOff("po"+id, amt, now)
			case 10, 11, 12, 13:
				out, err = p.Refund("r"+id, minor(amount.MinorUnits()/3), now)
			case 14, 15:
				out, err = p.Default(now)
			case 16:
				out, err = p.ChargeOff(now)
			default:
				now = now.Add(30 * day) // let it fall behind
				continue
			}
			switch {
			case err != nil:
				rejected++
				continue
			case len(out) == 0:
				noops++
			default:
				accepted++
			}
			before := p.Installments()
			for _, e := range out {
				p.Apply(e)
				types[e.EventType()]++
			}
			history = append(history, out...)
			if err := checkPlan(&p); err != nil {
				t.Fatalf("plan %d: %v\nhistory: %v", i, err, history)
			}
			for _, e := range out {
				if r, ok := e.(*Refunded); ok {
					refunds++
					if err := checkFromTheBack(before, p.Installments(), r); err != nil {
						t.Fatalf("plan %d: %v\nhistory: %v", i, err, history)
					}
				}
			}
		}
		statuses[p.Status().String()]++
		totalEvents += len(history)
		var refolded Plan
		for _, e := range history {
			typ, _, data, err := reg.Encode(e)
			if err != nil {
				t.Fatalf("encode %T: %v", e, err)
			}
			d, err := reg.Decode(typ, data)
			if err != nil {
				t.Fatalf("decode %s %s: %v", typ, data, err)
			}
			refolded.Apply(d)
		}
		if diff := cmp.Diff(&p, &refolded, cmpOpts...); diff != "" {
			t.Fatalf("plan %d differs after a JSON round trip (-live +refolded):\n%s", i, diff)
		}
	}
	t.Logf("%d plans, %d events (%d refunds): %d commands accepted, %d retries yielded nothing, %d rejected; events by type %v; final statuses %v; 0 invariant violations, 0 refunds not from the back, 0 round-trip differences",
		plans, totalEvents, refunds, accepted, noops, rejected, types, statuses)
}

// nextDue is what the oldest installment still owes (zero if nothing).
func nextDue(p *Plan) money.Money {
	for _, in := range p.Installments() {
		if u := in.Unpaid(); u.IsPositive() {
			return u
		}
	}
	return zeroOf(p.Financed())
}

// checkFromTheBack checks that refund r took principal from the back: its
// reductions come in descending installment order, every installment after
// one whose principal it cut owes no principal afterwards, due dates and
// the number of installments did not change, and each installment's
// principal went down by exactly its reduction.
func checkFromTheBack(before, after []Installment, r *Refunded) error {
	if len(before) != len(after) {
		return fmt.Errorf("refund %s: %d installments became %d", r.RefundID, len(before), len(after))
	}
	last := len(before) + 1
	cut := map[int]money.Money{}
	for _, a := range r.Reductions {
		if a.Principal.IsPositive() {
			if a.Installment >= last {
				return fmt.Errorf("refund %s: installment %d cut after %d", r.RefundID, a.Installment, last)
			}
			last = a.Installment
			for _, in := range after[a.Installment:] {
				if in.UnpaidPrincipal().IsPositive() {
					return fmt.Errorf("refund %s cut installment %d but %d still owes %s principal",
						r.RefundID, a.Installment, in.Number, in.UnpaidPrincipal())
				}
			}
		}
		cut[a.Installment] = a.Principal
	}
	for k := range before {
		want := before[k].Principal
		if c, ok := cut[k+1]; ok {
			want = sub(want, c)
		}
		if !after[k].Principal.Equal(want) || !after[k].DueAt.Equal(before[k].DueAt) {
			return fmt.Errorf("refund %s: installment %d principal %s due %s, want %s due %s",
				r.RefundID, k+1, after[k].Principal, after[k].DueAt, want, before[k].DueAt)
		}
	}
	return nil
}
