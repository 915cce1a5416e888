package projections

import (
	"context"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Spec describes a read-model table whose rows are Go structs of int64
// and string fields. Projections fold a batch of events into rows in
// memory (loading the rows the batch touches first, one query per table)
// and write every changed row back with multi-row upserts: a few
// statements per batch instead of several per event. That is what makes
// catch-up fast, and since the fold is plain Go over the rows a rebuild
// produces the same rows as the live run.
type Spec[R any] struct {
	Name    string   // logical table name (the view readers query)
	Cols    []string // column names; the first Key form the primary key
	Key     int
	Fields  func(r *R) []any // pointers to r's fields, in Cols order (*int64 or *string)
	Indexes []string         // CREATE INDEX statements with {{table}}
	// Append marks a table whose rows are only ever inserted (a key is
	// never saved twice): Save writes plain INSERTs, which PostgreSQL
	// executes without ON CONFLICT's speculative insertion. Saving an
	// existing key then fails loudly instead of updating it.
	Append bool
}

// Table is the projection Table of s: DDL derived from the field types
// (*int64 fields are BIGINT, *string fields TEXT, all NOT NULL).
func (s Spec[R]) Table() Table {
	var r R
	var b strings.Builder
	b.WriteString("CREATE TABLE {{table}} (")
	for i, p := range s.Fields(&r) {
		fmt.Fprintf(&b, "%s %s NOT NULL, ", s.Cols[i], sqlType(p))
	}
	fmt.Fprintf(&b, "PRIMARY KEY (%s))", strings.Join(s.Cols[:s.Key], ", "))
	return Table{Name: s.Name, DDL: b.String(), Indexes: s.Indexes}
}

// sqlType is the column type of a Spec field: BIGINT for *int64, TEXT
// for *string.
func sqlType(field any) string {
	if _, ok := field.(*int64); ok {
		return "BIGINT"
	}
	return "TEXT"
}

// maxParams keeps statements under SQLite's and PostgreSQL's limits on
// bound parameters (32,766 and 65,535).
const maxParams = 30000

// placeholders writes a parenthesised list of n parameters numbered from
// from: $n on PostgreSQL; on SQLite anonymous ? (the same positions),
// because SQLite resolves each $n by a linear search of the statement's
// parameter names, which makes a multi-row statement quadratic.
func placeholders(b *strings.Builder, d Dialect, from, n int) {
	b.WriteByte('(')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if d == SQLite {
			b.WriteByte('?')
			continue
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	b.WriteByte(')')
}

// Statements have power-of-two row counts (Save) or IN-list lengths
// (Load, padded by repeating the last value), so their texts repeat from
// batch to batch and the drivers' prepared statements are reused (SQLite:
// the DB's statement cache; PostgreSQL: pgx's per-connection cache).
const (
	maxSaveRows = 256
	maxLoadVals = 512
)

// pow2 is the largest power of two <= n (n >= 1).
func pow2(n int) int { return 1 << (bits.Len(uint(n)) - 1) }

type sqlKey struct {
	d          Dialect
	table, col string // col "" for Save
	n          int
	append     bool
}

// sqlTexts caches statement texts by table, column and size, up to
// maxSQLTexts of them (beyond, texts are built each time).
var (
	sqlTexts  sync.Map // sqlKey -> string
	nSQLTexts atomic.Int64
)

const maxSQLTexts = 4096

func sqlText(k sqlKey, build func() string) string {
	if s, ok := sqlTexts.Load(k); ok {
		return s.(string)
	}
	s := build()
	if nSQLTexts.Add(1) <= maxSQLTexts {
		sqlTexts.Store(k, s)
	}
	return s
}

// Load reads the rows whose column col is one of vals and passes each to
// add.
func Load[R any](ctx context.Context, tx Tx, s Spec[R], col string, vals []string, add func(*R)) error {
	table := tx.Table(s.Name)
	if tx.Dialect == Postgres {
		if len(vals) == 0 {
			return nil
		}
		q := sqlText(sqlKey{tx.Dialect, table, col, 0, false}, func() string {
			return fmt.Sprintf("SELECT %s FROM %s WHERE %s = ANY($1::text[])", strings.Join(s.Cols, ", "), table, col)
		})
		return loadRows(ctx, tx, s, q, []any{vals}, add)
	}
	for len(vals) > 0 {
		n := min(len(vals), maxLoadVals)
		size := pow2(n)
		if size < n {
			size *= 2
		}
		q := sqlText(sqlKey{tx.Dialect, table, col, size, false}, func() string {
			var b strings.Builder
			fmt.Fprintf(&b, "SELECT %s FROM %s WHERE %s IN ", strings.Join(s.Cols, ", "), table, col)
			placeholders(&b, tx.Dialect, 1, size)
			return b.String()
		})
		args := make([]any, size)
		for i := range size {
			args[i] = vals[min(i, n-1)] // padded with the last value: IN is a set
		}
		if err := loadRows(ctx, tx, s, q, args, add); err != nil {
			return err
		}
		vals = vals[n:]
	}
	return nil
}

func loadRows[R any](ctx context.Context, tx Tx, s Spec[R], q string, args []any, add func(*R)) error {
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("load %s: %w", s.Name, err)
	}
	for rows.Next() {
		r := new(R)
		if err := rows.Scan(s.Fields(r)...); err != nil {
			rows.Close()
			return fmt.Errorf("load %s: %w", s.Name, err)
		}
		add(r)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("load %s: %w", s.Name, err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load %s: %w", s.Name, err)
	}
	return nil
}

// Save upserts rows (each primary key at most once).
func Save[R any](ctx context.Context, tx Tx, s Spec[R], rows []*R) error {
	table := tx.Table(s.Name)
	if tx.Dialect == Postgres {
		return saveArrays(ctx, tx, s, table, rows)
	}
	per := max(1, min(maxSaveRows, maxParams/len(s.Cols)))
	var args []any
	for len(rows) > 0 {
		n := pow2(min(len(rows), per))
		q := sqlText(sqlKey{tx.Dialect, table, "", n, s.Append}, func() string {
			var b strings.Builder
			fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(s.Cols, ", "))
			for i := range n {
				if i > 0 {
					b.WriteByte(',')
				}
				placeholders(&b, tx.Dialect, i*len(s.Cols)+1, len(s.Cols))
			}
			s.onConflict(&b)
			return b.String()
		})
		args = args[:0]
		for _, r := range rows[:n] {
			for _, p := range s.Fields(r) {
				switch p := p.(type) {
				case *int64:
					args = append(args, *p)
				case *string:
					args = append(args, *p)
				default:
					panic(fmt.Sprintf("readmodels: %s: field of type %T", s.Name, p))
				}
			}
		}
		if _, err := tx.exec(ctx, q, args...); err != nil {
			return fmt.Errorf("save %s: %w", s.Name, err)
		}
		rows = rows[n:]
	}
	return nil
}

// onConflict writes the upsert clause of a Save statement (nothing for an
// Append table).
func (s Spec[R]) onConflict(b *strings.Builder) {
	if s.Append {
		return
	}
	b.WriteString(" ON CONFLICT (")
	b.WriteString(strings.Join(s.Cols[:s.Key], ", "))
	b.WriteString(") DO UPDATE SET ")
	for i, c := range s.Cols[s.Key:] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%s = excluded.%s", c, c)
	}
}

