package httpapi

import (
	"bytes"
	"reflect"
	"strconv"
)

// shapeOK is DecodeJSON's fast path: it reports whether body is one JSON
// value (and only whitespace around it) that the walker would accept for
// t without a single finding: exact member names, no member twice, the
// right JSON kind everywhere, no null where the walker refuses one,
// integers that fit. It scans the bytes without allocating; anything it is
// unsure of (an escaped member name, a kind the walker leaves to
// encoding/json) is false, and DecodeJSON then takes the walker's path,
// which names what is wrong. Values are not checked beyond their JSON
// kind: encoding/json checks them while filling (and a refusal sends
// DecodeJSON down the walker's path too).
func shapeOK(body []byte, t reflect.Type) bool {
	s := scanner{b: body}
	s.ws()
	if !s.value(t) {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eat skips white space and consumes c; false if the next byte is not c.
func (s *scanner) eat(c byte) bool {
	s.ws()
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// sep ends a member or element: after white space, ',' means more follow
// and close ends the object or array; anything else is malformed (ok
// false).
func (s *scanner) sep(close byte) (more, ok bool) {
	s.ws()
	switch s.peek() {
	case ',':
		s.i++
		return true, true
	case close:
		s.i++
		return false, true
	}
	return false, false
}

// items consumes the rest of an array or object whose opening byte has
// been consumed: no items, or items read by item and separated by ',', up
// to close.
func (s *scanner) items(close byte, item func() bool) bool {
	s.ws()
	if s.peek() == close {
		s.i++
		return true
	}
	for {
		if !item() {
			return false
		}
		more, ok := s.sep(close)
		if !ok || !more {
			return ok
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) lit(w string) bool {
	if bytes.HasPrefix(s.b[s.i:], []byte(w)) {
		s.i += len(w)
		return true
	}
	return false
}

// str consumes a string and returns its raw content (escapes kept) and
// whether it had any.
func (s *scanner) str() (raw []byte, escaped, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], escaped, true
		case c == '\\':
			escaped = true
			j++ // the escaped byte (encoding/json validates the escape)
		case c < 0x20:
			return nil, false, false
		}
	}
	return nil, false, false
}

// num consumes a number literal (roughly: encoding/json validates it).
func (s *scanner) num() ([]byte, bool) {
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	return s.b[start:s.i], s.i > start
}

// any consumes one JSON value of any kind.
func (s *scanner) any(depth int) bool {
	if depth > 10000 {
		return false
	}
	s.ws()
	switch c := s.peek(); {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '{':
		s.i++
		return s.items('}', func() bool {
			s.ws()
			_, _, ok := s.str()
			return ok && s.eat(':') && s.any(depth+1)
		})
	case c == '[':
		s.i++
		return s.items(']', func() bool { return s.any(depth + 1) })
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	default:
		_, ok := s.num()
		return ok
	}
}

// value consumes one value and checks it against t as the walker does.
func (s *scanner) value(t reflect.Type) bool {
	s.ws()
	pt := reflect.PointerTo(t)
	switch {
	case t.Kind() == reflect.Pointer:
		if s.peek() == 'n' {
			return s.lit("null")
		}
		return s.value(t.Elem())
	case pt.Implements(jsonUnmarshaler):
		return s.any(0)
	case pt.Implements(textUnmarshaler):
		_, _, ok := s.str()
		return ok
	}
	switch t.Kind() {
	case reflect.Interface:
		return s.any(0)
	case reflect.Struct:
		fields := fieldsOf(t)
		return s.object(func(name []byte) (reflect.Type, bool) {
			f, ok := fields[string(name)]
			return f, ok
		})
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return false
		}
		if s.peek() == 'n' {
			return s.lit("null")
		}
		return s.object(func([]byte) (reflect.Type, bool) { return t.Elem(), true })
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			return false // base64: the walker's path
		}
		if t.Kind() == reflect.Slice && s.peek() == 'n' {
			return s.lit("null")
		}
		if s.peek() != '[' {
			return false
		}
		s.i++
		return s.items(']', func() bool { return s.value(t.Elem()) })
	case reflect.String:
		_, _, ok := s.str()
		return ok
	case reflect.Bool:
		return s.lit("true") || s.lit("false")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := s.num()
		if !ok {
			return false
		}
		_, err := strconv.ParseInt(string(n), 10, t.Bits())
		return err == nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := s.num()
		if !ok {
			return false
		}
		_, err := strconv.ParseUint(string(n), 10, t.Bits())
		return err == nil
	case reflect.Float32, reflect.Float64:
		n, ok := s.num()
		if !ok {
			return false
		}
		_, err := strconv.ParseFloat(string(n), t.Bits())
		return err == nil
	}
	return false
}

