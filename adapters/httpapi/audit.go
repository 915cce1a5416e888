package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/projections"
	"github.com/livecore/livecore/projections/audit"
	"github.com/livecore/livecore/projections/journal"
)

// Audit is what the /v1/audit endpoints read besides streams: the whole
// log (verification) and the finance journal read model.
type Audit struct {
	// Log is the event store's $all (required).
	Log audit.Source
	// ReadDB holds the journal (projections/journal) (required).
	ReadDB *projections.DB
	// Position and WaitFor are the projection runner's: what a read model
	// has applied, and waiting until it has applied a position (required).
	Position func(name string) uint64
	WaitFor  func(ctx context.Context, name string, pos uint64) error
}

func (a *Audit) validate() error {
	if a.Log == nil || a.ReadDB == nil || a.Position == nil || a.WaitFor == nil {
		return errors.New("httpapi: Backend.Audit needs Log, ReadDB, Position and WaitFor")
	}
	return nil
}

func (s *Server) auditRoutes() {
	s.handle("GET /v1/audit/verify", s.handleVerify, RoleFinance)
	s.handle("GET /v1/audit/journal", s.handleJournal, RoleFinance)
	s.handle("GET /v1/audit/journal.csv", s.handleJournalCSV, RoleFinance)
	s.handle("GET /v1/audit/streams/{stream}/state", s.handleStreamState, RoleFinance)
}

func queryUint(r *http.Request, name string) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil || n == 0 {
		return 0, &Error{Code: CodeMalformed, Message: name + " must be a positive integer",
			Fields: []FieldError{{Field: name, Code: "invalid_parameter", Message: "must be a positive integer"}}}
	}
	return n, nil
}

func queryTime(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, &Error{Code: CodeMalformed, Message: name + " must be an RFC 3339 date-time",
			Fields: []FieldError{{Field: name, Code: "invalid_parameter", Message: "must be an RFC 3339 date-time"}}}
	}
	return t, nil
}

type verificationJSON struct {
	OK               bool      `json:"ok"`
	CheckedEvents    uint64    `json:"checked_events"`
	FromPosition     uint64    `json:"from_position"`
	ToPosition       uint64    `json:"to_position"`
	HeadHash         *string   `json:"head_hash"`
	FirstBadPosition *uint64   `json:"first_bad_position"`
	Problem          *string   `json:"problem"`
	VerifiedAt       time.Time `json:"verified_at"`
}

// handleVerify recomputes the hash chains of the log (all of it, or a
// position range). The chain links every tenant's events, so the report is
// about the log; it names positions and the kind of damage only, never
// another tenant's stream or data.
func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) error {
	from, err := queryUint(r, "from")
	if err != nil {
		return err
	}
	to, err := queryUint(r, "to")
	if err != nil {
		return err
	}
	if from > 0 && to > 0 && to < from {
		return &Error{Code: CodeMalformed, Message: "to must not be below from", Fields: []FieldError{{Field: "to", Code: "invalid_parameter", Message: "must not be below from"}}}
	}
	rep, err := audit.Verify(r.Context(), s.backend.Audit.Log, audit.VerifyOptions{From: from, To: to, Streams: s.backend.Events})
	if err != nil {
		return Internal(fmt.Errorf("verify: %w", err))
	}
	v := verificationJSON{OK: rep.OK(), CheckedEvents: rep.Events, FromPosition: rep.From, ToPosition: rep.To, VerifiedAt: s.now()}
	if rep.Last.Position > 0 {
		h := rep.Last.GlobalHash.String()
		v.HeadHash = &h
	}
	if p := rep.Problem; p != nil {
		pos, kind := p.Position, p.Kind.String()
		v.FirstBadPosition, v.Problem = &pos, &kind
	}
	SetPosition(w, rep.To)
	return writeJSON(w, http.StatusOK, v)
}

// awaitReadModel honours X-Livecore-Min-Position on a read model: wait
// until it has applied the position (at most MinPositionWait, then 503),
// and return the position it reflects.
func (s *Server) awaitReadModel(w http.ResponseWriter, r *http.Request, name string) (uint64, error) {
	a := s.backend.Audit
	if err := s.awaitMinPosition(w, r, func(ctx context.Context, pos uint64) error { return a.WaitFor(ctx, name, pos) }); err != nil {
		return 0, err
	}
	return a.Position(name), nil
}

type journalLineJSON struct {
	Account string `json:"account"`
	Name    string `json:"name"`
	Debit   Money  `json:"debit"`
	Credit  Money  `json:"credit"`
}

type journalEntryJSON struct {
	ID          string            `json:"id"`
	Position    uint64            `json:"position"`
	EventID     string            `json:"event_id"`
	OrderID     *string           `json:"order_id"`
	OccurredAt  time.Time         `json:"occurred_at"`
	Description string            `json:"description"`
	Lines       []journalLineJSON `json:"lines"`
}

type journalPage struct {
	Entries     []journalEntryJSON `json:"entries"`
	NextCursor  *string            `json:"next_cursor"`
	Consistency consistency        `json:"consistency"`
}

func minorMoney(minor int64, currency string) (Money, error) {
	c, err := money.ParseCurrency(currency)
	if err != nil {
		return Money{}, err
	}
	m, err := money.FromMinor(minor, c)
	if err != nil {
		return Money{}, err
	}
	return MoneyOf(m), nil
}

