package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file talks to the brokers with raw kmsg requests: topic creation,
// metadata, list offsets, and a small read_committed range reader. The
// range reader knows exactly how far it has read (ProcessFetchPartition
// returns the next offset, past control records and aborted batches), which
// a kgo consumer does not tell; reading "up to the high watermark seen
// after fencing" is what makes the checkpoint read correct.

// topicMeta is one topic's metadata.
type topicMeta struct {
	name    string
	id      [16]byte
	leaders []int32 // by partition
}

// metadata returns the metadata of topics (all topics when none given).
// Topics that do not exist are absent from the result.
func metadata(ctx context.Context, cl *kgo.Client, topics ...string) (map[string]topicMeta, error) {
	req := kmsg.NewPtrMetadataRequest()
	if len(topics) > 0 {
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
	} else {
		req.Topics = nil // all
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	out := make(map[string]topicMeta, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		switch err := kerr.ErrorForCode(t.ErrorCode); {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			continue
		case err != nil:
			return nil, fmt.Errorf("metadata %s: %w", *t.Topic, err)
		}
		tm := topicMeta{name: *t.Topic, id: t.TopicID, leaders: make([]int32, len(t.Partitions))}
		for i := range tm.leaders {
			tm.leaders[i] = -1
		}
		for _, p := range t.Partitions {
			if int(p.Partition) < len(tm.leaders) && p.ErrorCode == 0 {
				tm.leaders[p.Partition] = p.Leader
			}
		}
		out[tm.name] = tm
	}
	return out, nil
}

// topicSpec is a topic to create.
type topicSpec struct {
	name       string
	partitions int32
	rf         int16
	configs    map[string]string
}

func (t Topics) eventSpec(name string) topicSpec {
	c := map[string]string{
		"cleanup.policy": "delete",
		"retention.ms":   strconv.FormatInt(t.RetentionMs, 10),
	}
	if t.MinInsyncReplicas > 0 {
		c["min.insync.replicas"] = strconv.Itoa(t.MinInsyncReplicas)
	}
	return topicSpec{name: name, partitions: t.Partitions, rf: t.ReplicationFactor, configs: c}
}

func (t Topics) checkpointSpec() topicSpec {
	c := map[string]string{
		"cleanup.policy": "compact",
		// Roll segments hourly so the cleaner can drop superseded
		// checkpoints (one per transaction) in a day, not a week.
		"segment.ms": "3600000",
	}
	if t.MinInsyncReplicas > 0 {
		c["min.insync.replicas"] = strconv.Itoa(t.MinInsyncReplicas)
	}
	return topicSpec{name: t.Checkpoint, partitions: 1, rf: t.ReplicationFactor, configs: c}
}

// createTopics creates the topics that do not exist yet (an existing topic
// is left as it is) and waits until every partition of each has a leader.
func createTopics(ctx context.Context, cl *kgo.Client, specs ...topicSpec) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30_000
	for _, s := range specs {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = s.name
		rt.NumPartitions = s.partitions
		rt.ReplicationFactor = s.rf
		keys := make([]string, 0, len(s.configs))
		for k := range s.configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name = k
			c.Value = kmsg.StringPtr(s.configs[k])
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			msg := ""
			if t.ErrorMessage != nil {
				msg = ": " + *t.ErrorMessage
			}
			errs = append(errs, fmt.Errorf("create topic %s: %w%s", t.Topic, err, msg))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	// A new topic's leaders take a moment to appear on a real cluster.
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		md, err := metadata(ctx, cl, names...)
		if err == nil && allLed(md, names) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create topics %v: waiting for leaders: %w", names, context.Cause(ctx))
		case <-time.After(wait):
		}
	}
}

func allLed(md map[string]topicMeta, names []string) bool {
	for _, n := range names {
		tm, ok := md[n]
		if !ok || len(tm.leaders) == 0 {
			return false
		}
		for _, l := range tm.leaders {
			if l < 0 {
				return false
			}
		}
	}
	return true
}

// offsetKind selects what listOffsets returns.
type offsetKind int64

const (
	offsetEnd   offsetKind = -1 // high watermark (read_uncommitted)
	offsetStart offsetKind = -2 // log start
)

// partKey names a topic partition.
type partKey struct {
	topic     string
	partition int32
}

// listOffsets returns the start or end offset of every partition of
// topics (metadata md).
func listOffsets(ctx context.Context, cl *kgo.Client, md map[string]topicMeta, kind offsetKind) (map[partKey]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = 0
	for _, tm := range md {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = tm.name
		for p := range tm.leaders {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = int32(p)
			rp.Timestamp = int64(kind)
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	out := make(map[partKey]int64)
	if len(req.Topics) == 0 {
		return out, nil
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("list offsets %s/%d: %w", t.Topic, p.Partition, err)
			}
			out[partKey{t.Topic, p.Partition}] = p.Offset
		}
	}
	return out, nil
}

// partRange is a partition to read from next up to end (exclusive).
type partRange struct {
	topic     string
	partition int32
	next, end int64
}

