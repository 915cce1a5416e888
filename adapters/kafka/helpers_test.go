package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/internal/testenv"
)

// target is a broker to test against: kfake in-process or the real Kafka.
type target struct {
	name    string
	brokers []string
	kf      *kfake.Cluster // nil for real Kafka
}

// forEachTarget runs fn against kfake and against the real broker from
// testenv (that subtest skips loudly, or fails in CI, when it is missing).
func forEachTarget(t *testing.T, fn func(t *testing.T, tg target)) {
	t.Run("kfake", func(t *testing.T) {
		kf, brokers := startKfake(t)
		fn(t, target{name: "kfake", brokers: brokers, kf: kf})
	})
	t.Run("kafka", func(t *testing.T) {
		fn(t, target{name: "kafka", brokers: testenv.KafkaBrokers(t)})
	})
}

func startKfake(t testing.TB, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	kf, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(kf.Close)
	return kf, kf.ListenAddrs()
}

// testConfig is a bridge config with topic names, transactional ID and
// checkpoint key unique to this test (the real broker is shared).
func testConfig(t testing.TB, tg target, src Source) Config {
	t.Helper()
	u := testenv.UniqueTopic(t, "lc")
	return Config{
		Source:          src,
		Brokers:         tg.brokers,
		Region:          "test-" + u[len(u)-8:],
		Name:            u + "-bridge",
		TransactionalID: u + "-txn",
		Topics: Topics{
			Prefix:     u + ".",
			Suffix:     ".v1",
			Checkpoint: u + ".checkpoints.v1",
			Partitions: 4,
		},
		RetryBackoff: 20 * time.Millisecond,
		Logger:       testLogger(t),
		Registerer:   prometheus.NewRegistry(),
	}
}

// testLogger logs warnings and errors to the test log (-v) and drops the
// rest.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("LIVECORE_BRIDGE_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var categories = []string{"order", "payment", "shipment"}

// appendEvents appends n events spread over streams streams (three
// categories), each append 1-3 events, with dataSize bytes of JSON data.
// It returns the store's head.
func appendEvents(t testing.TB, s event.Appender, streams, n, dataSize int, seed uint64) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	data := jsonData(dataSize)
	for done := 0; done < n; {
		k := min(1+rng.IntN(3), n-done)
		sid := rng.IntN(streams)
		stream := fmt.Sprintf("%s-%d", categories[sid%len(categories)], sid)
		evs := make([]event.Proposed, k)
		for i := range evs {
			evs[i] = event.Proposed{
				ID:            event.DeriveID(fmt.Sprintf("cmd-%d-%d", seed, done), i),
				Type:          "test.happened.v1",
				SchemaVersion: 1,
				Data:          data,
				Metadata:      event.Metadata{Tenant: "t1", CorrelationID: "c", Actor: "tester", Region: "eu"},
			}
		}
		if _, err := s.Append(ctx, stream, event.Any, evs); err != nil {
			t.Fatalf("append: %v", err)
		}
		done += k
	}
}

// jsonData is a JSON object of about n bytes.
func jsonData(n int) []byte {
	const pad = `{"pad":""}`
	if n < len(pad) {
		n = len(pad)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"pad":"`...)
	for len(b) < n-2 {
		b = append(b, byte('a'+len(b)%26))
	}
	return append(b, `"}`...)
}

func newMemStore(t testing.TB) *memory.Store {
	s := memory.New(memory.Config{})
	t.Cleanup(func() { s.Close() })
	return s
}

// runBridge runs a new bridge for cfg in the background; stop cancels it
// and returns Run's error (nil for a clean stop).
func runBridge(t testing.TB, cfg Config) (b *Bridge, stop func() error) {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("new bridge: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
			if errors.Is(runErr, context.Canceled) {
				runErr = nil
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return b, stop
}

func waitPublished(t testing.TB, b *Bridge, pos uint64, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := b.WaitPublished(ctx, pos); err != nil {
		t.Fatalf("bridge published %d, want %d within %v: %v", b.Published(), pos, within, err)
	}
}

// consumed is what an independent read_committed kgo consumer saw.
type consumed struct {
	records     int
	byID        map[string]int
	positions   map[uint64]int // records per global position
	outOfOrder  int
	maxVersion  map[string]uint64
	checkpoints []uint64 // checkpoint positions in offset order (key = bridge name)
	producers   map[[2]int64]int
}

// consumeCommitted reads every topic of cfg from the start up to the
// current end offsets with a plain kgo consumer (read_committed,
// FetchMaxWait 150 ms), independently of the bridge's own reader.
func consumeCommitted(t testing.TB, cfg Config) *consumed {
	t.Helper()
	cfg.setDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	md, err := metadata(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	topics := map[string]topicMeta{}
	for n, tm := range md {
		if strings.HasPrefix(n, cfg.Topics.Prefix) {
			topics[n] = tm
		}
	}
	ends, err := listOffsets(ctx, admin, topics, offsetEnd)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range topics {
		names = append(names, n)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics(names...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(150*time.Millisecond),
		kgo.KeepControlRecords(),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c := &consumed{byID: map[string]int{}, positions: map[uint64]int{}, maxVersion: map[string]uint64{}, producers: map[[2]int64]int{}}
	remaining := map[partKey]int64{}
	for k, end := range ends {
		if end > 0 {
			remaining[k] = end
		}
	}
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume: %v (still waiting for %v)", err, remaining)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("consume %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			k := partKey{r.Topic, r.Partition}
			if end, ok := remaining[k]; ok && r.Offset+1 >= end {
				delete(remaining, k)
			}
			if r.Attrs.IsControl() {
				return
			}
			end, ok := ends[k]
			if !ok || r.Offset >= end {
				return
			}
			if r.Topic == cfg.Topics.Checkpoint {
				if string(r.Key) == cfg.Name {
					var cp Checkpoint
					if err := json.Unmarshal(r.Value, &cp); err != nil {
						t.Fatalf("checkpoint: %v", err)
					}
					c.checkpoints = append(c.checkpoints, cp.Position)
				}
				return
			}
			env, err := DecodeRecord(r)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			c.records++
			c.producers[[2]int64{r.ProducerID, int64(r.ProducerEpoch)}]++
			c.byID[env.ID]++
			c.positions[env.Position]++
			if c.byID[env.ID] == 1 {
				if env.Version < c.maxVersion[env.StreamID] {
					c.outOfOrder++
				}
				c.maxVersion[env.StreamID] = max(c.maxVersion[env.StreamID], env.Version)
			}
		})
	}
	return c
}

func (c *consumed) duplicates() int {
	n := 0
	for _, k := range c.byID {
		n += k - 1
	}
	return n
}

// missing counts store events up to head that the consumer did not see.
func (c *consumed) missing(t testing.TB, s event.AllReader, head uint64) int {
	t.Helper()
	evs, err := s.ReadAll(context.Background(), 1, int(head))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if c.byID[e.ID] == 0 {
			n++
		}
	}
	return n
}

func head(t testing.TB, s event.HeadReader) uint64 {
	t.Helper()
	h, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func verify(t testing.TB, cfg Config) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Verify(ctx, cfg)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return r
}
