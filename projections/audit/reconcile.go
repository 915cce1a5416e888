package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/projections"
	"github.com/livecore/livecore/projections/journal"
)

// ProviderRecord is one money movement in the payment provider's own
// ledger: an authorization, a capture, a void (the amount released) or a
// refund, under the authorization's provider reference.
type ProviderRecord struct {
	// ProviderRef is the authorization's reference: what livecore stored
	// in payment.Authorized.ProviderRef.
	ProviderRef string
	Kind        payment.ResultStatus // authorized, captured, voided, refunded
	Amount      money.Money
	At          time.Time
}

// ProviderLedger is the port to the provider's records (the sandbox's
// ledger in tests, the provider's settlement reports in production).
type ProviderLedger interface {
	// Records returns every record up to the time given (zero: all).
	Records(ctx context.Context, until time.Time) ([]ProviderRecord, error)
}

// LedgerFunc adapts a function to ProviderLedger, e.g. the payment
// sandbox's ledger (adapters/psp/sandbox: Entry.AuthRef is ProviderRef,
// Op authorize/capture/void/refund maps to the ResultStatus of the same
// name, Amount and At as they are).
type LedgerFunc func(ctx context.Context, until time.Time) ([]ProviderRecord, error)

// Records calls f.
func (f LedgerFunc) Records(ctx context.Context, until time.Time) ([]ProviderRecord, error) {
	return f(ctx, until)
}

// Measure is what a Difference compares. Closed set.
type Measure struct{ name string }

// The measures.
var (
	MeasureAuthorized = Measure{"authorized"}
	MeasureCaptured   = Measure{"captured"}
	MeasureReleased   = Measure{"released"}
	MeasureRefunded   = Measure{"refunded"}
)

func (m Measure) String() string { return m.name }

// MarshalText encodes the name.
func (m Measure) MarshalText() ([]byte, error) { return []byte(m.name), nil }

// Difference is one figure the three sources disagree on. Amounts are
// decimal strings in Currency; "" means the source has no such payment.
type Difference struct {
	PaymentID, OrderID, ProviderRef, Currency string
	Measure                                   Measure
	Events, Journal, Provider                 string
	Note                                      string
}

// ReconcileReport lists the differences between the journal, the payment
// events and the provider's records, cut at the journal's position.
type ReconcileReport struct {
	Position    uint64 // events and journal compared up to here
	Payments    int    // payments compared
	Differences []Difference
	// TrialBalance is the journal's at Position; Nets says it balances.
	TrialBalance journal.TrialBalance
}

// OK reports whether everything agreed and the journal balances.
func (r ReconcileReport) OK() bool { return len(r.Differences) == 0 && r.TrialBalance.Nets() }

// ReconcileOptions configures Reconcile.
type ReconcileOptions struct {
	Tenant string // one tenant's payments only ("" all)
	// Position cuts the comparison (0: the journal's checkpoint).
	Position uint64
}

type paymentFigures struct {
	id, orderID, ref, currency, method, tenant string
	authorized, captured, released, refunded   int64
}

