package kafka

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/livecore/livecore/domain/event"
)

// TestRecordRoundTrip: DecodeRecord rebuilds exactly the envelope that
// EncodeRecord encoded (global hashes aside), and refuses altered content.
func TestRecordRoundTrip(t *testing.T) {
	e := event.Envelope{
		ID: event.DeriveID("cmd", 0), StreamID: "order-42", Type: "order.placed.v2", SchemaVersion: 2,
		Data:       []byte(`{"total":"10.00"}`),
		Metadata:   event.Metadata{Tenant: "acme", CorrelationID: "corr", CausationID: "cause", Actor: "user:7", Region: "eu-west"},
		RecordedAt: time.Date(2026, 3, 4, 5, 6, 7, 891011, time.UTC),
		Version:    3, Position: 1234,
	}
	event.Seal(&e, event.Hash{1, 2, 3}, event.Hash{9})
	r := EncodeRecord(&e, "livecore.order.v1", "eu-west")
	if string(r.Key) != "order-42" || r.Topic != "livecore.order.v1" {
		t.Fatalf("key %q topic %q", r.Key, r.Topic)
	}
	got := map[string]string{}
	for _, h := range r.Headers {
		got[h.Key] = string(h.Value)
	}
	want := map[string]string{
		"ce_specversion": "1.0", "ce_id": e.ID, "ce_type": "order.placed.v2", "ce_source": "eu-west",
		"ce_time": "2026-03-04T05:06:07.000891011Z", "ce_subject": "order-42", "content-type": "application/json",
		"lc_version": "3", "lc_position": "1234", "lc_hash": e.Hash.String(), "lc_prev_hash": e.PrevHash.String(),
		"lc_tenant": "acme", "lc_correlation_id": "corr", "lc_causation_id": "cause", "lc_actor": "user:7",
		"lc_region": "eu-west", "lc_recorded_at": "1772600767000891011", "lc_schema_version": "2",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("headers (-want +got):\n%s", d)
	}
	back, err := DecodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	e.PrevGlobalHash, e.GlobalHash = event.Hash{}, event.Hash{}
	if d := cmp.Diff(e, back); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}

	r.Value = []byte(`{"total":"99.00"}`)
	if _, err := DecodeRecord(r); !errors.Is(err, ErrBadRecord) {
		t.Errorf("altered data: %v, want ErrBadRecord", err)
	}
	r = EncodeRecord(&e, "t", "s")
	r.Headers = r.Headers[:5]
	if _, err := DecodeRecord(r); !errors.Is(err, ErrBadRecord) {
		t.Errorf("missing headers: %v, want ErrBadRecord", err)
	}
}
