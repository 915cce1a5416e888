package pebble

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
	"unsafe"

	"github.com/livecore/livecore/domain/event"
)

// On-disk layout (format 1). Every key starts with a one-byte kind; integers
// are big-endian so keys sort numerically. Every value ends in a CRC-32C
// (Castagnoli, 4 bytes little-endian) over key || payload, so a torn or
// flipped value, or a value found under the wrong key, fails its check and
// is reported as event.ErrCorrupt instead of being served.
//
//	'e' position(8)                 -> event record (below)
//	's' stream 0x00 version(8)      -> position(8)
//	'i' eventID                     -> position(8) version(8) stream
//	'h' stream                      -> version(8) position(8) hash(32)
//	'm' "format"                    -> format(1)
//
// Stream IDs are printable ASCII (event.ValidateStreamID), so the 0x00
// separator keeps one stream's index entries together and in version order.
//
// An event record is:
//
//	format(1)=1
//	8 x (uvarint length, bytes): ID, StreamID, Type, Metadata.Tenant,
//	    .CorrelationID, .CausationID, .Actor, .Region
//	uvarint SchemaVersion
//	RecordedAt unix nanoseconds(8), Version(8), Position(8)
//	PrevHash(32) Hash(32) PrevGlobalHash(32) GlobalHash(32)
//	Data (the rest)
//
// All the events of one append, their index entries and the stream's head
// are written in one Pebble batch, so a crash leaves all or none of them.
const (
	kindEvent  = 'e'
	kindStream = 's'
	kindID     = 'i'
	kindHead   = 'h'
	kindMeta   = 'm'

	recordFormat = 1
	storeFormat  = 1
	crcLen       = 4
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	formatKey  = []byte("mformat")
)

func eventKey(dst []byte, pos uint64) []byte {
	dst = append(dst, kindEvent)
	return binary.BigEndian.AppendUint64(dst, pos)
}

func streamPrefix(dst []byte, stream string) []byte {
	dst = append(dst, kindStream)
	dst = append(dst, stream...)
	return append(dst, 0)
}

func streamKey(dst []byte, stream string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(streamPrefix(dst, stream), version)
}

func idKey(dst []byte, id string) []byte {
	dst = append(dst, kindID)
	return append(dst, id...)
}

func headKey(dst []byte, stream string) []byte {
	dst = append(dst, kindHead)
	return append(dst, stream...)
}

// seal appends the checksum of key || dst[from:] to dst.
func seal(dst []byte, from int, key []byte) []byte {
	c := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, dst[from:])
	return binary.LittleEndian.AppendUint32(dst, c)
}

// unseal checks val's checksum against key and returns its payload.
func unseal(key, val []byte) ([]byte, error) {
	if len(val) < crcLen {
		return nil, fmt.Errorf("%w: key %q: value of %d bytes", event.ErrCorrupt, key, len(val))
	}
	payload := val[:len(val)-crcLen]
	want := binary.LittleEndian.Uint32(val[len(payload):])
	if crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, payload) != want {
		return nil, fmt.Errorf("%w: key %q: checksum mismatch", event.ErrCorrupt, key)
	}
	return payload, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendRecord appends e's record and checksum (for key) to dst.
func appendRecord(dst, key []byte, e *event.Envelope) []byte {
	from := len(dst)
	dst = append(dst, recordFormat)
	for _, s := range [...]string{e.ID, e.StreamID, e.Type, e.Metadata.Tenant, e.Metadata.CorrelationID,
		e.Metadata.CausationID, e.Metadata.Actor, e.Metadata.Region} {
		dst = appendString(dst, s)
	}
	dst = binary.AppendUvarint(dst, uint64(e.SchemaVersion))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.RecordedAt.UnixNano()))
	dst = binary.BigEndian.AppendUint64(dst, e.Version)
	dst = binary.BigEndian.AppendUint64(dst, e.Position)
	dst = append(dst, e.PrevHash[:]...)
	dst = append(dst, e.Hash[:]...)
	dst = append(dst, e.PrevGlobalHash[:]...)
	dst = append(dst, e.GlobalHash[:]...)
	dst = append(dst, e.Data...)
	return seal(dst, from, key)
}

const fixedLen = 3*8 + 4*32

// recordLayout locates the fields of a checked record's payload.
type recordLayout struct {
	spans  [8][2]int // string i is payload[spans[i][0]:spans[i][1]]
	strEnd int       // the strings end here
	sv     int       // SchemaVersion
	fixed  int       // the fixed fields start here; Data follows them
}

// parseRecord checks the record stored under key and returns its payload
// and where its fields are.
func parseRecord(key, val []byte) ([]byte, recordLayout, error) {
	var r recordLayout
	payload, err := unseal(key, val)
	if err != nil {
		return nil, r, err
	}
	corrupt := func(what string) error {
		return fmt.Errorf("%w: key %q: %s", event.ErrCorrupt, key, what)
	}
	if len(payload) == 0 || payload[0] != recordFormat {
		return nil, r, corrupt("unknown record format")
	}
	off := 1
	for i := range r.spans {
		n, w := binary.Uvarint(payload[off:])
		if w <= 0 || n > uint64(len(payload)-off-w) {
			return nil, r, corrupt("bad string length")
		}
		off += w
		r.spans[i] = [2]int{off, off + int(n)}
		off += int(n)
	}
	r.strEnd = off
	sv, w := binary.Uvarint(payload[off:])
	if w <= 0 || sv > 1<<31 || len(payload)-off-w < fixedLen {
		return nil, r, corrupt("truncated")
	}
	r.sv, r.fixed = int(sv), off+w
	return payload, r, nil
}

