package inventory

import "fmt"

// Location is a stock location (warehouse, store, dark store) code. It
// cannot be forged: get one from ParseLocation, so every Location is a valid
// stream-ID fragment.
type Location struct{ code string }

// ParseLocation accepts 1-64 bytes of letters, digits, '-', '_', '.' and ':'
// ("ams-1", "us-east:dc3"); ErrInvalidLocation otherwise.
func ParseLocation(s string) (Location, error) {
	if !validCode(s, "-_.:") {
		return Location{}, fmt.Errorf("%w: %q", ErrInvalidLocation, s)
	}
	return Location{code: s}, nil
}

// MustLocation is ParseLocation for constants and tests; it panics on error.
func MustLocation(s string) Location {
	l, err := ParseLocation(s)
	if err != nil {
		panic(err)
	}
	return l
}

func (l Location) String() string { return l.code }

// IsZero reports whether l is the zero (invalid) Location.
func (l Location) IsZero() bool { return l.code == "" }

// MarshalText encodes the code; the zero Location is an error.
func (l Location) MarshalText() ([]byte, error) {
	if l.IsZero() {
		return nil, fmt.Errorf("%w: zero location", ErrInvalidLocation)
	}
	return []byte(l.code), nil
}

// UnmarshalText parses with ParseLocation.
func (l *Location) UnmarshalText(b []byte) error {
	p, err := ParseLocation(string(b))
	if err != nil {
		return err
	}
	*l = p
	return nil
}

// ValidateSKU accepts 1-64 bytes of letters, digits, '-', '_', '.', ':' and
// '/'; ErrInvalidSKU otherwise. ('@' separates SKU and location in stream IDs.)
func ValidateSKU(sku string) error {
	if !validCode(sku, "-_.:/") {
		return fmt.Errorf("%w: %q", ErrInvalidSKU, sku)
	}
	return nil
}

func validCode(s, extra string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		for j := 0; !ok && j < len(extra); j++ {
			ok = c == extra[j]
		}
		if !ok {
			return false
		}
	}
	return true
}
