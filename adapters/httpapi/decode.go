package httpapi

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// readBody reads r's whole body, refusing more than limit bytes
// (CodeTooLarge, 413) and a non-empty body that is not JSON
// (CodeUnsupportedMediaType, 415). An empty body is returned as nil with no
// error: whether one is allowed is the handler's business.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("the request body (%d bytes) is over the limit of %d bytes", r.ContentLength, limit)}
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, ErrorOf(err)
		}
		return nil, &Error{Code: CodeMalformed, Message: "the request body could not be read", Err: err}
	}
	if int64(len(b)) > limit {
		return nil, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("the request body is over the limit of %d bytes", limit)}
	}
	if len(b) == 0 {
		return nil, nil
	}
	if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	return b, nil
}

// checkJSONContentType accepts application/json with no parameter other
// than charset=utf-8 (JSON is UTF-8: RFC 8259).
func checkJSONContentType(ct string) error {
	const want = "the request body must be JSON: Content-Type: application/json"
	if ct == "" {
		return &Error{Code: CodeUnsupportedMediaType, Message: want + " (none was sent)"}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return &Error{Code: CodeUnsupportedMediaType, Message: fmt.Sprintf("%s (got %q)", want, ct)}
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return &Error{Code: CodeUnsupportedMediaType, Message: fmt.Sprintf("%s; the only parameter allowed is charset=utf-8 (got %q)", want, ct)}
		}
	}
	return nil
}

// DecodeJSON decodes body into dst (a pointer to a struct) strictly:
//   - member names match the struct's json names exactly (encoding/json
//     alone would match case-insensitively);
//   - an unknown member, a member given twice, a value of the wrong JSON type
//     or null for a non-nullable field is CodeMalformed (400), each named by
//     its path ("items[0].quantity");
//   - a value that a field type refuses (its UnmarshalText or UnmarshalJSON
//     fails: an unknown plan kind) is CodeInvalid (422), named by path;
//   - anything after the JSON value, and an empty body, are CodeMalformed.
//
// It returns nil or an *Error.
func DecodeJSON(body []byte, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("httpapi: DecodeJSON needs a non-nil pointer") // wiring bug
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return &Error{Code: CodeMalformed, Message: "a JSON request body is required"}
	}
	if shapeOK(body, rv.Type().Elem()) {
		// The common case, a well-formed request: fill dst at once. If
		// encoding/json still refuses a value, the walker names it.
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err == nil {
			return nil
		}
		rv.Elem().SetZero()
	}
	return decodeWalked(body, rv)
}

// decodeWalked is DecodeJSON's thorough path: the walker checks the shape
// and names every offending field, then encoding/json fills dst.
func decodeWalked(body []byte, rv reflect.Value) error {
	dst := rv.Interface()
	w := walker{body: body}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := w.walk(dec, rv.Type().Elem(), ""); err != nil {
		return syntaxProblem(err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		_ = tok
		return &Error{Code: CodeMalformed, Message: fmt.Sprintf("unexpected data after the JSON value at byte %d", dec.InputOffset())}
	}
	if len(w.malformed) > 0 {
		return &Error{Code: CodeMalformed, Message: fieldsMessage(w.malformed, "the request body does not match the expected shape"), Fields: w.malformed}
	}
	if len(w.invalid) > 0 {
		return &Error{Code: CodeInvalid, Message: fieldsMessage(w.invalid, "some values are not accepted"), Fields: w.invalid}
	}
	// The walk proved the shape; this fills dst. An error here is a gap in
	// the walker (a kind it does not check), reported without a path.
	dec = json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return &Error{Code: CodeMalformed, Message: "the request body does not match the expected shape: " + err.Error(), Err: err}
	}
	return nil
}

func fieldsMessage(fs []FieldError, what string) string {
	if len(fs) == 1 {
		return what + ": " + fs[0].Field + " " + fs[0].Message
	}
	return fmt.Sprintf("%s (%d fields)", what, len(fs))
}

func syntaxProblem(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &Error{Code: CodeMalformed, Message: fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, se.Error()), Err: err}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &Error{Code: CodeMalformed, Message: "invalid JSON: the body ends in the middle of a value", Err: err}
	}
	return &Error{Code: CodeMalformed, Message: "invalid JSON: " + err.Error(), Err: err}
}

// walker checks a JSON token stream against a Go type before encoding/json
// fills it, to name every offending field by its full path (encoding/json
// reports only the first error, without array indices, and accepts unknown
// case variants and duplicate members silently).
type walker struct {
	body               []byte
	malformed, invalid []FieldError
}

func (w *walker) bad(p Path, code, msg string) {
	if len(w.malformed) < maxFieldErrors {
		w.malformed = append(w.malformed, FieldError{Field: fieldName(p), Code: code, Message: msg})
	}
}

func (w *walker) refused(p Path, msg string) {
	if len(w.invalid) < maxFieldErrors {
		w.invalid = append(w.invalid, FieldError{Field: fieldName(p), Code: "invalid_value", Message: msg})
	}
}

