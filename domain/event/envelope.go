// Package event is livecore's event-sourcing kernel: the envelope every
// stored event travels in, its hash chains, expected versions, the explicit
// type registry with upcasters, deterministic event IDs, and the ports that
// event stores implement. It is pure: no IO, no clock, no randomness.
package event

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// Metadata says who caused an event, for whom and where. It is covered by
// the event's hash, so it cannot be altered unnoticed.
type Metadata struct {
	Tenant        string `json:"tenant,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	Actor         string `json:"actor,omitempty"`
	Region        string `json:"region,omitempty"`
}

// Proposed is an event offered for appending: everything but what the store
// assigns (recorded-at, version, position, hashes).
type Proposed struct {
	// ID identifies the event across stores, regions and Kafka. Derive it
	// from the causing command (DeriveID) so a retried command proposes the
	// same IDs and the store can recognise the retry.
	ID            string
	Type          string // explicit, versioned: "order.placed.v1"
	SchemaVersion int    // the N of Type's ".vN" suffix
	Data          []byte // JSON; stored and hashed byte for byte
	Metadata      Metadata
}

// Envelope is a stored event.
type Envelope struct {
	ID            string
	StreamID      string
	Type          string
	SchemaVersion int
	Data          []byte
	Metadata      Metadata
	RecordedAt    time.Time // UTC, nanosecond precision
	// Version is the event's 1-based number in its stream.
	Version uint64
	// Position is the event's 1-based number in this store's $all log. A
	// replica of an event has its origin's Version and Hash but a local
	// Position and global hashes.
	Position uint64
	// PrevHash is the Hash of the stream's previous event (zero for the first).
	PrevHash Hash
	// Hash chains the stream: StreamHash(PrevHash, envelope).
	Hash Hash
	// PrevGlobalHash is the GlobalHash of the event at Position-1.
	PrevGlobalHash Hash
	// GlobalHash chains $all: GlobalChainHash(PrevGlobalHash, Position, Hash).
	GlobalHash Hash
}

// Hash is a SHA-256 digest.
type Hash [32]byte

// String is the lower-case hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zero (the predecessor of a first event).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText encodes h as hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes hex.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("hash: want 64 hex digits, got %d", len(b))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// ParseHash decodes a hex hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	err := h.UnmarshalText([]byte(s))
	return h, err
}

// StreamHash computes the stream-chain hash of e over a canonical,
// length-prefixed encoding of every field that describes the event (ID,
// stream, type, schema version, version, recorded-at, metadata, data) and
// prev, the hash of the stream's previous event. Position and the global
// hashes are left out on purpose: they are local to one store, while Hash
// travels with the event to replicas.
func StreamHash(prev Hash, e *Envelope) Hash {
	h := sha256.New()
	var buf [8]byte
	str := func(s string) {
		binary.BigEndian.PutUint64(buf[:], uint64(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	u64 := func(v uint64) {
		binary.BigEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	str("livecore.event.v1")
	h.Write(prev[:])
	str(e.ID)
	str(e.StreamID)
	str(e.Type)
	u64(uint64(e.SchemaVersion))
	u64(e.Version)
	u64(uint64(e.RecordedAt.UnixNano()))
	str(e.Metadata.Tenant)
	str(e.Metadata.CorrelationID)
	str(e.Metadata.CausationID)
	str(e.Metadata.Actor)
	str(e.Metadata.Region)
	binary.BigEndian.PutUint64(buf[:], uint64(len(e.Data)))
	h.Write(buf[:])
	h.Write(e.Data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// GlobalChainHash links one event into a store's $all chain.
func GlobalChainHash(prev Hash, position uint64, streamHash Hash) Hash {
	var b [17 + 32 + 8 + 32]byte
	copy(b[:17], "livecore.global.1")
	copy(b[17:49], prev[:])
	binary.BigEndian.PutUint64(b[49:57], position)
	copy(b[57:], streamHash[:])
	return sha256.Sum256(b[:])
}

// Seal fills in e's hashes given its predecessors' hashes. Stores call it
// once they have assigned Version, Position and RecordedAt.
func Seal(e *Envelope, prevStream, prevGlobal Hash) {
	e.PrevHash = prevStream
	e.Hash = StreamHash(prevStream, e)
	e.PrevGlobalHash = prevGlobal
	e.GlobalHash = GlobalChainHash(prevGlobal, e.Position, e.Hash)
}