// saveArrays is Save on PostgreSQL: one statement per table and batch,
// whatever its size, with a parameter per column holding that column's
// values as an array (INSERT ... SELECT FROM unnest(...)). The server
// binds len(Cols) arrays instead of a parameter per value, and the client
// encodes []int64 and []string columns without boxing each value.
func saveArrays[R any](ctx context.Context, tx Tx, s Spec[R], table string, rows []*R) error {
	if len(rows) == 0 {
		return nil
	}
	var zero R
	proto := s.Fields(&zero)
	q := sqlText(sqlKey{tx.Dialect, table, "", 0, s.Append}, func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (%s) SELECT * FROM unnest(", table, strings.Join(s.Cols, ", "))
		for i, p := range proto {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d::%s[]", i+1, sqlType(p))
		}
		b.WriteByte(')')
		s.onConflict(&b)
		return b.String()
	})
	ints := make([][]int64, len(proto))
	strs := make([][]string, len(proto))
	for i, p := range proto {
		switch p.(type) {
		case *int64:
			ints[i] = make([]int64, 0, len(rows))
		case *string:
			strs[i] = make([]string, 0, len(rows))
		default:
			panic(fmt.Sprintf("projections: %s: field of type %T", s.Name, p))
		}
	}
	for _, r := range rows {
		for i, p := range s.Fields(r) {
			switch p := p.(type) {
			case *int64:
				ints[i] = append(ints[i], *p)
			case *string:
				strs[i] = append(strs[i], *p)
			}
		}
	}
	args := make([]any, len(proto))
	for i := range proto {
		if ints[i] != nil {
			args[i] = ints[i]
		} else {
			args[i] = strs[i]
		}
	}
	if _, err := tx.exec(ctx, q, args...); err != nil {
		return fmt.Errorf("save %s: %w", s.Name, err)
	}
	return nil
}

// RowSet is the rows of one table a batch touches, by key.
type RowSet[R any] struct {
	rows  map[string]*R
	dirty map[string]bool
	keys  []string // keys in first-touch order, for deterministic writes
}

func NewRowSet[R any]() *RowSet[R] {
	return &RowSet[R]{rows: map[string]*R{}, dirty: map[string]bool{}}
}

func (rs *RowSet[R]) Put(key string, r *R) { rs.rows[key] = r }

// Get returns the row, or nil.
func (rs *RowSet[R]) Get(key string) *R { return rs.rows[key] }

// Touch marks a row changed.
func (rs *RowSet[R]) Touch(key string) {
	if !rs.dirty[key] {
		rs.dirty[key] = true
		rs.keys = append(rs.keys, key)
	}
}

func (rs *RowSet[R]) Changed() []*R {
	out := make([]*R, 0, len(rs.keys))
	for _, k := range rs.keys {
		out = append(out, rs.rows[k])
	}
	return out
}

// Times are stored as fixed-width UTC ISO 8601 text: readable in any SQL
// client, and ordered as text the way they are ordered in time.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

func Timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

func ParseTimestamp(s string) time.Time {
	t, _ := time.Parse(TimeLayout, s)
	return t
}

func Keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Columns is s's column list, comma-separated, for SELECTs.
func (s Spec[R]) Columns() string { return strings.Join(s.Cols, ", ") }

// Query selects rows of s's view (the active generation) with the given
// tail ("WHERE ... ORDER BY ... LIMIT ...").
func Query[R any](ctx context.Context, db *DB, s Spec[R], tail string, args ...any) ([]R, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+s.Columns()+` FROM `+s.Name+` `+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", s.Name, err)
	}
	defer rows.Close()
	var out []R
	for rows.Next() {
		var r R
		if err := rows.Scan(s.Fields(&r)...); err != nil {
			return nil, fmt.Errorf("query %s: %w", s.Name, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
