package event

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// DeriveID returns the ID of the index-th event caused by a command: a
// UUID-formatted (RFC 9562 version 8) digest of the command ID and the index.
// The same command always yields the same IDs, which is how a store tells a
// retried append from a new one. commandID must be unique per command (an
// Idempotency-Key scoped by tenant, a saga step key), never random per try.
func DeriveID(commandID string, index int) string {
	h := sha256.New()
	h.Write([]byte("livecore.event-id.v1\x00"))
	h.Write([]byte(commandID))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(index))
	h.Write(b[:])
	var u [32]byte
	h.Sum(u[:0])
	u[6] = (u[6] & 0x0f) | 0x80 // version 8
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 9562 variant
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], u[10:16])
	return string(s[:])
}