// readRanges reads every range (read_committed if committed), calling fn for
// each record (in offset order within a partition; fn is never called
// concurrently) until each range's next offset reaches its end. With
// read_committed, records of aborted transactions are never passed to fn,
// and reading waits at the last stable offset until open transactions
// below end resolve. A range whose start was deleted (retention) resumes at
// the log start; truncated reports, per partition, how many offsets that
// skipped.
func readRanges(ctx context.Context, cl *kgo.Client, ranges []partRange, committed bool, fn func(*kgo.Record) error) (truncated map[partKey]int64, err error) {
	truncated = make(map[partKey]int64)
	pending := make(map[partKey]*partRange, len(ranges))
	var topics []string
	seenTopic := make(map[string]bool)
	for i := range ranges {
		r := &ranges[i]
		if r.next < r.end {
			pending[partKey{r.topic, r.partition}] = r
			if !seenTopic[r.topic] {
				seenTopic[r.topic] = true
				topics = append(topics, r.topic)
			}
		}
	}
	var (
		md        map[string]topicMeta
		refresh   = true
		fnMu      sync.Mutex
		decompose = kgo.DefaultDecompressor()
	)
	for backoff := 0; len(pending) > 0; {
		if err := ctx.Err(); err != nil {
			return truncated, context.Cause(ctx)
		}
		if refresh {
			if md, err = metadata(ctx, cl, topics...); err != nil {
				return truncated, err
			}
			refresh = false
		}
		byLeader := make(map[int32][]*partRange)
		for k, r := range pending {
			tm, ok := md[k.topic]
			if !ok || int(k.partition) >= len(tm.leaders) || tm.leaders[k.partition] < 0 {
				refresh = true
				continue
			}
			byLeader[tm.leaders[k.partition]] = append(byLeader[tm.leaders[k.partition]], r)
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			firstErr error
			progress bool
		)
		for leader, rs := range byLeader {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, again, err := fetchOnce(ctx, cl, leader, md, rs, committed, truncated, &mu, func(r *kgo.Record) error {
					fnMu.Lock()
					defer fnMu.Unlock()
					return fn(r)
				}, decompose)
				mu.Lock()
				defer mu.Unlock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				progress = progress || p
				refresh = refresh || again
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return truncated, firstErr
		}
		for k, r := range pending {
			if r.next >= r.end {
				delete(pending, k)
			}
		}
		if progress {
			backoff = 0
			continue
		}
		// Nothing moved: open transactions hold the last stable offset,
		// or metadata is stale. Pause a little, more each time.
		backoff = min(backoff+1, 10)
		select {
		case <-ctx.Done():
			return truncated, context.Cause(ctx)
		case <-time.After(time.Duration(backoff) * 20 * time.Millisecond):
		}
	}
	return truncated, nil
}

// fetchOnce sends one fetch for rs to leader and processes the answer.
func fetchOnce(ctx context.Context, cl *kgo.Client, leader int32, md map[string]topicMeta, rs []*partRange, committed bool,
	truncated map[partKey]int64, mu *sync.Mutex, fn func(*kgo.Record) error, dec kgo.Decompressor,
) (progress, refresh bool, err error) {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 200
	req.MinBytes = 1
	req.MaxBytes = 32 << 20
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
		req.IsolationLevel = 1
	}
	req.SessionEpoch = -1 // no fetch session: every fetch is full
	idx := make(map[string]int)
	byTopicID := make(map[[16]byte]string)
	for _, r := range rs {
		i, ok := idx[r.topic]
		if !ok {
			i = len(req.Topics)
			idx[r.topic] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = r.topic
			rt.TopicID = md[r.topic].id
			byTopicID[rt.TopicID] = r.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = r.partition
		rp.FetchOffset = r.next
		rp.PartitionMaxBytes = 8 << 20
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	byKey := make(map[partKey]*partRange, len(rs))
	for _, r := range rs {
		byKey[partKey{r.topic, r.partition}] = r
	}
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err != nil {
		if ctx.Err() != nil {
			return false, false, context.Cause(ctx)
		}
		return false, true, nil // the broker may be gone; reload metadata and retry
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return false, true, nil
	}
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		topic := rt.Topic
		if topic == "" {
			topic = byTopicID[rt.TopicID]
		}
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			r := byKey[partKey{topic, rp.Partition}]
			if r == nil {
				continue
			}
			switch perr := kerr.ErrorForCode(rp.ErrorCode); {
			case perr == nil:
			case errors.Is(perr, kerr.OffsetOutOfRange):
				starts, err := listOffsets(ctx, cl, map[string]topicMeta{topic: md[topic]}, offsetStart)
				if err != nil {
					return false, false, err
				}
				if s := starts[partKey{topic, rp.Partition}]; s > r.next {
					mu.Lock()
					truncated[partKey{topic, rp.Partition}] += s - r.next
					mu.Unlock()
					r.next = s
					progress = true
					continue
				}
				return false, false, fmt.Errorf("fetch %s/%d at %d: %w", topic, rp.Partition, r.next, perr)
			case kerr.IsRetriable(perr) || errors.Is(perr, kerr.UnknownTopicID):
				refresh = true
				continue
			default:
				return false, false, fmt.Errorf("fetch %s/%d at %d: %w", topic, rp.Partition, r.next, perr)
			}
			fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
				Offset:         r.next,
				IsolationLevel: iso,
				Topic:          topic,
				Partition:      rp.Partition,
			}, rp, dec, nil)
			if fp.Err != nil {
				return false, false, fmt.Errorf("fetch %s/%d at %d: %w", topic, rp.Partition, r.next, fp.Err)
			}
			for _, rec := range fp.Records {
				if rec.Offset >= r.end {
					break
				}
				if err := fn(rec); err != nil {
					return false, false, err
				}
			}
			if next > r.next {
				r.next = next
				progress = true
			}
		}
	}
	return progress, refresh, nil
}