// Reconcile compares, per payment, what the payment events say
// (authorized, captured, released, refunded), what the journal posted
// (captures debited to and refunds credited from the payment's clearing
// account) and what the provider recorded under the authorization's
// reference. It lists every figure that differs, and provider records
// livecore does not know. Declined payments are left out (the provider
// may or may not record declines). The journal must be projected into db
// (journal.Projection); the events are read up to the journal's position
// so both describe the same moment.
func Reconcile(ctx context.Context, src Source, reg *event.Registry, db *projections.DB, ledger ProviderLedger, opts ReconcileOptions) (ReconcileReport, error) {
	pos := opts.Position
	if pos == 0 {
		err := db.QueryRowContext(ctx, `SELECT c.position FROM lc_checkpoints c JOIN lc_projections p ON p.name = c.name AND p.generation = c.generation WHERE c.name = $1`,
			journal.Projection{}.Name()).Scan(&pos)
		if errors.Is(err, sql.ErrNoRows) {
			return ReconcileReport{}, fmt.Errorf("reconcile: the journal is not projected into this database")
		}
		if err != nil {
			return ReconcileReport{}, fmt.Errorf("reconcile: journal position: %w", err)
		}
	}
	rep := ReconcileReport{Position: pos}
	// 1. The payment events.
	pays := map[string]*paymentFigures{}
	var cutTime time.Time
	for from := uint64(1); from <= pos; {
		evs, err := src.ReadAll(ctx, from, int(min(4096, pos-from+1)))
		if err != nil {
			return rep, fmt.Errorf("reconcile: read from %d: %w", from, err)
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			e := &evs[i]
			cutTime = e.RecordedAt
			if event.Category(e.StreamID) != "payment" || (opts.Tenant != "" && e.Metadata.Tenant != opts.Tenant) {
				continue
			}
			ev, err := reg.Decode(e.Type, e.Data)
			if err != nil {
				return rep, fmt.Errorf("reconcile: position %d: %w", e.Position, err)
			}
			id := e.StreamID[len("payment-"):]
			p := pays[id]
			if p == nil {
				p = &paymentFigures{id: id, tenant: e.Metadata.Tenant}
				pays[id] = p
			}
			switch x := ev.(type) {
			case *payment.Authorized:
				p.orderID, p.ref, p.currency, p.method, p.authorized = x.OrderID, x.ProviderRef, x.Amount.Currency().Code(), x.Method.String(), x.Amount.MinorUnits()
			case *payment.Declined:
				p.method = "declined"
			case *payment.Captured:
				p.captured += x.Amount.MinorUnits()
			case *payment.Voided:
				p.released += x.Released.MinorUnits()
			case *payment.Expired:
				p.released += x.Released.MinorUnits()
			case *payment.Refunded:
				p.refunded += x.Amount.MinorUnits()
			}
		}
		from = evs[len(evs)-1].Position + 1
	}
	// 2. The journal, per payment stream.
	type jfig struct{ captured, refunded int64 }
	jour := map[string]*jfig{}
	err := journal.EachPosting(ctx, db, journal.Filter{Tenant: opts.Tenant, AsOf: journal.AsOf{Position: pos}}, func(r journal.PostingRow) error {
		if r.Account != journal.CardClearing.Code() && r.Account != journal.BNPLFunding.Code() {
			return nil
		}
		if event.Category(r.Stream) != "payment" {
			return nil
		}
		id := r.Stream[len("payment-"):]
		j := jour[id]
		if j == nil {
			j = &jfig{}
			jour[id] = j
		}
		switch r.EventType {
		case payment.TypeCaptured:
			j.captured += r.Debit - r.Credit
		case payment.TypeRefunded:
			j.refunded += r.Credit - r.Debit
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	// 3. The provider.
	type pfig struct {
		authorized, captured, released, refunded int64
		currency                                 string
	}
	prov := map[string]*pfig{}
	if ledger != nil {
		recs, err := ledger.Records(ctx, cutTime)
		if err != nil {
			return rep, fmt.Errorf("reconcile: provider records: %w", err)
		}
		for _, r := range recs {
			f := prov[r.ProviderRef]
			if f == nil {
				f = &pfig{currency: r.Amount.Currency().Code()}
				prov[r.ProviderRef] = f
			}
			switch r.Kind {
			case payment.ResultAuthorized:
				f.authorized += r.Amount.MinorUnits()
			case payment.ResultCaptured:
				f.captured += r.Amount.MinorUnits()
			case payment.ResultVoided:
				f.released += r.Amount.MinorUnits()
			case payment.ResultRefunded:
				f.refunded += r.Amount.MinorUnits()
			}
		}
	}
	// Compare.
	ids := make([]string, 0, len(pays))
	for id, p := range pays {
		if p.method != "declined" && p.ref != "" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	known := map[string]bool{}
	for _, id := range ids {
		p := pays[id]
		known[p.ref] = true
		rep.Payments++
		j := jour[id]
		if j == nil {
			j = &jfig{}
		}
		pf, inProvider := prov[p.ref]
		diff := func(m Measure, ev int64, jr *int64, pv *int64, note string) {
			if (jr == nil || *jr == ev) && (pv == nil || *pv == ev) {
				return
			}
			d := Difference{PaymentID: id, OrderID: p.orderID, ProviderRef: p.ref, Currency: p.currency, Measure: m,
				Events: journal.FormatAmount(ev, p.currency), Note: note}
			if jr != nil {
				d.Journal = journal.FormatAmount(*jr, p.currency)
			}
			if pv != nil {
				d.Provider = journal.FormatAmount(*pv, p.currency)
			}
			rep.Differences = append(rep.Differences, d)
		}
		if ledger != nil && !inProvider {
			rep.Differences = append(rep.Differences, Difference{PaymentID: id, OrderID: p.orderID, ProviderRef: p.ref, Currency: p.currency,
				Measure: MeasureAuthorized, Events: journal.FormatAmount(p.authorized, p.currency), Note: "the provider has no record of this authorization"})
			diff(MeasureCaptured, p.captured, &j.captured, nil, "journal disagrees with the capture events")
			diff(MeasureRefunded, p.refunded, &j.refunded, nil, "journal disagrees with the refund events")
			continue
		}
		var pa, pc, pr, pd *int64
		if ledger != nil {
			pa, pc, pr, pd = &pf.authorized, &pf.captured, &pf.released, &pf.refunded
		}
		diff(MeasureAuthorized, p.authorized, nil, pa, "")
		diff(MeasureCaptured, p.captured, &j.captured, pc, "")
		diff(MeasureReleased, p.released, nil, pr, "")
		diff(MeasureRefunded, p.refunded, &j.refunded, pd, "")
	}
	for ref, f := range prov {
		if !known[ref] {
			rep.Differences = append(rep.Differences, Difference{ProviderRef: ref, Currency: f.currency, Measure: MeasureCaptured,
				Provider: journal.FormatAmount(f.captured, f.currency), Note: "livecore has no payment with this provider reference"})
		}
	}
	sort.SliceStable(rep.Differences, func(i, j int) bool { return rep.Differences[i].ProviderRef < rep.Differences[j].ProviderRef })
	if rep.TrialBalance, err = journal.GetTrialBalance(ctx, db, opts.Tenant, journal.AsOf{Position: pos}); err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	return rep, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
