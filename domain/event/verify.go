package event

import "fmt"

// ChainError names the first event whose hashes do not link, and why.
type ChainError struct {
	Position uint64
	Stream   string
	Version  uint64
	Reason   string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("hash chain broken at position %d (%s v%d): %s", e.Position, e.Stream, e.Version, e.Reason)
}

// VerifyStreamLink checks that e follows an event with hash prev (zero for a
// first event) at version prevVersion in its stream, and that e.Hash is the
// hash of its content.
func VerifyStreamLink(prev Hash, prevVersion uint64, e *Envelope) error {
	switch {
	case e.Version != prevVersion+1:
		return &ChainError{e.Position, e.StreamID, e.Version, fmt.Sprintf("stream version %d follows %d", e.Version, prevVersion)}
	case e.PrevHash != prev:
		return &ChainError{e.Position, e.StreamID, e.Version, "previous stream hash does not match the stream's previous event"}
	case StreamHash(prev, e) != e.Hash:
		return &ChainError{e.Position, e.StreamID, e.Version, "content does not match its hash (edited)"}
	}
	return nil
}

// VerifyGlobalLink checks that e follows the event at prevPosition with
// global hash prev in $all.
func VerifyGlobalLink(prev Hash, prevPosition uint64, e *Envelope) error {
	switch {
	case e.Position != prevPosition+1:
		return &ChainError{e.Position, e.StreamID, e.Version, fmt.Sprintf("position %d follows %d (missing or reordered events)", e.Position, prevPosition)}
	case e.PrevGlobalHash != prev:
		return &ChainError{e.Position, e.StreamID, e.Version, "previous global hash does not match the previous event"}
	case GlobalChainHash(prev, e.Position, e.Hash) != e.GlobalHash:
		return &ChainError{e.Position, e.StreamID, e.Version, "global hash does not match"}
	}
	return nil
}
