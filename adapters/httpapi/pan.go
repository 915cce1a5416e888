package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
)

// Card data policy. livecore never stores a card number (PAN). The API
// accepts payment tokens only, and it REJECTS (never redacts) any request
// carrying something that looks like a card number anywhere a client can
// put text: a JSON string or number anywhere in a body, a member name, a
// path segment. A rejected request is a 422 naming the field, code
// "card_number", and never echoing the value; nothing is stored and the
// log line shows the path redacted. Opaque values are not refused but kept
// out of every store: the Idempotency-Key is stored as a digest, and a
// client's X-Request-ID or X-Correlation-ID that looks like a card number
// is replaced by a generated one.
// Rejecting rather than redacting keeps the stored data exactly what the
// client sent (hash-chained events cannot be "cleaned" later) and tells the
// integrator at once that they are sending card data where they must not.
//
// "Looks like a card number": a run of 13 to 19 digits, possibly grouped by
// single spaces or dashes ("4242 4242 4242 4242"), that does not start with
// 0 and passes the Luhn check as a whole. A run longer than 19 digits is
// refused if any 13-19 digit window of it passes, so a number cannot hide
// inside a longer one. One in ten random 13-19 digit numbers passes Luhn,
// so some tracking numbers or references will be refused as well; the
// error says why and the client can send them with other separators.

// containsPAN reports whether s holds a card-number-like digit run.
func containsPAN(s string) bool {
	_, _, ok := findPAN(s)
	return ok
}

// findPAN returns the byte range [start, end) of the first card-number-like
// run in s.
func findPAN(s string) (int, int, bool) {
	var digits []byte
	var idx []int // byte offset of each digit
	flush := func() (int, int, bool) {
		defer func() { digits, idx = digits[:0], idx[:0] }()
		n := len(digits)
		if n < 13 {
			return 0, 0, false
		}
		start, end := idx[0], idx[n-1]+1
		if n <= 19 {
			// A run of card-number length is judged whole: checking its
			// sub-runs too would flag most 14-19 digit numbers (each
			// window passes Luhn one time in ten).
			return start, end, digits[0] != '0' && luhnValid(digits)
		}
		// A longer run may hide a card number glued to other digits.
		for w := 13; w <= 19; w++ {
			for i := 0; i+w <= n; i++ {
				// No card number starts with 0 (ISO/IEC 7812: the first
				// digit names the industry, 0 is not issued).
				if digits[i] != '0' && luhnValid(digits[i:i+w]) {
					return start, end, true
				}
			}
		}
		return 0, 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
			idx = append(idx, i)
		case (c == ' ' || c == '-') && len(digits) > 0 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' && idx[len(idx)-1] == i-1:
			// a single separator between digits keeps the run going
		default:
			if a, b, ok := flush(); ok {
				return a, b, true
			}
		}
	}
	return flush()
}

// luhnValid is the Luhn (mod 10) check over ASCII digits.
func luhnValid(d []byte) bool {
	sum := 0
	for i := range d {
		v := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// redactPAN replaces every card-number-like run in s with "REDACTED".
func redactPAN(s string) string {
	var b strings.Builder
	for {
		a, z, ok := findPAN(s)
		if !ok {
			if b.Len() == 0 {
				return s
			}
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:a])
		b.WriteString("REDACTED")
		s = s[z:]
	}
}

// panError is the problem for card data found at field.
func panFieldError(field string) FieldError {
	return FieldError{Field: field, Code: "card_number", Message: "looks like a card number; livecore accepts payment tokens only and stores no card data"}
}

// scanBodyForPANs walks a JSON body and returns a field error for every
// string, number or member name holding a card-number-like run. A body that
// is not valid JSON is scanned as text (so the answer to a malformed body
// with a card number in it is still the card-data refusal).
func scanBodyForPANs(body []byte) []FieldError {
	if len(body) == 0 || !containsPANBytes(body) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out []FieldError
	var walk func(p Path) error
	walk = func(p Path) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				for dec.More() {
					kt, err := dec.Token()
					if err != nil {
						return err
					}
					k, _ := kt.(string)
					if containsPAN(k) {
						out = append(out, panFieldError(string(p.Key("REDACTED"))))
						k = "REDACTED"
					}
					if err := walk(p.Key(k)); err != nil {
						return err
					}
				}
				_, err := dec.Token()
				return err
			case '[':
				for i := 0; dec.More(); i++ {
					if err := walk(p.Index(i)); err != nil {
						return err
					}
				}
				_, err := dec.Token()
				return err
			}
		case string:
			if containsPAN(v) {
				out = append(out, panFieldError(fieldName(p)))
			}
		case json.Number:
			if containsPAN(string(v)) {
				out = append(out, panFieldError(fieldName(p)))
			}
		}
		return nil
	}
	if err := walk(""); err != nil && err != io.EOF {
		return []FieldError{panFieldError("(body)")}
	}
	if len(out) == 0 {
		// The raw bytes had a run that no single value has (split across
		// members): not a card number in any field.
		return nil
	}
	if len(out) > maxFieldErrors {
		out = out[:maxFieldErrors]
	}
	return out
}

// containsPANBytes is the quick pre-check on a raw body.
func containsPANBytes(b []byte) bool {
	n := 0
	for _, c := range b {
		if c >= '0' && c <= '9' {
			if n++; n >= 13 {
				return containsPAN(string(b))
			}
		} else if c != ' ' && c != '-' {
			n = 0
		}
	}
	return false
}