func fieldName(p Path) string {
	if p == "" {
		return "(body)"
	}
	return string(p)
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walk consumes exactly one JSON value from dec and checks it against t.
// It returns only syntax errors; shape errors are collected.
func (w *walker) walk(dec *json.Decoder, t reflect.Type, p Path) error {
	pt := reflect.PointerTo(t)
	switch {
	case t.Kind() == reflect.Pointer:
		if w.peekNull(dec) {
			_, err := dec.Token()
			return err
		}
		return w.walk(dec, t.Elem(), p)
	case pt.Implements(jsonUnmarshaler):
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
			w.refused(p, err.Error())
		}
		return nil
	case pt.Implements(textUnmarshaler):
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		s, ok := tok.(string)
		if !ok {
			w.bad(p, "wrong_type", "must be a string, not "+describe(tok))
			return skipRest(dec, tok)
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			w.refused(p, err.Error())
		}
		return nil
	}

	switch t.Kind() {
	case reflect.Interface:
		var raw json.RawMessage
		return dec.Decode(&raw)
	case reflect.Struct:
		return w.object(dec, p, func(name string) (reflect.Type, bool) {
			f, ok := fieldsOf(t)[name]
			return f, ok
		}, "an object")
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			var raw json.RawMessage
			return dec.Decode(&raw)
		}
		if w.peekNull(dec) {
			_, err := dec.Token()
			return err
		}
		return w.object(dec, p, func(string) (reflect.Type, bool) { return t.Elem(), true }, "an object")
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			return w.scalar(dec, p, "a base64 string", func(tok json.Token) bool { _, ok := tok.(string); return ok })
		}
		if t.Kind() == reflect.Slice && w.peekNull(dec) {
			_, err := dec.Token()
			return err
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			w.bad(p, "wrong_type", "must be an array, not "+describe(tok))
			return skipRest(dec, tok)
		}
		for i := 0; dec.More(); i++ {
			if err := w.walk(dec, t.Elem(), p.Index(i)); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	case reflect.String:
		return w.scalar(dec, p, "a string", func(tok json.Token) bool { _, ok := tok.(string); return ok })
	case reflect.Bool:
		return w.scalar(dec, p, "true or false", func(tok json.Token) bool { _, ok := tok.(bool); return ok })
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return w.scalar(dec, p, "an integer", func(tok json.Token) bool {
			n, ok := tok.(json.Number)
			if !ok {
				return false
			}
			_, err := strconv.ParseInt(string(n), 10, t.Bits())
			return err == nil
		})
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return w.scalar(dec, p, "a non-negative integer", func(tok json.Token) bool {
			n, ok := tok.(json.Number)
			if !ok {
				return false
			}
			_, err := strconv.ParseUint(string(n), 10, t.Bits())
			return err == nil
		})
	case reflect.Float32, reflect.Float64:
		return w.scalar(dec, p, "a number", func(tok json.Token) bool {
			n, ok := tok.(json.Number)
			if !ok {
				return false
			}
			_, err := strconv.ParseFloat(string(n), t.Bits())
			return err == nil
		})
	}
	// A kind requests never use (chan, func, complex): leave it to
	// encoding/json, which will refuse it.
	var raw json.RawMessage
	return dec.Decode(&raw)
}

// object walks a JSON object whose member types come from member.
func (w *walker) object(dec *json.Decoder, p Path, member func(string) (reflect.Type, bool), want string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		w.bad(p, "null", "must be "+want+", not null")
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		w.bad(p, "wrong_type", "must be "+want+", not "+describe(tok))
		return skipRest(dec, tok)
	}
	seen := map[string]bool{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		name := kt.(string) // object keys are always strings
		fp := p.Key(name)
		ft, known := member(name)
		switch {
		case seen[name]:
			w.bad(fp, "duplicate_field", "is given more than once")
			known = false
		case !known:
			w.bad(fp, "unknown_field", "is not a known field")
		}
		seen[name] = true
		if !known {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return err
			}
			continue
		}
		if err := w.walk(dec, ft, fp); err != nil {
			return err
		}
	}
	_, err = dec.Token() // '}'
	return err
}

// scalar reads one token and checks it with ok; null is refused (a field
// that may be absent is a pointer).
func (w *walker) scalar(dec *json.Decoder, p Path, want string, ok func(json.Token) bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if !ok(tok) {
		w.bad(p, "wrong_type", "must be "+want+", not "+describe(tok))
		return skipRest(dec, tok)
	}
	return nil
}

// skipRest consumes the rest of a value whose first token was tok.
func skipRest(dec *json.Decoder, tok json.Token) error {
	d, ok := tok.(json.Delim)
	if !ok || (d != '{' && d != '[') {
		return nil
	}
	for depth := 1; depth > 0; {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := t.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
	}
	return nil
}

// peekNull reports whether the next value is null, without consuming it.
// json.Decoder cannot peek, but the walker has the whole body and the
// decoder's offset into it.
func (w *walker) peekNull(dec *json.Decoder) bool {
	off := dec.InputOffset()
	if off < 0 || off > int64(len(w.body)) {
		return false
	}
	rest := bytes.TrimLeft(w.body[off:], " \t\r\n:,")
	return bytes.HasPrefix(rest, []byte("null"))
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number (" + truncated(string(v), 20) + ")"
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	}
	return fmt.Sprintf("%T", tok)
}

func truncated(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// fieldsOf maps t's JSON member names (exact, as encoding/json would write
// them) to their types, flattening embedded structs.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	addFields(t, m)
	fieldCache.Store(t, m)
	return m
}

func addFields(t reflect.Type, m map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, m)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := m[name]; !dup {
			m[name] = f.Type
		}
	}
}