// envelope overwrites e with the record: the fixed fields from payload,
// the strings from strs (laid out as payload[:r.strEnd]), Data as given.
func (r *recordLayout) envelope(e *event.Envelope, payload, strs, data []byte) {
	str := func(i int) string {
		if r.spans[i][0] == r.spans[i][1] {
			return ""
		}
		return unsafe.String(&strs[r.spans[i][0]], r.spans[i][1]-r.spans[i][0])
	}
	fixed := payload[r.fixed : r.fixed+fixedLen]
	*e = event.Envelope{
		ID:            str(0),
		StreamID:      str(1),
		Type:          str(2),
		SchemaVersion: r.sv,
		Metadata: event.Metadata{
			Tenant:        str(3),
			CorrelationID: str(4),
			CausationID:   str(5),
			Actor:         str(6),
			Region:        str(7),
		},
		RecordedAt: time.Unix(0, int64(binary.BigEndian.Uint64(fixed[0:8]))).UTC(),
		Version:    binary.BigEndian.Uint64(fixed[8:16]),
		Position:   binary.BigEndian.Uint64(fixed[16:24]),
		Data:       data,
	}
	copy(e.PrevHash[:], fixed[24:56])
	copy(e.Hash[:], fixed[56:88])
	copy(e.PrevGlobalHash[:], fixed[88:120])
	copy(e.GlobalHash[:], fixed[120:152])
}

// decodeRecord checks the record stored under key and decodes it into e,
// overwriting it. The envelope never aliases val: its string fields and
// Data share one new allocation.
func decodeRecord(e *event.Envelope, key, val []byte) error {
	payload, r, err := parseRecord(key, val)
	if err != nil {
		return err
	}
	data := payload[r.fixed+fixedLen:]
	// One allocation holds payload[:strEnd] (the string fields) followed by
	// Data. The strings point into the first part, which nothing else
	// references or writes; Data is capped to the second part, so a
	// caller's append to Data cannot reach the strings.
	own := make([]byte, r.strEnd+len(data))
	copy(own, payload[:r.strEnd])
	copy(own[r.strEnd:], data)
	r.envelope(e, payload, own, own[r.strEnd:len(own):len(own)])
	return nil
}

// decodeRecordInPlace checks the record stored under key and decodes it
// into e without copying: e's strings and Data point into val, so e is
// valid only as long as val is (for ScanAll: during its callback). Data is
// capped, so an append to it cannot write into val.
func decodeRecordInPlace(e *event.Envelope, key, val []byte) error {
	payload, r, err := parseRecord(key, val)
	if err != nil {
		return err
	}
	r.envelope(e, payload, payload, payload[r.fixed+fixedLen:len(payload):len(payload)])
	return nil
}

// idLoc is where an event ID is stored.
type idLoc struct {
	position, version uint64
	stream            string
}

func appendIDLoc(dst, key []byte, l idLoc) []byte {
	from := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, l.position)
	dst = binary.BigEndian.AppendUint64(dst, l.version)
	dst = append(dst, l.stream...)
	return seal(dst, from, key)
}

func decodeIDLoc(key, val []byte) (idLoc, error) {
	p, err := unseal(key, val)
	if err != nil {
		return idLoc{}, err
	}
	if len(p) < 17 {
		return idLoc{}, fmt.Errorf("%w: key %q: short ID entry", event.ErrCorrupt, key)
	}
	return idLoc{binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:]), string(p[16:])}, nil
}

// streamHead is the last event of a stream (version 0: no stream).
type streamHead struct {
	version, position uint64
	hash              event.Hash
}

func appendHead(dst, key []byte, h streamHead) []byte {
	from := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, h.version)
	dst = binary.BigEndian.AppendUint64(dst, h.position)
	dst = append(dst, h.hash[:]...)
	return seal(dst, from, key)
}

func decodeHead(key, val []byte) (streamHead, error) {
	p, err := unseal(key, val)
	if err != nil {
		return streamHead{}, err
	}
	if len(p) != 48 {
		return streamHead{}, fmt.Errorf("%w: key %q: head of %d bytes", event.ErrCorrupt, key, len(p))
	}
	h := streamHead{version: binary.BigEndian.Uint64(p), position: binary.BigEndian.Uint64(p[8:])}
	copy(h.hash[:], p[16:])
	return h, nil
}

func appendPosition(dst, key []byte, pos uint64) []byte {
	from := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, pos)
	return seal(dst, from, key)
}

func decodePosition(key, val []byte) (uint64, error) {
	p, err := unseal(key, val)
	if err != nil {
		return 0, err
	}
	if len(p) != 8 {
		return 0, fmt.Errorf("%w: key %q: position of %d bytes", event.ErrCorrupt, key, len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}
