package order

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
)

const propertySeed = 20260302

func minor(r *rand.Rand, c money.Currency, max int64) money.Money {
	m, err := money.FromMinor(r.Int64N(max+1), c)
	if err != nil {
		panic(err)
	}
	return m
}

// TestPropertyTotals places random carts and checks, against an independent
// sum in minor units, that Total = sum(lines) - discounts + tax exactly, and
// that exactly the carts with a negative total are refused.
func TestPropertyTotals(t *testing.T) {
	const iterations = 5000
	r := rand.New(rand.NewPCG(propertySeed, 1))
	currencies := []money.Currency{money.USD, money.JPY, money.BHD, money.MustCurrency("CLF")}
	placed, refused := 0, 0
	for i := range iterations {
		c := currencies[r.IntN(len(currencies))]
		p := PlaceOrder{OrderID: fmt.Sprint("o", i), CustomerID: "c", Region: "r", Currency: c}
		var want int64
		for range 1 + r.IntN(8) {
			q := 1 + r.Int64N(50)
			price := minor(r, c, 1_000_000)
			p.Lines = append(p.Lines, LineItem{SKU: "S", Quantity: q, UnitPrice: price})
			want += q * price.MinorUnits()
		}
		for range r.IntN(3) {
			d := minor(r, c, 5_000_000)
			if d.IsZero() {
				continue
			}
			p.Discounts = append(p.Discounts, Adjustment{Label: "D", Amount: d})
			want -= d.MinorUnits()
		}
		for range r.IntN(3) {
			x := minor(r, c, 500_000)
			p.Taxes = append(p.Taxes, Adjustment{Label: "T", Amount: x})
			want += x.MinorUnits()
		}
		var o Order
		events, err := o.Place(p, t0)
		if want < 0 {
			if !errors.Is(err, ErrNegativeTotal) {
				t.Fatalf("cart %d: total %d minor units: err = %v", i, want, err)
			}
			refused++
			continue
		}
		if err != nil {
			t.Fatalf("cart %d: %v", i, err)
		}
		o.Apply(events[0])
		placed++
		if got := o.Total().MinorUnits(); got != want {
			t.Fatalf("cart %d: total %s, independent sum %d minor units", i, o.Total(), want)
		}
		checkTotals(t, &o)
	}
	t.Logf("%d random carts (seed %d): %d placed with exact totals, %d refused for a negative total", iterations, propertySeed, placed, refused)
}

func checkTotals(t *testing.T, o *Order) {
	t.Helper()
	sum := decimal.Zero
	for _, l := range o.Lines() {
		if !l.Amount.Amount().Equal(l.UnitPrice.Amount().Mul(decimal.NewFromInt(l.Quantity))) {
			t.Fatalf("line %d amount %s != %d x %s", l.No, l.Amount, l.Quantity, l.UnitPrice)
		}
		sum = sum.Add(l.Amount.Amount())
	}
	for _, d := range o.Discounts() {
		sum = sum.Sub(d.Amount.Amount())
	}
	for _, x := range o.Taxes() {
		sum = sum.Add(x.Amount.Amount())
	}
	if !sum.Equal(o.Total().Amount()) {
		t.Fatalf("total %s != sum of lines - discounts + tax = %s", o.Total(), sum)
	}
	st, _ := o.Subtotal().Sub(o.DiscountTotal())
	st, _ = st.Add(o.TaxTotal())
	if !st.Equal(o.Total()) {
		t.Fatalf("total %s != subtotal - discount total + tax total = %s", o.Total(), st)
	}
}

// checkInvariants holds after every event.
func checkInvariants(t *testing.T, o *Order) {
	t.Helper()
	checkTotals(t, o)
	var open, fulfilled int64
	for _, l := range o.Lines() {
		if l.Cancelled < 0 || l.Fulfilled < 0 || l.Open < 0 || l.Returning < 0 || l.Returned < 0 {
			t.Fatalf("line %d negative: %+v", l.No, l)
		}
		if l.Returning+l.Returned > l.Fulfilled {
			t.Fatalf("line %d returns exceed fulfilled: %+v", l.No, l)
		}
		open += l.Open
		fulfilled += l.Fulfilled
	}
	if o.Status() == StatusFulfilled && open != 0 {
		t.Fatalf("fulfilled with %d open", open)
	}
	if o.Status() == StatusPartiallyFulfilled && (open == 0 || fulfilled == 0) {
		t.Fatalf("partially fulfilled with %d open, %d fulfilled", open, fulfilled)
	}
	out, _ := o.Refunded().Add(o.RefundPending())
	if out.GreaterThan(o.Paid()) || o.Refunded().IsNegative() || o.RefundPending().IsNegative() {
		t.Fatalf("refunded %s + pending %s > paid %s", o.Refunded(), o.RefundPending(), o.Paid())
	}
}

