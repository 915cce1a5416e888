package event

import (
	"context"
	"errors"
	"fmt"
)

// Port errors. Adapters translate their vendor errors into these; nothing
// above an adapter sees a vendor error type.
var (
	// ErrWrongExpectedVersion: the stream was not at the expected version.
	// Returned wrapped in *ConcurrencyError.
	ErrWrongExpectedVersion = errors.New("wrong expected version")
	// ErrIdempotencyConflict: some but not all of the proposed event IDs were
	// appended before, or they were appended elsewhere or in another order.
	ErrIdempotencyConflict = errors.New("event IDs partially match an earlier append")
	// ErrReadOnly: the store refused the write because an earlier write
	// failed durably (e.g. fsync); it will not retry and carry on.
	ErrReadOnly = errors.New("event store is read-only after a write failure")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("event store closed")
	// ErrInvalidAppend: the append is malformed (no events, empty ID or type,
	// bad stream ID, duplicate IDs within the append).
	ErrInvalidAppend = errors.New("invalid append")
	// ErrCorrupt: stored bytes failed their checksum; they are never served.
	ErrCorrupt = errors.New("event store data corrupt")
)

// ConcurrencyError says which expectation failed against which version.
type ConcurrencyError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   uint64 // version of the stream's last event; 0: no stream
}

func (e *ConcurrencyError) Error() string {
	return fmt.Sprintf("append %s: expected %s, stream is at version %d", e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrWrongExpectedVersion) true.
func (e *ConcurrencyError) Is(target error) bool { return target == ErrWrongExpectedVersion }

// AppendResult says where an append landed. A retried append of the same
// event IDs returns the original result.
type AppendResult struct {
	FirstVersion, LastVersion   uint64
	FirstPosition, LastPosition uint64
}

// Appender appends events to one stream atomically: all or none, only if
// expected holds, acknowledged only once durable. Proposing event IDs that
// are all already stored, consecutively, in that stream returns the original
// AppendResult and stores nothing (idempotent retry); any other reuse of a
// stored ID fails with ErrIdempotencyConflict.
type Appender interface {
	Append(ctx context.Context, stream string, expected ExpectedVersion, events []Proposed) (AppendResult, error)
}

// StreamReader reads one stream from a version (1-based, inclusive), at most
// max events (max <= 0: all). A stream that does not exist reads as empty.
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, fromVersion uint64, max int) ([]Envelope, error)
}

// AllReader reads the global log from a position (1-based, inclusive), at
// most max events (max <= 0: all), in position order without gaps: a reader
// never sees position p+1 before p.
type AllReader interface {
	ReadAll(ctx context.Context, fromPosition uint64, max int) ([]Envelope, error)
}

// HeadReader reports the position of the last committed event (0: empty).
type HeadReader interface {
	Head(ctx context.Context) (uint64, error)
}

// HeadWaiter blocks until the head is beyond after, returning the new head,
// or until ctx is done.
type HeadWaiter interface {
	WaitHead(ctx context.Context, after uint64) (uint64, error)
}

// Subscriber delivers $all from a position: first what is stored (catch-up),
// then new events as they commit, in order, in batches, with no gap or
// duplicate. SubscribeAll returns when ctx is done (ctx.Err()) or handle
// returns an error (that error).
type Subscriber interface {
	SubscribeAll(ctx context.Context, fromPosition uint64, handle func(ctx context.Context, batch []Envelope) error) error
}

// Store is the whole port, for wiring and for the conformance suite.
// Consumers should depend on the one-method interfaces above.
type Store interface {
	Appender
	StreamReader
	AllReader
	HeadReader
	Subscriber
	Close() error
}

// SubscribeAll implements Subscriber for any store that can read $all and
// wait for its head: it reads batches of up to batchSize from fromPosition
// and, when caught up, waits for the head to move.
func SubscribeAll(ctx context.Context, r AllReader, w HeadWaiter, fromPosition uint64, batchSize int, handle func(context.Context, []Envelope) error) error {
	if fromPosition == 0 {
		fromPosition = 1
	}
	if batchSize <= 0 {
		batchSize = 1000
	}
	next := fromPosition
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := r.ReadAll(ctx, next, batchSize)
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			if batch[0].Position != next {
				return fmt.Errorf("subscribe: %w: expected position %d, read %d", ErrCorrupt, next, batch[0].Position)
			}
			if err := handle(ctx, batch); err != nil {
				return err
			}
			next = batch[len(batch)-1].Position + 1
			if len(batch) == batchSize {
				continue
			}
		}
		if _, err := w.WaitHead(ctx, next-1); err != nil {
			return err
		}
	}
}

// ValidateAppend checks an append's shape: a stream ID, at least one event,
// and for each a non-empty unique ID, a well-formed type name whose version
// matches SchemaVersion, and data. Stores call it before touching storage.
func ValidateAppend(stream string, events []Proposed) error {
	if err := ValidateStreamID(stream); err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: no events", ErrInvalidAppend)
	}
	seen := make(map[string]struct{}, len(events))
	for i, e := range events {
		if e.ID == "" || len(e.ID) > 128 {
			return fmt.Errorf("%w: event %d: ID must be 1-128 bytes", ErrInvalidAppend, i)
		}
		if _, dup := seen[e.ID]; dup {
			return fmt.Errorf("%w: event ID %s twice in one append", ErrInvalidAppend, e.ID)
		}
		seen[e.ID] = struct{}{}
		_, v, err := ParseTypeName(e.Type)
		if err != nil {
			return fmt.Errorf("%w: event %d: %v", ErrInvalidAppend, i, err)
		}
		if v != e.SchemaVersion {
			return fmt.Errorf("%w: event %d: type %s but schema version %d", ErrInvalidAppend, i, e.Type, e.SchemaVersion)
		}
		if len(e.Data) == 0 {
			return fmt.Errorf("%w: event %d: no data", ErrInvalidAppend, i)
		}
	}
	return nil
}

// ValidateStreamID accepts 1-200 bytes of printable ASCII without spaces; a
// stream ID names its category before the first '-' ("order-123"), and "$"
// prefixes are reserved for the system.
func ValidateStreamID(stream string) error {
	if stream == "" || len(stream) > 200 || stream[0] == '$' {
		return fmt.Errorf("%w: stream ID %q", ErrInvalidAppend, stream)
	}
	for i := 0; i < len(stream); i++ {
		if c := stream[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: stream ID %q has byte %#x", ErrInvalidAppend, stream, c)
		}
	}
	return nil
}

// Category is the part of a stream ID before the first '-': "order" for
// "order-123". Topics and read models are chosen by category.
func Category(stream string) string {
	for i := 0; i < len(stream); i++ {
		if stream[i] == '-' {
			return stream[:i]
		}
	}
	return stream
}
