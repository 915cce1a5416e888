package readmodels

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/livecore/livecore/projections"
)

// spec describes a read-model table whose rows are Go structs of int64
// and string fields. Projections fold a batch of events into rows in
// memory (loading the rows the batch touches first, one query per table)
// and write every changed row back with multi-row upserts: a few
// statements per batch instead of several per event. That is what makes
// catch-up fast, and since the fold is plain Go over the rows a rebuild
// produces the same rows as the live run.
type spec[R any] struct {
	name    string   // logical table name (the view readers query)
	cols    []string // column names; the first nkey form the primary key
	nkey    int
	fields  func(r *R) []any // pointers to r's fields, in cols order (*int64 or *string)
	indexes []string         // CREATE INDEX statements with {{table}}
}

// table is the projections.Table of s: DDL derived from the field types.
func (s spec[R]) table() projections.Table {
	var r R
	var b strings.Builder
	b.WriteString("CREATE TABLE {{table}} (")
	for i, p := range s.fields(&r) {
		typ := "TEXT"
		if _, ok := p.(*int64); ok {
			typ = "BIGINT"
		}
		fmt.Fprintf(&b, "%s %s NOT NULL, ", s.cols[i], typ)
	}
	fmt.Fprintf(&b, "PRIMARY KEY (%s))", strings.Join(s.cols[:s.nkey], ", "))
	return projections.Table{Name: s.name, DDL: b.String(), Indexes: s.indexes}
}

// maxParams keeps statements under SQLite's and PostgreSQL's limits on
// bound parameters (32,766 and 65,535).
const maxParams = 30000

func placeholders(b *strings.Builder, from, n int) {
	b.WriteByte('(')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	b.WriteByte(')')
}

// load reads the rows whose column col is one of vals and passes each to
// add.
func load[R any](ctx context.Context, tx projections.Tx, s spec[R], col string, vals []string, add func(*R)) error {
	for len(vals) > 0 {
		n := min(len(vals), 900)
		var b strings.Builder
		fmt.Fprintf(&b, "SELECT %s FROM %s WHERE %s IN ", strings.Join(s.cols, ", "), tx.Table(s.name), col)
		placeholders(&b, 1, n)
		args := make([]any, n)
		for i, v := range vals[:n] {
			args[i] = v
		}
		rows, err := tx.QueryContext(ctx, b.String(), args...)
		if err != nil {
			return fmt.Errorf("load %s: %w", s.name, err)
		}
		for rows.Next() {
			r := new(R)
			if err := rows.Scan(s.fields(r)...); err != nil {
				rows.Close()
				return fmt.Errorf("load %s: %w", s.name, err)
			}
			add(r)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("load %s: %w", s.name, err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("load %s: %w", s.name, err)
		}
		vals = vals[n:]
	}
	return nil
}

// save upserts rows (each primary key at most once).
func save[R any](ctx context.Context, tx projections.Tx, s spec[R], rows []*R) error {
	per := max(1, min(500, maxParams/len(s.cols)))
	var set strings.Builder
	for i, c := range s.cols[s.nkey:] {
		if i > 0 {
			set.WriteString(", ")
		}
		fmt.Fprintf(&set, "%s = excluded.%s", c, c)
	}
	for len(rows) > 0 {
		n := min(len(rows), per)
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", tx.Table(s.name), strings.Join(s.cols, ", "))
		args := make([]any, 0, n*len(s.cols))
		for i, r := range rows[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			placeholders(&b, len(args)+1, len(s.cols))
			for _, p := range s.fields(r) {
				switch p := p.(type) {
				case *int64:
					args = append(args, *p)
				case *string:
					args = append(args, *p)
				default:
					panic(fmt.Sprintf("readmodels: %s: field of type %T", s.name, p))
				}
			}
		}
		fmt.Fprintf(&b, " ON CONFLICT (%s) DO UPDATE SET %s", strings.Join(s.cols[:s.nkey], ", "), set.String())
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("save %s: %w", s.name, err)
		}
		rows = rows[n:]
	}
	return nil
}

// rowSet is the rows of one table a batch touches, by key.
type rowSet[R any] struct {
	rows  map[string]*R
	dirty map[string]bool
	order []string // keys in first-touch order, for deterministic writes
}

func newRowSet[R any]() *rowSet[R] {
	return &rowSet[R]{rows: map[string]*R{}, dirty: map[string]bool{}}
}

func (rs *rowSet[R]) put(key string, r *R) { rs.rows[key] = r }

// get returns the row, or nil.
func (rs *rowSet[R]) get(key string) *R { return rs.rows[key] }

// touch marks a row changed.
func (rs *rowSet[R]) touch(key string) {
	if !rs.dirty[key] {
		rs.dirty[key] = true
		rs.order = append(rs.order, key)
	}
}

func (rs *rowSet[R]) changed() []*R {
	out := make([]*R, 0, len(rs.order))
	for _, k := range rs.order {
		out = append(out, rs.rows[k])
	}
	return out
}

// Times are stored as fixed-width UTC ISO 8601 text: readable in any SQL
// client, and ordered as text the way they are ordered in time.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func parseTS(s string) time.Time {
	t, _ := time.Parse(timeLayout, s)
	return t
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
