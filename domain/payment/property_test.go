package payment

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
)

// TestRandomHistoriesKeepInvariants runs seeded random command sequences
// (duplicates, over-limits, late captures and all) against payments in
// currencies with 0, 2 and 3 decimals, applies whatever each decision
// returns, and checks after every step that refunded + disputed + charged
// back <= captured and captured + released <= authorized. At the end of
// each sequence it re-folds the history after a JSON round trip through the
// registry and expects the same payment.
func TestRandomHistoriesKeepInvariants(t *testing.T) {
	const sequences, steps = 2000, 40
	rng := rand.New(rand.NewPCG(20260302, 1))
	reg := event.NewRegistry()
	Register(reg)
	currencies := []money.Currency{money.USD, money.JPY, money.BHD}
	var accepted, noops, rejected, eventsSeen int
	for s := range sequences {
		cur := currencies[rng.IntN(len(currencies))]
		amount := func(max int64) money.Money {
			m, err := money.FromMinor(rng.Int64N(max+1), cur)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		authMinor := 1 + rng.Int64N(1_000_000)
		method := []Method{MethodCard, MethodBNPL}[rng.IntN(2)]
		now := t0
		var p Payment
		var history []event.Event
		authAmt, err := money.FromMinor(authMinor, cur)
		if err != nil {
			t.Fatal(err)
		}
		first, err := p.Authorize(Authorization{PaymentID: fmt.Sprint("p", s), OrderID: "o", Method: method,
			Amount: authAmt, ProviderRef: "ref"}, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range first {
			p.Apply(e)
		}
		history = append(history, first...)
		for range steps {
			if rng.IntN(20) == 0 {
				now = now.Add(10 * 24 * time.Hour) // past a card hold's expiry
			} else {
				now = now.Add(time.Duration(rng.Int64N(int64(12 * time.Hour))))
			}
			id := fmt.Sprint(rng.IntN(6)) // few IDs: retries and reuse happen
			var out []event.Event
			var err error
			switch rng.IntN(24) {
			case 0, 1, 2, 3, 4, 5, 6, 7, 8, 9:
				out, err = p.Capture("c"+id, amount(authMinor*6/10), now)
			case 10, 11, 12, 13, 14, 15:
				out, err = p.Refund("r"+id, amount(authMinor*6/10), now)
			case 16:
				out, err = p.Void(now)
			case 17, 18:
				out, err = p.Expire(now)
			case 19, 20:
				out, err = p.OpenChargeback("cb"+id, amount(authMinor/3), ChargebackFraud, now)
			default:
				if rng.IntN(2) == 0 {
					out, err = p.WinChargeback("cb"+id, now)
				} else {
					out, err = p.LoseChargeback("cb"+id, now)
				}
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
			for _, e := range out {
				p.Apply(e)
			}
			history = append(history, out...)
			if err := checkInvariants(&p); err != nil {
				t.Fatalf("sequence %d: %v\nhistory: %v", s, err, history)
			}
		}
		eventsSeen += len(history)
		refolded := roundTrip(t, reg, history)
		if diff := cmp.Diff(&p, refolded, cmpOpts...); diff != "" {
			t.Fatalf("sequence %d: state differs after a JSON round trip (-live +refolded):\n%s", s, diff)
		}
	}
	t.Logf("%d sequences, %d events: %d commands accepted, %d retries yielded nothing, %d rejected; 0 invariant violations, 0 round-trip differences",
		sequences, eventsSeen, accepted, noops, rejected)
}

// roundTrip encodes every event with the registry, decodes it back and folds
// the result.
func roundTrip(t testing.TB, reg *event.Registry, history []event.Event) *Payment {
	t.Helper()
	var p Payment
	for _, e := range history {
		typ, _, data, err := reg.Encode(e)
		if err != nil {
			t.Fatalf("encode %T: %v", e, err)
		}
		d, err := reg.Decode(typ, data)
		if err != nil {
			t.Fatalf("decode %s %s: %v", typ, data, err)
		}
		p.Apply(d)
	}
	return &p
}
