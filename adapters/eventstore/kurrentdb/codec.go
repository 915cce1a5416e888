package kurrentdb

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/livecore/livecore/domain/event"
)

// metaFormat is the version of the metadata JSON below. Readers reject
// events that carry a newer one.
const metaFormat = 1

// eventMeta is what livecore keeps in an ESDB event's metadata JSON: the
// Envelope fields ESDB has no place for, and the stream hash chain. The
// correlation and causation IDs use ESDB's own "$correlationId" and
// "$causationId" keys, so ESDB projections ($by_correlation_id) see them.
// Version and StreamID are not stored: they are the ESDB revision + 1 and the
// ESDB stream name (less the Namespace prefix). Position and the global
// hashes are not stored either: see the package doc.
type eventMeta struct {
	Livecore      int        `json:"livecore"`
	ID            string     `json:"id,omitempty"` // the livecore event ID when it is not the ESDB UUID's canonical text
	SchemaVersion int        `json:"schema_version"`
	RecordedAtNS  int64      `json:"recorded_at_ns"`
	Tenant        string     `json:"tenant,omitempty"`
	CorrelationID string     `json:"$correlationId,omitempty"`
	CausationID   string     `json:"$causationId,omitempty"`
	Actor         string     `json:"actor,omitempty"`
	Region        string     `json:"region,omitempty"`
	PrevHash      event.Hash `json:"prev_hash"`
	Hash          event.Hash `json:"hash"`
}

// encodeMeta renders e's metadata JSON (e sealed with its stream hashes).
func encodeMeta(e *event.Envelope) []byte {
	m := eventMeta{
		Livecore:      metaFormat,
		SchemaVersion: e.SchemaVersion,
		RecordedAtNS:  e.RecordedAt.UnixNano(),
		Tenant:        e.Metadata.Tenant,
		CorrelationID: e.Metadata.CorrelationID,
		CausationID:   e.Metadata.CausationID,
		Actor:         e.Metadata.Actor,
		Region:        e.Metadata.Region,
		PrevHash:      e.PrevHash,
		Hash:          e.Hash,
	}
	if esdbID(e.ID).String() != e.ID {
		m.ID = e.ID
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("kurrentdb: encode metadata: %v", err)) // only strings and ints: cannot fail
	}
	return b
}

// errNotOurs marks a record that is not a livecore event (a system event,
// another application's event): it is skipped and takes no position.
var errNotOurs = errors.New("not a livecore event")

// decode turns a stored record into an Envelope without Position and global
// hashes. It returns errNotOurs for a record outside the namespace or not
// written by livecore, and an event.ErrCorrupt error for a livecore record it
// cannot read.
func decode(namespace string, r *record) (event.Envelope, error) {
	if strings.HasPrefix(r.Stream, "$") || strings.HasPrefix(r.Type, "$") || !strings.HasPrefix(r.Stream, namespace) {
		return event.Envelope{}, errNotOurs
	}
	var probe struct {
		Livecore *int `json:"livecore"`
	}
	if len(r.Meta) == 0 || r.Meta[0] != '{' || json.Unmarshal(r.Meta, &probe) != nil || probe.Livecore == nil {
		return event.Envelope{}, errNotOurs
	}
	var m eventMeta
	if err := json.Unmarshal(r.Meta, &m); err != nil {
		return event.Envelope{}, fmt.Errorf("%w: %s@%d: metadata: %v", event.ErrCorrupt, r.Stream, r.Revision, err)
	}
	if m.Livecore != metaFormat {
		return event.Envelope{}, fmt.Errorf("%w: %s@%d: metadata format %d, this build reads %d", event.ErrCorrupt, r.Stream, r.Revision, m.Livecore, metaFormat)
	}
	id := m.ID
	if id == "" {
		id = r.ID.String()
	} else if esdbID(id) != r.ID {
		return event.Envelope{}, fmt.Errorf("%w: %s@%d: event ID %s does not match ESDB ID %s", event.ErrCorrupt, r.Stream, r.Revision, id, r.ID)
	}
	return event.Envelope{
		ID:            id,
		StreamID:      strings.TrimPrefix(r.Stream, namespace),
		Type:          r.Type,
		SchemaVersion: m.SchemaVersion,
		Data:          r.Data,
		Metadata: event.Metadata{
			Tenant: m.Tenant, CorrelationID: m.CorrelationID, CausationID: m.CausationID,
			Actor: m.Actor, Region: m.Region,
		},
		RecordedAt: time.Unix(0, m.RecordedAtNS).UTC(),
		Version:    r.Revision + 1,
		PrevHash:   m.PrevHash,
		Hash:       m.Hash,
	}, nil
}

