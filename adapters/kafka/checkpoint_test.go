package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReadCheckpoint: the latest committed checkpoint of a key wins; an
// aborted later one is ignored; a key whose last record is thousands of
// offsets back (other bridges wrote since) is still found; a checkpoint
// topic with several partitions is read where the producer put the key; a
// key never written, or a missing topic, reads as none.
func TestReadCheckpoint(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cfg := testConfig(t, tg, nil)
		cfg.setDefaults()
		topic := cfg.Topics.Checkpoint
		admin, err := kgo.NewClient(kgo.SeedBrokers(tg.brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		if cp, found, err := readCheckpoint(ctx, admin, topic, "a"); err != nil || found || cp.Position != 0 {
			t.Fatalf("no topic: %+v %v %v", cp, found, err)
		}
		spec := cfg.Topics.checkpointSpec()
		spec.partitions = 3
		if err := createTopics(ctx, admin, spec); err != nil {
			t.Fatal(err)
		}
		p, err := kgo.NewClient(kgo.SeedBrokers(tg.brokers...), kgo.TransactionalID(cfg.TransactionalID),
			kgo.RecordPartitioner(checkpointPartitioner))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		txn := func(commit bool, recs ...*kgo.Record) {
			t.Helper()
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatal(err)
			}
		}
		cp := func(key string, pos uint64) *kgo.Record { return Checkpoint{Position: pos}.record(topic, key) }
		// Key "a": 1..5 committed, 6 aborted. Then 3000 records of other
		// keys (some sharing a's partition), in batches.
		for i := uint64(1); i <= 5; i++ {
			txn(true, cp("a", i))
		}
		txn(false, cp("a", 6))
		for i := range 30 {
			var recs []*kgo.Record
			for j := range 100 {
				recs = append(recs, cp(fmt.Sprintf("other-%d", j%7), uint64(i*100+j)))
			}
			txn(true, recs...)
		}
		txn(true, cp("b", 42))

		for key, want := range map[string]uint64{"a": 5, "b": 42, "other-0": 2998} {
			got, found, err := readCheckpoint(ctx, admin, topic, key)
			if err != nil || !found || got.Position != want {
				t.Errorf("checkpoint %s = %d (found %v, err %v), want %d", key, got.Position, found, err, want)
			}
		}
		if _, found, err := readCheckpoint(ctx, admin, topic, "never"); err != nil || found {
			t.Errorf("never-written key: found=%v err=%v", found, err)
		}
	})
}
