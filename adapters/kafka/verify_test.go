package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/livecore/livecore/domain/event"
)

// TestVerifyFindsProblems publishes with the bridge, then damages the
// topics by hand and checks the verifier names each kind of damage: a
// duplicate, an altered record, a record from another store, two events
// out of order, events the checkpoint claims but no record carries; and
// the lag of events appended after the checkpoint.
func TestVerifyFindsProblems(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kf, brokers := startKfake(t)
	tg := target{name: "kfake", brokers: brokers, kf: kf}
	store := newMemStore(t)
	cfg := testConfig(t, tg, store)
	appendEvents(t, store, 100, 1000, 50, 1)
	b, stop := runBridge(t, cfg)
	waitPublished(t, b, 1000, time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cfg.setDefaults()
	if r := verify(t, cfg); !r.OK() {
		t.Fatalf("clean publish not OK:\n%s", r)
	}

	all, err := store.ReadAll(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	topic := func(e *event.Envelope) string { return cfg.Topics.TopicFor(event.Category(e.StreamID)) }
	rec := func(e *event.Envelope) *kgo.Record { return EncodeRecord(e, topic(e), cfg.Region) }
	var damage []*kgo.Record
	// A duplicate of event 10.
	damage = append(damage, rec(&all[9]))
	// An altered copy of event 20 (its data no longer matches lc_hash).
	altered := rec(&all[19])
	altered.Value = []byte(`{"pad":"tampered"}`)
	damage = append(damage, altered)
	// An event no store has.
	foreign := all[29]
	foreign.ID = event.DeriveID("foreign", 0)
	event.Seal(&foreign, foreign.PrevHash, foreign.PrevGlobalHash)
	damage = append(damage, rec(&foreign))

	// Two new events of one stream, published in the wrong order, then two
	// more never published but claimed by a checkpoint; then one more
	// appended and left unpublished (lag).
	stream := all[0].StreamID
	for i := range 4 {
		if _, err := store.Append(ctx, stream, event.Any, []event.Proposed{{
			ID: event.DeriveID("late", i), Type: "test.happened.v1", SchemaVersion: 1, Data: []byte(`{"n":1}`),
		}}); err != nil {
			t.Fatal(err)
		}
	}
	late, err := store.ReadAll(ctx, 1001, 0)
	if err != nil {
		t.Fatal(err)
	}
	damage = append(damage, rec(&late[1]), rec(&late[0]))
	damage = append(damage, Checkpoint{Position: 1004, EventID: late[3].ID, GlobalHash: late[3].GlobalHash}.record(cfg.Topics.Checkpoint, cfg.Name))
	if _, err := store.Append(ctx, stream, event.Any, []event.Proposed{{
		ID: event.DeriveID("late", 9), Type: "test.happened.v1", SchemaVersion: 1, Data: []byte(`{"n":1}`),
	}}); err != nil {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, damage...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	r := verify(t, cfg)
	t.Logf("damaged:\n%s", r)
	t.Logf("markdown:\n%s", r.Markdown())
	want := map[string]int{"duplicated": 1, "mismatched": 1, "unknown": 1, "out of order": 1, "missing": 2}
	got := map[string]int{"duplicated": r.Duplicated, "mismatched": r.Mismatched, "unknown": r.Unknown, "out of order": r.OutOfOrder, "missing": r.Missing}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %d, want %d", k, got[k], w)
		}
	}
	if r.OK() || r.Published != 1004 || r.Head != 1005 || r.LagEvents != 1 || r.LagSeconds <= 0 || r.NewestUnpublished.IsZero() {
		t.Errorf("verdict or lag wrong: OK %v published %d head %d lag %d / %.3fs", r.OK(), r.Published, r.Head, r.LagEvents, r.LagSeconds)
	}
	if !strings.Contains(r.String(), stream) || !strings.Contains(r.Markdown(), "| `"+stream+"` |") {
		t.Errorf("the report does not name stream %s", stream)
	}
}
