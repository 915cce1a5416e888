package audit

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/livecore/livecore/projections"
	"github.com/livecore/livecore/projections/journal"
)

// ExportOptions shapes a CSV export. Exports are UTF-8 with a header row;
// times are ISO 8601 UTC with milliseconds ("2026-01-05T09:00:01.250Z");
// amounts are plain decimal strings with the currency's decimals and a
// currency column ("12.30", "USD"), never floats or minor units.
type ExportOptions struct {
	// Tenant limits the export to one tenant's events or postings.
	Tenant string
	// From and To bound positions, inclusive (0: from the start, to the
	// head).
	From, To uint64
	// BOM writes a UTF-8 byte-order mark first, which Excel needs to read
	// UTF-8 (other tools may show it as a stray character).
	BOM bool
}

const exportTime = "2006-01-02T15:04:05.000Z"

func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(exportTime)
}

// cell neutralises text a spreadsheet would run as a formula (a leading
// =, +, -, @, tab or carriage return) by prefixing an apostrophe (OWASP
// CSV injection). Amount columns never go through it.
func cell(s string) string {
	if s != "" {
		switch s[0] {
		case '=', '+', '-', '@', '\t', '\r':
			return "'" + s
		}
	}
	return s
}

type csvOut struct {
	w *csv.Writer
	n int
}

func newCSV(w io.Writer, bom bool, header ...string) (*csvOut, error) {
	if bom {
		if _, err := io.WriteString(w, "\uFEFF"); err != nil {
			return nil, err
		}
	}
	c := &csvOut{w: csv.NewWriter(w)}
	return c, c.w.Write(header)
}

func (c *csvOut) row(fields ...string) error {
	c.n++
	return c.w.Write(fields)
}

func (c *csvOut) close() error {
	c.w.Flush()
	return c.w.Error()
}

// ExportEvents writes $all (or a tenant's part of it) as CSV, one row per
// event: position, recorded_at, stream, version, event_id, type, tenant,
// actor, correlation_id, causation_id, region, hash, prev_hash,
// global_hash, data (the event's JSON). It returns the rows written.
func ExportEvents(ctx context.Context, src Source, w io.Writer, opts ExportOptions) (int, error) {
	out, err := newCSV(w, opts.BOM, "position", "recorded_at", "stream", "version", "event_id", "type", "tenant", "actor",
		"correlation_id", "causation_id", "region", "hash", "prev_hash", "global_hash", "data")
	if err != nil {
		return 0, fmt.Errorf("export events: %w", err)
	}
	head, err := src.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("export events: %w", err)
	}
	to := head
	if opts.To > 0 && opts.To < head {
		to = opts.To
	}
	for from := max(opts.From, 1); from <= to; {
		evs, err := src.ReadAll(ctx, from, int(min(4096, to-from+1)))
		if err != nil {
			return out.n, fmt.Errorf("export events from %d: %w", from, err)
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			e := &evs[i]
			if opts.Tenant != "" && e.Metadata.Tenant != opts.Tenant {
				continue
			}
			if err := out.row(strconv.FormatUint(e.Position, 10), isoTime(e.RecordedAt), cell(e.StreamID), strconv.FormatUint(e.Version, 10),
				e.ID, e.Type, cell(e.Metadata.Tenant), cell(e.Metadata.Actor), cell(e.Metadata.CorrelationID), cell(e.Metadata.CausationID),
				cell(e.Metadata.Region), e.Hash.String(), e.PrevHash.String(), e.GlobalHash.String(), cell(string(e.Data))); err != nil {
				return out.n, fmt.Errorf("export events: %w", err)
			}
		}
		from = evs[len(evs)-1].Position + 1
	}
	if err := out.close(); err != nil {
		return out.n, fmt.Errorf("export events: %w", err)
	}
	return out.n, nil
}

// ExportJournal writes the journal's postings as CSV, one row per posting
// line: position, line, recorded_at, tenant, order_id, ref, event_type,
// event_id, account, account_name, currency, debit, credit, memo. Debit
// and credit are decimal strings ("0.00" on the other side), so a
// spreadsheet SUM of each column per currency gives equal totals.
func ExportJournal(ctx context.Context, db *projections.DB, w io.Writer, opts ExportOptions) (int, error) {
	out, err := newCSV(w, opts.BOM, "position", "line", "recorded_at", "tenant", "order_id", "ref", "event_type", "event_id",
		"account", "account_name", "currency", "debit", "credit", "memo")
	if err != nil {
		return 0, fmt.Errorf("export journal: %w", err)
	}
	f := journal.Filter{Tenant: opts.Tenant, AsOf: journal.AsOf{Position: opts.To}}
	err = journal.EachPosting(ctx, db, f, func(p journal.PostingRow) error {
		if uint64(p.Position) < opts.From {
			return nil
		}
		name := p.Account
		if a, err := journal.ParseAccount(p.Account); err == nil {
			name = a.Name()
		}
		return out.row(strconv.FormatInt(p.Position, 10), strconv.FormatInt(p.LineNo, 10), isoTime(projections.ParseTimestamp(p.RecordedAt)),
			cell(p.Tenant), cell(p.OrderID), cell(p.Ref), p.EventType, p.EventID, p.Account, name, p.Currency,
			journal.FormatAmount(p.Debit, p.Currency), journal.FormatAmount(p.Credit, p.Currency), cell(p.Memo))
	})
	if err != nil {
		return out.n, fmt.Errorf("export journal: %w", err)
	}
	if err := out.close(); err != nil {
		return out.n, fmt.Errorf("export journal: %w", err)
	}
	return out.n, nil
}

// ExportTrialBalance writes a trial balance as CSV: account, account_name,
// type, currency, debit, credit, balance (debit minus credit), then one
// TOTAL row per currency.
func ExportTrialBalance(tb journal.TrialBalance, w io.Writer, bom bool) error {
	out, err := newCSV(w, bom, "account", "account_name", "type", "currency", "debit", "credit", "balance")
	if err != nil {
		return err
	}
	for _, b := range tb.Balances {
		c := b.Currency
		if err := out.row(b.Account.Code(), b.Account.Name(), b.Account.Type().String(), c,
			journal.FormatAmount(b.Debit, c), journal.FormatAmount(b.Credit, c), journal.FormatAmount(b.Net(), c)); err != nil {
			return err
		}
	}
	for _, c := range sortedKeys(tb.Totals) {
		t := tb.Totals[c]
		if err := out.row("TOTAL", "", "", c, journal.FormatAmount(t.Debit, c), journal.FormatAmount(t.Credit, c), journal.FormatAmount(t.Net(), c)); err != nil {
			return err
		}
	}
	return out.close()
}
