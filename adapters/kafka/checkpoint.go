package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/livecore/livecore/domain/event"
)

// Checkpoint is the last event a bridge published: the value of its
// record in the checkpoint topic (key = the bridge's Name), written in the
// same transaction as the events up to it.
type Checkpoint struct {
	// Position is the global position of the last published event (0:
	// nothing published).
	Position uint64 `json:"position"`
	// EventID and GlobalHash identify that event, so a bridge pointed at
	// another store (or a store restored from an old backup) notices.
	EventID    string     `json:"event_id,omitempty"`
	GlobalHash event.Hash `json:"global_hash"`
	// Region and WrittenAt are informational.
	Region    string    `json:"region,omitempty"`
	WrittenAt time.Time `json:"written_at"`
}

func (c Checkpoint) record(topic, key string) *kgo.Record {
	v, _ := json.Marshal(c) // a struct of strings, numbers and a time: cannot fail
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: v}
}

// checkpointPartitioner places checkpoint records; the reader computes the
// partition of a key with the same function.
var checkpointPartitioner = kgo.StickyKeyPartitioner(nil)

// readCheckpoint returns the last committed checkpoint of key in topic, or
// found=false when there is none (or no topic). It reads read_committed up
// to the high watermark as of the call: call it only after the bridge's
// producer ID is initialised (which aborts or completes the previous
// instance's transaction), so every transaction that will ever commit under
// the old epoch is below that mark. Open transactions of other producers
// below the mark are waited for.
//
// The topic is compacted but the cleaner lags, so it is read backwards in
// growing windows from the end instead of from the start.
func readCheckpoint(ctx context.Context, cl *kgo.Client, topic, key string) (cp Checkpoint, found bool, err error) {
	md, err := metadata(ctx, cl, topic)
	if err != nil {
		return Checkpoint{}, false, err
	}
	tm, ok := md[topic]
	if !ok || len(tm.leaders) == 0 {
		return Checkpoint{}, false, nil
	}
	p := int32(checkpointPartitioner.ForTopic(topic).Partition(&kgo.Record{Key: []byte(key)}, len(tm.leaders)))
	ends, err := listOffsets(ctx, cl, md, offsetEnd)
	if err != nil {
		return Checkpoint{}, false, err
	}
	starts, err := listOffsets(ctx, cl, md, offsetStart)
	if err != nil {
		return Checkpoint{}, false, err
	}
	pk := partKey{topic, p}
	start, end := starts[pk], ends[pk]
	var (
		bestOffset int64 = -1
		decodeErr  error
	)
	for window := int64(256); end > start; window *= 4 {
		from := max(start, end-window)
		_, err := readRanges(ctx, cl, []partRange{{topic: topic, partition: p, next: from, end: end}}, true, func(r *kgo.Record) error {
			if string(r.Key) != key || r.Offset < bestOffset {
				return nil
			}
			var c Checkpoint
			if err := json.Unmarshal(r.Value, &c); err != nil {
				decodeErr = fmt.Errorf("checkpoint %s/%d@%d: %w", topic, p, r.Offset, err)
				return nil
			}
			cp, found, bestOffset, decodeErr = c, true, r.Offset, nil
			return nil
		})
		if err != nil {
			return Checkpoint{}, false, fmt.Errorf("read checkpoint %s: %w", key, err)
		}
		if decodeErr != nil {
			return Checkpoint{}, false, decodeErr
		}
		if found {
			return cp, true, nil
		}
		end = from
	}
	return Checkpoint{}, false, nil
}

// ReadCheckpoint returns the committed checkpoint of the bridge that cfg
// configures (cfg.Brokers, Region or Name, Topics.Checkpoint, ClientOpts);
// the zero Checkpoint when it has published nothing. It does not fence a
// running bridge; it waits (read_committed) for the bridge's open
// transaction, if any, to end, and returns the checkpoint as of then.
func ReadCheckpoint(ctx context.Context, cfg Config) (Checkpoint, error) {
	cfg.setDefaults()
	if len(cfg.Brokers) == 0 {
		return Checkpoint{}, errors.New("read checkpoint: no brokers")
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)...)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint: %w", err)
	}
	defer cl.Close()
	cp, _, err := readCheckpoint(ctx, cl, cfg.Topics.Checkpoint, cfg.Name)
	return cp, err
}