// maxFastMembers bounds the members of one object the fast path checks
// for duplicates; a larger object takes the walker's path.
const maxFastMembers = 32

// object consumes an object whose members are known by member, each
// given once, with names that need no unescaping.
func (s *scanner) object(member func(name []byte) (reflect.Type, bool)) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	var seen [maxFastMembers][]byte
	n := 0
	return s.items('}', func() bool {
		s.ws()
		name, escaped, ok := s.str()
		if !ok || escaped || n == maxFastMembers {
			return false
		}
		for _, prev := range seen[:n] {
			if bytes.Equal(prev, name) {
				return false
			}
		}
		seen[n] = name
		n++
		ft, known := member(name)
		return known && s.eat(':') && s.value(ft)
	})
}

// canonicalFast is canonicalJSON for the common body: one JSON value
// (whitespace around it) whose strings and member names are printable
// ASCII without escapes and whose objects give no member twice. It writes
// what json.Marshal writes for the value decoded with UseNumber: members
// sorted by name, no insignificant whitespace, numbers as written, '<',
// '>' and '&' escaped. ok is false for any other body (canonicalJSON then
// decodes and re-encodes it).
func canonicalFast(body []byte) (out []byte, ok bool) {
	s := scanner{b: body}
	s.ws()
	out = make([]byte, 0, len(body))
	out, ok = s.canon(out, 0)
	if !ok {
		return nil, false
	}
	s.ws()
	return out, s.i == len(s.b)
}

// member is an object member: its name and where its value starts.
type member struct {
	name []byte
	at   int
}

func (s *scanner) canon(out []byte, depth int) ([]byte, bool) {
	if depth > 1000 {
		return nil, false
	}
	s.ws()
	switch c := s.peek(); {
	case c == '"':
		raw, ok := s.plainStr()
		if !ok {
			return nil, false
		}
		return appendPlainString(out, raw), true
	case c == '{':
		s.i++
		var buf [16]member
		ms := buf[:0]
		if !s.items('}', func() bool {
			s.ws()
			name, ok := s.plainStr()
			if !ok || !s.eat(':') {
				return false
			}
			s.ws()
			ms = append(ms, member{name: name, at: s.i})
			return s.any(depth + 1)
		}) {
			return nil, false
		}
		end := s.i
		// Few members: insertion sort, and a duplicate is found on the way.
		for i := 1; i < len(ms); i++ {
			for j := i; j > 0; j-- {
				c := bytes.Compare(ms[j-1].name, ms[j].name)
				if c == 0 {
					return nil, false // encoding/json keeps the last: the slow path
				}
				if c < 0 {
					break
				}
				ms[j-1], ms[j] = ms[j], ms[j-1]
			}
		}
		out = append(out, '{')
		for i, m := range ms {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendPlainString(out, m.name)
			out = append(out, ':')
			s.i = m.at
			var ok bool
			if out, ok = s.canon(out, depth+1); !ok {
				return nil, false
			}
		}
		s.i = end
		return append(out, '}'), true
	case c == '[':
		s.i++
		out = append(out, '[')
		first := true
		if !s.items(']', func() bool {
			if !first {
				out = append(out, ',')
			}
			first = false
			var ok bool
			out, ok = s.canon(out, depth+1)
			return ok
		}) {
			return nil, false
		}
		return append(out, ']'), true
	case c == 't':
		return append(out, "true"...), s.lit("true")
	case c == 'f':
		return append(out, "false"...), s.lit("false")
	case c == 'n':
		return append(out, "null"...), s.lit("null")
	default:
		n, ok := s.num()
		if !ok || !validNumber(n) {
			return nil, false
		}
		return append(out, n...), true
	}
}

// plainStr consumes a string of printable ASCII without escapes.
func (s *scanner) plainStr() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			raw := s.b[s.i+1 : j]
			s.i = j + 1
			return raw, true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, false
		}
	}
	return nil, false
}

// appendPlainString quotes printable ASCII as encoding/json does (HTML
// characters escaped).
func appendPlainString(out, raw []byte) []byte {
	out = append(out, '"')
	for _, c := range raw {
		switch c {
		case '<':
			out = append(out, `\u003c`...)
		case '>':
			out = append(out, `\u003e`...)
		case '&':
			out = append(out, `\u0026`...)
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}

// validNumber reports whether n is a JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(n []byte) bool {
	i := 0
	if i < len(n) && n[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(n) && n[i] >= '0' && n[i] <= '9' {
			i++
		}
		return i - j
	}
	switch {
	case i < len(n) && n[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(n) && n[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(n) && (n[i] == 'e' || n[i] == 'E') {
		i++
		if i < len(n) && (n[i] == '+' || n[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(n)
}