// randomCommand runs one random, often invalid, command against o.
func randomCommand(r *rand.Rand, o *Order, step int) ([]event.Event, error) {
	lines := func() []LineQuantity {
		var out []LineQuantity
		for range 1 + r.IntN(2) {
			out = append(out, LineQuantity{Line: 1 + r.IntN(len(o.lines)+1), Quantity: int64(r.IntN(3))})
		}
		return out
	}
	amount := func() money.Money {
		m, err := o.total.MulRound(decimal.New(int64(r.IntN(60)), -2))
		if err != nil {
			panic(err)
		}
		return m
	}
	id := func(prefix string) string { return fmt.Sprint(prefix, r.IntN(step+1)) }
	switch r.IntN(11) {
	case 0:
		methods := []PaymentMethod{MethodCard, MethodBNPL}
		plans := []PlanKind{{}, PlanPayIn4, PlanMonthly6}
		return o.StartCheckout(methods[r.IntN(2)], plans[r.IntN(3)], t0)
	case 1, 2:
		return o.Confirm("pay", o.total, t0)
	case 3:
		return o.Cancel("why", t0)
	case 4:
		return o.CancelLines(lines(), "why", t0)
	case 5, 6:
		return o.FulfillLines(id("s"), lines(), t0)
	case 7:
		return o.Complete(t0)
	case 8:
		return o.RequestRefund(id("r"), amount(), "why", t0)
	case 9:
		for _, rid := range slices.Sorted(maps.Keys(o.refunds)) {
			if rf := o.refunds[rid]; !rf.settled {
				part, _ := rf.requested.MulRound(decimal.New(int64(r.IntN(101)), -2))
				return o.RecordRefund(rid, part, t0)
			}
		}
		return nil, nil
	default:
		if r.IntN(2) == 0 {
			return o.RequestReturn(id("ret"), lines(), "why", t0)
		}
		for _, rid := range slices.Sorted(maps.Keys(o.returns)) {
			if !o.returns[rid].received {
				return o.ReceiveReturn(rid, lines(), t0)
			}
		}
		return nil, nil
	}
}

// TestPropertyFoldRoundTrip runs random command sequences, checks the
// invariants after every decision, and checks that folding the events and
// re-folding them after Encode -> Decode through the registry give equal
// state.
func TestPropertyFoldRoundTrip(t *testing.T) {
	const sequences, steps = 400, 60
	r := rand.New(rand.NewPCG(propertySeed, 2))
	reg := registry(t)
	var accepted, rejected, total int
	for seq := range sequences {
		o := &Order{}
		p := placeCmd()
		p.OrderID = fmt.Sprint("o", seq)
		p.Lines[0].Quantity = 1 + r.Int64N(5)
		events, err := o.Place(p, t0)
		if err != nil {
			t.Fatal(err)
		}
		history := append([]event.Event(nil), events...)
		o.Apply(events[0])
		for step := range steps {
			es, err := randomCommand(r, o, step)
			if err != nil {
				rejected++
				continue
			}
			accepted++
			for _, e := range es {
				o.Apply(e)
			}
			history = append(history, es...)
			checkInvariants(t, o)
		}
		total += len(history)
		fresh := fold(history)
		if diff := cmp.Diff(o, fresh, cmpOpts...); diff != "" {
			t.Fatalf("sequence %d: incremental vs fresh fold (-inc +fresh):\n%s", seq, diff)
		}
		var decoded []event.Event
		for _, e := range history {
			typ, _, data, err := reg.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			d, err := reg.Decode(typ, data)
			if err != nil {
				t.Fatal(err)
			}
			decoded = append(decoded, d)
		}
		if diff := cmp.Diff(fresh, fold(decoded), cmpOpts...); diff != "" {
			t.Fatalf("sequence %d: fold vs fold after JSON round trip (-orig +decoded):\n%s", seq, diff)
		}
	}
	t.Logf("%d sequences x %d random commands (seed %d): %d accepted, %d rejected, %d events folded and re-folded after a JSON round trip",
		sequences, steps, propertySeed, accepted, rejected, total)
}
