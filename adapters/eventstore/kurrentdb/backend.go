package kurrentdb

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// allPos is a place in ESDB's $all log: its commit and prepare positions
// (byte offsets in the transaction log, not counters).
type allPos struct{ Commit, Prepare uint64 }

// record is one stored ESDB event, as the adapter needs it.
type record struct {
	ID       uuid.UUID
	Stream   string
	Revision uint64
	Type     string
	Data     []byte
	Meta     []byte
	Pos      allPos
}

// proposal is one event to write to ESDB.
type proposal struct {
	ID   uuid.UUID
	Type string
	JSON bool
	Data []byte
	Meta []byte
}

// backend is the slice of ESDB the adapter uses. esdbBackend is the real
// one; tests also run the adapter on an in-process fake with ESDB's
// semantics. Errors are translated already (classify): *wrongRevisionError,
// *transientError, *notFoundError, ctx's error, or port errors.
type backend interface {
	// appendToStream appends atomically if expected holds; ESDB treats a
	// repeat of the same event IDs at the same expected revision as a
	// success that writes nothing.
	appendToStream(ctx context.Context, stream string, expected esdb.ExpectedRevision, evs []proposal) error
	// readStream reads up to count events from from (esdb.Start, esdb.End
	// or a revision), forwards or backwards. A missing stream is
	// *notFoundError.
	readStream(ctx context.Context, stream string, from esdb.StreamPosition, count uint64, backwards bool) ([]record, error)
	// readAll reads up to count events of $all forwards from from
	// (inclusive; esdb.Start or an esdb.Position).
	readAll(ctx context.Context, from esdb.AllPosition, count uint64) ([]record, error)
	close() error
}

type esdbBackend struct {
	client   *esdb.Client
	deadline *time.Duration
}

var _ backend = (*esdbBackend)(nil)

func (b *esdbBackend) appendToStream(ctx context.Context, stream string, expected esdb.ExpectedRevision, evs []proposal) error {
	data := make([]esdb.EventData, len(evs))
	for i, p := range evs {
		ct := esdb.ContentTypeBinary
		if p.JSON {
			ct = esdb.ContentTypeJson
		}
		data[i] = esdb.EventData{EventID: p.ID, EventType: p.Type, ContentType: ct, Data: p.Data, Metadata: p.Meta}
	}
	_, err := b.client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{
		ExpectedRevision: expected, RequiresLeader: true, Deadline: b.deadline,
	}, data...)
	return translate(ctx, err)
}

func (b *esdbBackend) readStream(ctx context.Context, stream string, from esdb.StreamPosition, count uint64, backwards bool) ([]record, error) {
	dir := esdb.Forwards
	if backwards {
		dir = esdb.Backwards
	}
	rs, err := b.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{
		Direction: dir, From: from, RequiresLeader: true, Deadline: b.deadline,
	}, count)
	if err != nil {
		return nil, translate(ctx, err)
	}
	return drain(ctx, rs)
}

func (b *esdbBackend) readAll(ctx context.Context, from esdb.AllPosition, count uint64) ([]record, error) {
	rs, err := b.client.ReadAll(ctx, esdb.ReadAllOptions{
		Direction: esdb.Forwards, From: from, RequiresLeader: true, Deadline: b.deadline,
	}, count)
	if err != nil {
		return nil, translate(ctx, err)
	}
	return drain(ctx, rs)
}

func drain(ctx context.Context, rs *esdb.ReadStream) ([]record, error) {
	defer rs.Close()
	var out []record
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, translate(ctx, err)
		}
		if ev.Event == nil {
			continue // a link to a deleted event; we never write links
		}
		e := ev.Event
		out = append(out, record{
			ID: e.EventID, Stream: e.StreamID, Revision: e.EventNumber, Type: e.EventType,
			Data: e.Data, Meta: e.UserMetadata,
			Pos: allPos{Commit: e.Position.Commit, Prepare: e.Position.Prepare},
		})
	}
}

func (b *esdbBackend) close() error { return b.client.Close() }

// translate maps a client error to what the backend reports: ctx's error
// when ctx ended, else classify of the esdb error code.
func translate(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	var esErr *esdb.Error
	if errors.As(err, &esErr) {
		return classify(esErr.Code(), esErr.Error())
	}
	return classify(esdb.ErrorCodeUnknown, err.Error())
}