// handleJournal serves the tenant's journal entries (one per event that
// moved money), in log order, from the journal read model.
func (s *Server) handleJournal(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	from, err := queryTime(r, "from")
	if err != nil {
		return err
	}
	to, err := queryTime(r, "to")
	if err != nil {
		return err
	}
	limit, err := parseLimit(r)
	if err != nil {
		return err
	}
	var after uint64
	if c := q.Get("cursor"); c != "" {
		if after, err = strconv.ParseUint(c, 10, 63); err != nil {
			return &Error{Code: CodeMalformed, Message: "cursor is not one this server gave", Fields: []FieldError{{Field: "cursor", Code: "invalid_parameter", Message: "unknown cursor"}}}
		}
	}
	f := journal.Filter{Tenant: string(mustTenant(r)), FromTime: from, After: after}
	if a := q.Get("account"); a != "" {
		if f.Account, err = journal.ParseAccount(a); err != nil {
			return &Error{Code: CodeInvalid, Message: "unknown account", Fields: []FieldError{{Field: "account", Code: "invalid_value", Message: "is not a journal account"}}}
		}
	}
	pos, err := s.awaitReadModel(w, r, "journal")
	if err != nil {
		return err
	}
	f.AsOf = journal.AsOf{Position: pos}
	page := journalPage{Entries: []journalEntryJSON{}, Consistency: consistency{Position: pos, Source: sourceReadModel}}
	errFull := errors.New("page full")
	err = journal.EachPosting(r.Context(), s.backend.Audit.ReadDB, f, func(p journal.PostingRow) error {
		at := projections.ParseTimestamp(p.RecordedAt)
		if !to.IsZero() && !at.Before(to) {
			return nil
		}
		n := len(page.Entries)
		if n == 0 || page.Entries[n-1].Position != uint64(p.Position) {
			if n == limit {
				c := strconv.FormatUint(page.Entries[n-1].Position, 10)
				page.NextCursor = &c
				return errFull
			}
			e := journalEntryJSON{ID: fmt.Sprintf("je_%d", p.Position), Position: uint64(p.Position), EventID: p.EventID, OccurredAt: at.UTC(), Description: p.EventType}
			if p.Memo != "" {
				e.Description += ": " + p.Memo
			}
			if p.OrderID != "" {
				id := p.OrderID
				e.OrderID = &id
			}
			page.Entries = append(page.Entries, e)
			n++
		}
		debit, err := minorMoney(p.Debit, p.Currency)
		if err != nil {
			return err
		}
		credit, err := minorMoney(p.Credit, p.Currency)
		if err != nil {
			return err
		}
		name := p.Account
		if a, err := journal.ParseAccount(p.Account); err == nil {
			name = a.Name()
		}
		page.Entries[n-1].Lines = append(page.Entries[n-1].Lines, journalLineJSON{Account: p.Account, Name: name, Debit: debit, Credit: credit})
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		return Internal(err)
	}
	SetPosition(w, pos)
	return writeJSON(w, http.StatusOK, page)
}

// handleJournalCSV streams the tenant's journal postings as CSV
// (audit.ExportJournal's columns), for spreadsheets.
func (s *Server) handleJournalCSV(w http.ResponseWriter, r *http.Request) error {
	if _, err := queryTime(r, "from"); err != nil {
		return err
	}
	if _, err := queryTime(r, "to"); err != nil {
		return err
	}
	pos, err := s.awaitReadModel(w, r, "journal")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="journal.csv"`)
	SetPosition(w, pos)
	bw := bufio.NewWriter(w)
	if _, err := audit.ExportJournal(r.Context(), s.backend.Audit.ReadDB, bw, audit.ExportOptions{Tenant: string(mustTenant(r)), To: pos}); err != nil {
		return err // after the header: logged only
	}
	return bw.Flush()
}

type streamStateJSON struct {
	Stream   string    `json:"stream"`
	Version  uint64    `json:"version"`
	Position uint64    `json:"position"`
	AsOf     time.Time `json:"as_of"`
	State    any       `json:"state"`
}

// handleStreamState replays one of the tenant's streams up to a time or a
// position (audit.AsOf).
func (s *Server) handleStreamState(w http.ResponseWriter, r *http.Request) error {
	stream := r.PathValue("stream")
	nf := notFound("stream", "")
	if containsPAN(stream) {
		return nf
	}
	at, err := queryTime(r, "as_of")
	if err != nil {
		return err
	}
	pos, err := queryUint(r, "position")
	if err != nil {
		return err
	}
	if at.IsZero() == (pos == 0) {
		return &Error{Code: CodeInvalid, Message: "give exactly one of as_of and position",
			Fields: []FieldError{{Field: "as_of", Code: "one_of", Message: "give exactly one of as_of and position"}}}
	}
	st, err := audit.AsOf(r.Context(), s.backend.Events, s.backend.Registry, stream, audit.At{Position: pos, Time: at}, audit.AsOfOptions{Tenant: string(mustTenant(r))})
	if errors.Is(err, projections.ErrNotFound) {
		return nf
	}
	if errors.Is(err, audit.ErrUnknownStream) {
		return &Error{Code: CodeInvalid, Message: "this kind of stream has no state to replay", Err: err}
	}
	if err != nil {
		return Internal(err)
	}
	asOf := at
	if asOf.IsZero() {
		asOf = st.RecordedAt
	}
	if asOf.IsZero() {
		asOf = s.now()
	}
	return writeJSON(w, http.StatusOK, streamStateJSON{Stream: stream, Version: st.Version, Position: st.Position, AsOf: asOf.UTC(), State: st.View})
}
