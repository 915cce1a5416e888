package audit

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/livecore/livecore/domain/event"
)

// hasher recomputes event hashes without allocating: it lays the canonical
// pre-image of event.StreamHash out in one reused buffer and hashes it in
// one call (sha256.Sum256 keeps its state on the stack). It must produce
// exactly event.StreamHash and event.GlobalChainHash; hash_test.go checks
// that on random envelopes.
type hasher struct{ buf []byte }

const streamDomain = "livecore.event.v1"

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// stream is event.StreamHash(prev, e).
func (h *hasher) stream(prev event.Hash, e *event.Envelope) event.Hash {
	b := h.buf[:0]
	b = appendStr(b, streamDomain)
	b = append(b, prev[:]...)
	b = appendStr(b, e.ID)
	b = appendStr(b, e.StreamID)
	b = appendStr(b, e.Type)
	b = binary.BigEndian.AppendUint64(b, uint64(e.SchemaVersion))
	b = binary.BigEndian.AppendUint64(b, e.Version)
	b = binary.BigEndian.AppendUint64(b, uint64(e.RecordedAt.UnixNano()))
	b = appendStr(b, e.Metadata.Tenant)
	b = appendStr(b, e.Metadata.CorrelationID)
	b = appendStr(b, e.Metadata.CausationID)
	b = appendStr(b, e.Metadata.Actor)
	b = appendStr(b, e.Metadata.Region)
	b = binary.BigEndian.AppendUint64(b, uint64(len(e.Data)))
	b = append(b, e.Data...)
	h.buf = b
	return sha256.Sum256(b)
}

// global is event.GlobalChainHash(prev, position, streamHash).
func global(prev event.Hash, position uint64, streamHash event.Hash) event.Hash {
	var b [17 + 32 + 8 + 32]byte
	copy(b[:17], "livecore.global.1")
	copy(b[17:49], prev[:])
	binary.BigEndian.PutUint64(b[49:57], position)
	copy(b[57:], streamHash[:])
	return sha256.Sum256(b[:])
}

// check recomputes e's hashes into c, with everything else linking needs
// but the stream ID.
func (h *hasher) check(c *checked, e *event.Envelope) {
	*c = checked{position: e.Position, version: e.Version, prevHash: e.PrevHash, hash: e.Hash,
		prevGlobal: e.PrevGlobalHash, global: e.GlobalHash}
	if h.stream(e.PrevHash, e) != e.Hash {
		c.flags |= badStream
	}
	if global(e.PrevGlobalHash, e.Position, e.Hash) != e.GlobalHash {
		c.flags |= badGlobal
	}
}