// esdbID maps a livecore event ID to the UUID ESDB requires. An ID that is
// the canonical text of a UUID (as event.DeriveID makes) is that UUID, so
// ESDB's own duplicate check and tools see the same ID; any other ID maps to
// a name-based UUID (SHA-256, version 8) and is kept verbatim in the
// metadata.
func esdbID(id string) uuid.UUID {
	if u, err := uuid.Parse(id); err == nil && u.String() == id {
		return u
	}
	h := sha256.Sum256([]byte("livecore.esdb-id.v1\x00" + id))
	var u uuid.UUID
	copy(u[:], h[:16])
	u[6] = (u[6] & 0x0f) | 0x80
	u[8] = (u[8] & 0x3f) | 0x80
	return u
}

// expectedRevision maps "the stream's last event has version v" (0: no
// stream) to ESDB's expected revision: our versions are 1-based, ESDB
// revisions 0-based, so v <-> Revision(v-1), and 0 <-> NoStream.
func expectedRevision(v uint64) esdb.ExpectedRevision {
	if v == 0 {
		return esdb.NoStream{}
	}
	return esdb.Revision(v - 1)
}

// mapExpected maps a caller's expectation to ESDB's one to one: Any, NoStream,
// StreamExists, Exact(v) -> Revision(v-1). Append does not send it (it pins
// the exact revision it chained the hashes to, see Append); it is the
// documented correspondence, used by tests and tools.
func mapExpected(e event.ExpectedVersion) esdb.ExpectedRevision {
	switch {
	case e.IsAny():
		return esdb.Any{}
	case e.IsNoStream():
		return esdb.NoStream{}
	case e.IsStreamExists():
		return esdb.StreamExists{}
	}
	v, _ := e.IsExact()
	return esdb.Revision(v - 1)
}

var wrongVersionRE = regexp.MustCompile(`but got '([^']*)'`)

// parseActual reads the stream's actual revision out of the client's
// WrongExpectedVersion message ("... expecting '3' but got '5'", or
// 'no_stream') and returns it as our version (revision + 1; 0 for no stream).
// ok is false when the message has another shape; the caller then reads the
// stream's tail.
func parseActual(msg string) (version uint64, ok bool) {
	m := wrongVersionRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, false
	}
	if m[1] == "no_stream" {
		return 0, true
	}
	rev, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || rev < -1 {
		return 0, false
	}
	return uint64(rev + 1), true
}

// Errors the backend reports, already free of client types.
type (
	// wrongRevisionError: ESDB rejected the expected revision.
	wrongRevisionError struct {
		actual uint64 // our version (revision + 1), valid when known
		known  bool
	}
	// transientError: the request may or may not have taken effect
	// (unavailable, deadline, aborted, not leader): a write retried with the
	// same bytes is safe.
	transientError struct{ msg string }
	// notFoundError: the stream does not exist (reads).
	notFoundError struct{}
)

func (e *wrongRevisionError) Error() string {
	if !e.known {
		return "wrong expected revision"
	}
	return fmt.Sprintf("wrong expected revision: stream at version %d", e.actual)
}
func (e *transientError) Error() string { return "kurrentdb unavailable: " + e.msg }
func (*notFoundError) Error() string    { return "stream not found" }

// classify translates an ESDB client error code and message into the
// backend errors above or a port error: nothing above this package sees an
// esdb type. An unknown code is a plain error, not transient: resending
// could repeat a permanent failure; the caller's retry with the same IDs
// settles the outcome.
func classify(code esdb.ErrorCode, msg string) error {
	switch code {
	case esdb.ErrorCodeWrongExpectedVersion:
		v, ok := parseActual(msg)
		return &wrongRevisionError{actual: v, known: ok}
	case esdb.ErrorCodeResourceNotFound:
		return &notFoundError{}
	case esdb.ErrorCodeConnectionClosed:
		return fmt.Errorf("kurrentdb: %s: %w", msg, event.ErrClosed)
	case esdb.ErrorCodeDeadlineExceeded, esdb.ErrorUnavailable, esdb.ErrorAborted, esdb.ErrorCodeNotLeader:
		return &transientError{msg: msg}
	case esdb.ErrorCodeStreamDeleted:
		return fmt.Errorf("kurrentdb: %s (livecore never deletes streams): %w", msg, event.ErrCorrupt)
	}
	return fmt.Errorf("kurrentdb: %s", msg)
}
