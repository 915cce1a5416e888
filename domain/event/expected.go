package event

import "fmt"

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectExact
)

// ExpectedVersion is the optimistic-concurrency condition of an append:
// Any, NoStream, StreamExists, or Exact(v) where v is the version of the
// stream's last event (Exact(0) is the same as NoStream).
type ExpectedVersion struct {
	kind expectKind
	v    uint64
}

// The non-exact expectations.
var (
	Any          = ExpectedVersion{kind: expectAny}
	NoStream     = ExpectedVersion{kind: expectNoStream}
	StreamExists = ExpectedVersion{kind: expectStreamExists}
)

// Exact expects the stream's last event to have version v.
func Exact(v uint64) ExpectedVersion {
	if v == 0 {
		return NoStream
	}
	return ExpectedVersion{kind: expectExact, v: v}
}

// Holds reports whether the expectation holds for a stream whose last event
// has version current (0: no stream).
func (e ExpectedVersion) Holds(current uint64) bool {
	switch e.kind {
	case expectNoStream:
		return current == 0
	case expectStreamExists:
		return current > 0
	case expectExact:
		return current == e.v
	default:
		return true
	}
}

// IsExact reports whether e is Exact(v) for some v > 0, and v.
func (e ExpectedVersion) IsExact() (uint64, bool) { return e.v, e.kind == expectExact }

// IsAny, IsNoStream and IsStreamExists tell the non-exact kinds apart.
func (e ExpectedVersion) IsAny() bool          { return e.kind == expectAny }
func (e ExpectedVersion) IsNoStream() bool     { return e.kind == expectNoStream }
func (e ExpectedVersion) IsStreamExists() bool { return e.kind == expectStreamExists }

func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectNoStream:
		return "no-stream"
	case expectStreamExists:
		return "stream-exists"
	case expectExact:
		return fmt.Sprintf("version %d", e.v)
	default:
		return "any"
	}
}
