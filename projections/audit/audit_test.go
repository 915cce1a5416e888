package audit_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/projections"
	"github.com/livecore/livecore/projections/audit"
	"github.com/livecore/livecore/projections/journal"
	"github.com/livecore/livecore/projections/readmodels"
	"github.com/livecore/livecore/projections/simulate"
)

func simulated(t *testing.T, seed uint64, orders int) (*memory.Store, []event.Envelope) {
	t.Helper()
	sim := simulate.New(simulate.Config{Seed: seed, Orders: orders})
	store := memory.New(memory.Config{Now: sim.Now})
	if _, err := sim.Run(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	all, err := store.ReadAll(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return store, all
}

func openSQLite(t *testing.T) *projections.DB {
	t.Helper()
	db, err := projections.OpenSQLite(filepath.Join(t.TempDir(), "rm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// runProjections starts a runner and returns it; it stops with the test.
func runProjections(t *testing.T, db *projections.DB, src projections.Source, projs ...projections.Projection) *projections.Runner {
	t.Helper()
	r, err := projections.NewRunner(projections.Config{DB: db, Source: src, Projections: projs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	})
	return r
}

func waitFor(t *testing.T, r *projections.Runner, name string, pos uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, name, pos); err != nil {
		t.Fatal(err)
	}
}

// TestAsOfReproducesWhatALiveReaderSaw replays a history into a store one
// event at a time while the orders read model follows it live; after each
// order event, a reader reads the order through the API's query. Later,
// AsOf at that position (and at that event's recorded-at time) must
// reconstruct exactly the state the reader saw.
func TestAsOfReproducesWhatALiveReaderSaw(t *testing.T) {
	_, src := simulated(t, 21, 40)
	reg := simulate.Registry()
	var mu sync.Mutex
	var clock time.Time
	store := memory.New(memory.Config{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	db := openSQLite(t)
	r := runProjections(t, db, store, readmodels.Orders{Registry: reg})

	type seen struct {
		pos    uint64
		at     time.Time
		stream string
		row    readmodels.OrderRow
	}
	var views []seen
	ctx := context.Background()
	for _, e := range src {
		mu.Lock()
		clock = e.RecordedAt
		mu.Unlock()
		res, err := store.Append(ctx, e.StreamID, event.Exact(e.Version-1), []event.Proposed{{ID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: e.Metadata}})
		if err != nil {
			t.Fatal(err)
		}
		if event.Category(e.StreamID) != "order" {
			continue
		}
		waitFor(t, r, "orders", res.LastPosition)
		o, err := readmodels.GetOrder(ctx, db, e.Metadata.Tenant, strings.TrimPrefix(e.StreamID, "order-"))
		if err != nil {
			t.Fatal(err)
		}
		views = append(views, seen{res.LastPosition, e.RecordedAt, e.StreamID, o.OrderRow})
	}
	for _, v := range views {
		for _, at := range []audit.At{{Position: v.pos}, {Time: v.at}} {
			st, err := audit.AsOf(ctx, store, reg, v.stream, at, audit.AsOfOptions{Tenant: v.row.Tenant})
			if err != nil {
				t.Fatal(err)
			}
			o := st.View.(audit.OrderView)
			f := func(minor int64) string { return journal.FormatAmount(minor, v.row.Currency) }
			if st.Position != v.pos || o.Status != v.row.Status || o.Total != f(v.row.Total) || o.Paid != f(v.row.Paid) ||
				o.Refunded != f(v.row.Refunded) || o.RefundPending != f(v.row.RefundPending) || o.Cancelled != f(v.row.CancelledValue) ||
				o.PaymentMethod != v.row.PaymentMethod {
				t.Fatalf("%s as of %+v: %+v at %d; the live reader saw %+v at %d", v.stream, at, o, st.Position, v.row, v.pos)
			}
		}
	}
	if _, err := audit.AsOf(ctx, store, reg, views[0].stream, audit.At{}, audit.AsOfOptions{Tenant: "nobody"}); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("as of with another tenant: %v", err)
	}
	t.Logf("%d events replayed live; %d order states seen by a live reader reproduced by AsOf, by position and by time", len(src), len(views))
}

func TestHistory(t *testing.T) {
	store, all := simulated(t, 22, 20)
	ctx := context.Background()
	var stream, tenant string
	n := 0
	for _, e := range all {
		if event.Category(e.StreamID) == "order" && stream == "" {
			stream, tenant = e.StreamID, e.Metadata.Tenant
		}
		if e.StreamID == stream {
			n++
		}
	}
	recs, err := audit.History(ctx, store, stream, audit.HistoryOptions{Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if !r.Linked || r.Version != uint64(i+1) || r.Actor == "" || r.RecordedAt.IsZero() || r.Tenant != tenant {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	if _, err := audit.History(ctx, store, stream, audit.HistoryOptions{Tenant: "other"}); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("another tenant's history: %v", err)
	}
	t.Logf("%s: %d events, all linked; first by %s at %s", stream, len(recs), recs[0].Actor, recs[0].RecordedAt.Format(time.RFC3339))
}

// ledger is a fake provider ledger built from the payment events (as a
// provider that did exactly what livecore recorded), then altered.
type ledger []audit.ProviderRecord

func (l ledger) Records(context.Context, time.Time) ([]audit.ProviderRecord, error) { return l, nil }

func providerView(t *testing.T, all []event.Envelope, reg *event.Registry) ledger {
	t.Helper()
	refs := map[string]string{}
	var out ledger
	for _, e := range all {
		if event.Category(e.StreamID) != "payment" {
			continue
		}
		ev, _ := reg.Decode(e.Type, e.Data)
		id := strings.TrimPrefix(e.StreamID, "payment-")
		add := func(k payment.ResultStatus, m money.Money) {
			out = append(out, audit.ProviderRecord{ProviderRef: refs[id], Kind: k, Amount: m, At: e.RecordedAt})
		}
		switch x := ev.(type) {
		case *payment.Authorized:
			refs[id] = x.ProviderRef
			add(payment.ResultAuthorized, x.Amount)
		case *payment.Captured:
			add(payment.ResultCaptured, x.Amount)
		case *payment.Voided:
			add(payment.ResultVoided, x.Released)
		case *payment.Refunded:
			add(payment.ResultRefunded, x.Amount)
		}
	}
	return out
}

// TestReconcile: a provider that agrees with the events and the journal
// gives no differences; a missing capture, a refund of another amount and
// a record livecore never made are each listed.
func TestReconcile(t *testing.T) {
	store, all := simulated(t, 23, 120)
	reg := simulate.Registry()
	db := openSQLite(t)
	r := runProjections(t, db, store, journal.Projection{Registry: reg})
	waitFor(t, r, "journal", uint64(len(all)))
	ctx := context.Background()

	good := providerView(t, all, reg)
	rep, err := audit.Reconcile(ctx, store, reg, db, good, audit.ReconcileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("clean reconciliation: %+v", rep.Differences)
	}
	bad := append(ledger(nil), good...)
	var captureRef, refundRef string
	for i, rec := range bad {
		if rec.Kind == payment.ResultCaptured && captureRef == "" {
			captureRef = rec.ProviderRef
			bad = append(bad[:i], bad[i+1:]...)
			break
		}
	}
	for i, rec := range bad {
		if rec.Kind == payment.ResultRefunded && rec.ProviderRef != captureRef {
			refundRef = rec.ProviderRef
			bad[i].Amount, _ = rec.Amount.Add(money.MustParse("1", rec.Amount.Currency().Code()))
			break
		}
	}
	bad = append(bad, audit.ProviderRecord{ProviderRef: "psp-ghost", Kind: payment.ResultCaptured, Amount: money.MustParse("9.99", "USD")})
	rep, err = audit.Reconcile(ctx, store, reg, db, bad, audit.ReconcileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]audit.Measure{}
	for _, d := range rep.Differences {
		got[d.ProviderRef] = d.Measure
		t.Logf("difference: %+v", d)
	}
	if len(rep.Differences) != 3 || got[captureRef] != audit.MeasureCaptured || got[refundRef] != audit.MeasureRefunded || got["psp-ghost"] != audit.MeasureCaptured {
		t.Fatalf("differences %+v; want a capture of %s, a refund of %s and psp-ghost", rep.Differences, captureRef, refundRef)
	}
	if !rep.TrialBalance.Nets() {
		t.Fatal("trial balance does not net")
	}
	t.Logf("%d payments reconciled at position %d: clean run 0 differences; 3 injected, 3 listed", rep.Payments, rep.Position)
}

// TestExports checks the CSVs load as a spreadsheet would: a header, ISO
// times, decimal amounts whose debit and credit columns sum equal per
// currency.
func TestExports(t *testing.T) {
	store, all := simulated(t, 24, 60)
	reg := simulate.Registry()
	db := openSQLite(t)
	r := runProjections(t, db, store, journal.Projection{Registry: reg})
	waitFor(t, r, "journal", uint64(len(all)))
	ctx := context.Background()

	var buf bytes.Buffer
	n, err := audit.ExportEvents(ctx, store, &buf, audit.ExportOptions{Tenant: "acme", BOM: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("\uFEFF")) {
		t.Fatal("no BOM")
	}
	recs, err := csv.NewReader(bytes.NewReader(buf.Bytes()[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	acme := 0
	for _, e := range all {
		if e.Metadata.Tenant == "acme" {
			acme++
		}
	}
	if n != acme || len(recs) != acme+1 || recs[0][0] != "position" {
		t.Fatalf("events export: %d rows (%d records), want %d", n, len(recs), acme)
	}
	if _, err := time.Parse(time.RFC3339, recs[1][1]); err != nil {
		t.Fatalf("recorded_at %q: %v", recs[1][1], err)
	}

	buf.Reset()
	n, err = audit.ExportJournal(ctx, db, &buf, audit.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err = csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string][2]decimal.Decimal{}
	for _, rec := range recs[1:] {
		d, err1 := decimal.NewFromString(rec[11])
		c, err2 := decimal.NewFromString(rec[12])
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("amounts %q %q: %v", rec[11], rec[12], err)
		}
		s := sums[rec[10]]
		sums[rec[10]] = [2]decimal.Decimal{s[0].Add(d), s[1].Add(c)}
	}
	for cur, s := range sums {
		if !s[0].Equal(s[1]) {
			t.Errorf("%s: debits %s, credits %s", cur, s[0], s[1])
		}
	}
	tb, err := journal.GetTrialBalance(ctx, db, "", journal.AsOf{})
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := audit.ExportTrialBalance(tb, &buf, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "TOTAL,,,USD,") {
		t.Fatalf("trial balance export:\n%s", buf.String())
	}
	t.Logf("exported %d acme events and %d journal lines; debits = credits per currency: %v", acme, n, sums)
}
