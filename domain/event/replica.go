package event

import (
	"context"
	"errors"
	"fmt"
)

// Replica errors, returned wrapped in *ReplicaError.
var (
	// ErrReplicaGap: the event's stream version is beyond the local stream
	// head + 1: its predecessor has not been replicated yet. Nothing was
	// stored; offer the event again once the predecessor is in.
	ErrReplicaGap = errors.New("replicated event does not follow its stream's head")
	// ErrReplicaConflict: the local store holds another event at the event's
	// stream version, or holds the event's ID elsewhere, or the event's
	// PrevHash is not the hash of the local stream head: the histories have
	// diverged. It is never retried.
	ErrReplicaConflict = errors.New("replicated event conflicts with the local history")
)

// ReplicaError says which event of a replicated batch was refused, and why
// (errors.Is ErrReplicaGap, ErrReplicaConflict, ErrInvalidAppend or a
// *ChainError's reason).
type ReplicaError struct {
	Index   int // in the batch
	ID      string
	Stream  string
	Version uint64
	Err     error
}

func (e *ReplicaError) Error() string {
	return fmt.Sprintf("replicate %s v%d (event %s, #%d in batch): %v", e.Stream, e.Version, e.ID, e.Index, e.Err)
}

func (e *ReplicaError) Unwrap() error { return e.Err }

// ReplicaResult says what AppendReplicated did.
type ReplicaResult struct {
	// Appended counts the events stored now; Skipped those already stored
	// (same ID, stream, version and hash: a re-delivery).
	Appended, Skipped int
	// LastPosition is the local $all position of the last event appended
	// (0 when none was).
	LastPosition uint64
}

// ReplicaAppender stores events written by another store (another
// region's), keeping everything that travels with an event: ID, stream,
// type, schema version, data, metadata, RecordedAt, Version, PrevHash and
// Hash. The store assigns only the local Position and the global hashes.
//
// Contract:
//   - The batch is applied in order, atomically (all or none), and
//     acknowledged only once durable, like Append.
//   - Each event must link to the local head of its stream (or to the
//     batch's previous event of the same stream): Version = head + 1 and
//     PrevHash = the head's Hash, and Hash must be the hash of its content
//     (VerifyStreamLink). A version beyond head + 1 fails with
//     ErrReplicaGap; a link that does not match fails with
//     ErrReplicaConflict.
//   - An event whose ID is already stored at the same stream and version
//     with the same Hash is skipped (re-delivery is harmless); the same ID
//     anywhere else is ErrReplicaConflict.
//
// Errors are *ReplicaError (naming the first refused event; nothing of the
// batch is stored) or the store's own errors (ErrReadOnly, ErrClosed, ...).
type ReplicaAppender interface {
	AppendReplicated(ctx context.Context, events []Envelope) (ReplicaResult, error)
}

// ValidateReplica checks the shape of a replicated event: a valid stream
// ID, a non-empty ID of at most 128 bytes, a well-formed type whose version
// matches SchemaVersion, data, a version of at least 1, and a Hash that is
// the hash of its content and PrevHash. Stores call it before linking.
func ValidateReplica(e *Envelope) error {
	if err := ValidateStreamID(e.StreamID); err != nil {
		return err
	}
	if e.ID == "" || len(e.ID) > 128 {
		return fmt.Errorf("%w: ID must be 1-128 bytes", ErrInvalidAppend)
	}
	_, v, err := ParseTypeName(e.Type)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidAppend, err)
	}
	if v != e.SchemaVersion {
		return fmt.Errorf("%w: type %s but schema version %d", ErrInvalidAppend, e.Type, e.SchemaVersion)
	}
	if len(e.Data) == 0 {
		return fmt.Errorf("%w: no data", ErrInvalidAppend)
	}
	if e.Version == 0 {
		return fmt.Errorf("%w: version 0", ErrInvalidAppend)
	}
	if StreamHash(e.PrevHash, e) != e.Hash {
		return fmt.Errorf("%w: content does not match its hash", ErrReplicaConflict)
	}
	return nil
}

// LinkReplica checks that e, already validated, follows a stream whose
// last event has version headVersion and hash headHash: nil when it links,
// ErrReplicaGap when it is ahead, ErrReplicaConflict otherwise.
func LinkReplica(headVersion uint64, headHash Hash, e *Envelope) error {
	switch {
	case e.Version > headVersion+1:
		return fmt.Errorf("%w: version %d, local head %d", ErrReplicaGap, e.Version, headVersion)
	case e.Version <= headVersion:
		return fmt.Errorf("%w: version %d is taken locally (head %d) by another event", ErrReplicaConflict, e.Version, headVersion)
	case e.PrevHash != headHash:
		return fmt.Errorf("%w: previous hash %s, local head v%d has %s", ErrReplicaConflict, e.PrevHash, headVersion, headHash)
	}
	return nil
}
