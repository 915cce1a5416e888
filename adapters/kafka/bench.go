package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/adapters/kafka/embedded"
	"github.com/livecore/livecore/domain/event"
)

// BenchConfig configures RunBench. The zero value measures 200,000 events
// of 1 KiB on an in-process broker with the bridge's default batching.
type BenchConfig struct {
	// Brokers of the cluster to measure. Empty: an in-process broker
	// (embedded, in memory) started for the run.
	Brokers []string
	// Events pre-filled into an in-memory store and published per run.
	// Default 200,000.
	Events int
	// EventBytes is the size of each event's data. Default 1024.
	EventBytes int
	// Streams the events are spread over (three categories, so three
	// topics). Default 10,000.
	Streams int
	// Partitions per topic. Default 8.
	Partitions int32
	// Rounds: each round publishes everything exactly-once and
	// at-least-once (alternating which goes first), to fresh topics;
	// medians are reported. Default 5.
	Rounds int
	// MaxEvents and MaxDelay: the bridge's batching (its defaults if 0).
	MaxEvents int
	MaxDelay  time.Duration
	// LagRate (events/s) and LagDuration: the end-to-end lag phase appends
	// at this rate while an exactly-once bridge runs and a read_committed
	// consumer measures append -> visible, after a one-second warm-up.
	// Defaults 5,000/s for 5 s; LagDuration < 0 skips the phase.
	LagRate     int
	LagDuration time.Duration
	// ClientOpts are passed to every client (TLS, SASL).
	ClientOpts []kgo.Opt
	// Logger for the bridges. Default: discard.
	Logger *slog.Logger
}

func (c *BenchConfig) setDefaults() {
	if c.Events == 0 {
		c.Events = 200_000
	}
	if c.EventBytes == 0 {
		c.EventBytes = 1024
	}
	if c.Streams == 0 {
		c.Streams = 10_000
	}
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.Rounds == 0 {
		c.Rounds = 5
	}
	if c.LagRate == 0 {
		c.LagRate = 5000
	}
	if c.LagDuration == 0 {
		c.LagDuration = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// BenchResult holds RunBench's figures.
type BenchResult struct {
	Broker string // "in-process" or the seed brokers
	// ExactlyOnce and AtLeastOnce are events/s per round; the medians
	// and Overhead (1 - EOS/ALO, in percent) compare them.
	ExactlyOnce, AtLeastOnce             []float64
	ExactlyOnceMedian, AtLeastOnceMedian float64
	OverheadPercent                      float64
	TransactionsPerRun                   float64 // exactly-once, median
	LagP50, LagP99, LagMax               time.Duration
	LagSamples                           int
	LagRate                              int
	Events, EventBytes, Streams, Rounds  int
	MaxEvents                            int
	MaxDelay                             time.Duration
	Partitions                           int32
}

// RunBench measures the bridge: events/s publishing a pre-filled store
// exactly-once and at-least-once, side by side in rounds, and the
// end-to-end lag (append -> visible to read_committed) at a steady rate.
// It writes a table to out and returns the figures. It creates topics
// named bench-<random>-... and deletes them afterwards (best effort).
func RunBench(ctx context.Context, cfg BenchConfig, out io.Writer) (BenchResult, error) {
	cfg.setDefaults()
	res := BenchResult{Events: cfg.Events, EventBytes: cfg.EventBytes, Streams: cfg.Streams, Rounds: cfg.Rounds, Partitions: cfg.Partitions, LagRate: cfg.LagRate}
	brokers := cfg.Brokers
	res.Broker = fmt.Sprint(brokers)
	if len(brokers) == 0 {
		port, err := freePort()
		if err != nil {
			return res, err
		}
		eb, err := embedded.Start(ctx, embedded.Config{Port: port, Logger: cfg.Logger})
		if err != nil {
			return res, err
		}
		defer eb.Close()
		brokers = eb.Brokers()
		res.Broker = "in-process (kfake)"
	}
	admin, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, cfg.ClientOpts...)...)
	if err != nil {
		return res, err
	}
	defer admin.Close()

	store := memory.New(memory.Config{})
	defer store.Close()
	if err := benchFill(ctx, store, cfg.Events, cfg.Streams, cfg.EventBytes, "fill"); err != nil {
		return res, err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(out, "kafka bridge benchmark: %d events of %d B in %d streams (3 topics x %d partitions), broker %s\n",
		cfg.Events, cfg.EventBytes, cfg.Streams, cfg.Partitions, res.Broker)
	fmt.Fprintf(out, "%-8s %22s %22s\n", "round", "exactly-once (ev/s)", "at-least-once (ev/s)")
	var (
		txns    []float64
		created []topicSpec
	)
	// On a real broker, topics are deleted at the end, not between runs:
	// a deletion's background work would land in the next run's
	// measurement. The in-process broker keeps records in this process's
	// memory, so there each run's topics go right away.
	inProcess := len(cfg.Brokers) == 0
	defer func() { deleteTopics(ctx, admin, created) }()
	for round := 1; round <= cfg.Rounds; round++ {
		var rates [2]float64
		modes := []Mode{ExactlyOnce, AtLeastOnce}
		if round%2 == 0 {
			modes = []Mode{AtLeastOnce, ExactlyOnce}
		}
		for _, mode := range modes {
			runtime.GC()
			time.Sleep(300 * time.Millisecond) // let the broker settle
			bcfg := benchBridgeConfig(cfg, brokers, store, mode)
			rate, n, specs, err := benchPublish(ctx, admin, bcfg, head)
			if inProcess {
				deleteTopics(ctx, admin, specs)
			} else {
				created = append(created, specs...)
			}
			if err != nil {
				return res, fmt.Errorf("round %d %s: %w", round, mode, err)
			}
			rates[mode] = rate
			if mode == ExactlyOnce {
				txns = append(txns, float64(n))
			}
		}
		res.ExactlyOnce = append(res.ExactlyOnce, rates[0])
		res.AtLeastOnce = append(res.AtLeastOnce, rates[1])
		fmt.Fprintf(out, "%-8d %22.0f %22.0f\n", round, rates[0], rates[1])
	}
	res.ExactlyOnceMedian, res.AtLeastOnceMedian = median(res.ExactlyOnce), median(res.AtLeastOnce)
	res.OverheadPercent = 100 * (1 - res.ExactlyOnceMedian/res.AtLeastOnceMedian)
	res.TransactionsPerRun = median(txns)
	probe := benchBridgeConfig(cfg, brokers, store, ExactlyOnce)
	probe.setDefaults()
	res.MaxEvents, res.MaxDelay = probe.MaxEvents, probe.MaxDelay
	fmt.Fprintf(out, "%-8s %22.0f %22.0f   exactly-once overhead %.1f%% (batching %d events / %v, %.0f transactions per run)\n",
		"median", res.ExactlyOnceMedian, res.AtLeastOnceMedian, res.OverheadPercent, res.MaxEvents, res.MaxDelay, res.TransactionsPerRun)

	if cfg.LagDuration > 0 {
		if err := benchLag(ctx, cfg, brokers, admin, &res); err != nil {
			return res, fmt.Errorf("lag: %w", err)
		}
		fmt.Fprintf(out, "end-to-end lag, append -> visible to read_committed, at %d events/s for %v: p50 %v, p99 %v, max %v (%d events)\n",
			cfg.LagRate, cfg.LagDuration, res.LagP50.Round(100*time.Microsecond), res.LagP99.Round(100*time.Microsecond), res.LagMax.Round(100*time.Microsecond), res.LagSamples)
	}
	return res, nil
}

func benchBridgeConfig(cfg BenchConfig, brokers []string, src Source, mode Mode) Config {
	id := randomID()
	return Config{
		Source:          src,
		Brokers:         brokers,
		Region:          "bench",
		Name:            "bench-" + id,
		TransactionalID: "bench-" + id,
		Mode:            mode,
		MaxEvents:       cfg.MaxEvents,
		MaxDelay:        cfg.MaxDelay,
		Topics: Topics{
			Prefix:     "bench-" + id + ".",
			Checkpoint: "bench-" + id + ".checkpoints",
			Partitions: cfg.Partitions,
		},
		ClientOpts: cfg.ClientOpts,
		Logger:     cfg.Logger,
	}
}

// benchPublish publishes the store up to head with a new bridge and
// returns events/s from the session's start (after fencing and the
// checkpoint read; topics are created beforehand) to the last commit.
func benchPublish(ctx context.Context, admin *kgo.Client, cfg Config, head uint64) (rate float64, txns int, specs []topicSpec, err error) {
	cfg.setDefaults()
	specs = []topicSpec{cfg.Topics.checkpointSpec()}
	for _, c := range benchCategories {
		specs = append(specs, cfg.Topics.eventSpec(cfg.Topics.TopicFor(c)))
	}
	if err := createTopics(ctx, admin, specs...); err != nil {
		return 0, 0, specs, err
	}
	var (
		mu      sync.Mutex
		started time.Time
		ended   time.Time
	)
	cfg.Hooks.SessionStart = func(context.Context, uint64) {
		mu.Lock()
		started = time.Now()
		mu.Unlock()
	}
	cfg.Hooks.AfterCommit = func(_ context.Context, ti TxnInfo) {
		mu.Lock()
		ended = time.Now()
		txns++
		mu.Unlock()
	}
	b, err := New(cfg)
	if err != nil {
		return 0, 0, specs, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(rctx) }()
	werr := b.WaitPublished(ctx, head)
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return 0, 0, specs, err
	}
	if werr != nil {
		return 0, 0, specs, werr
	}
	mu.Lock()
	defer mu.Unlock()
	return float64(head) / ended.Sub(started).Seconds(), txns, specs, nil
}

var benchCategories = []string{"order", "payment", "shipment"}

// benchFill appends n events of size bytes over streams streams.
func benchFill(ctx context.Context, s event.Appender, n, streams, size int, tag string) error {
	data := benchData(size)
	for i := range n {
		sid := i % streams
		stream := benchCategories[sid%len(benchCategories)] + "-" + strconv.Itoa(sid)
		_, err := s.Append(ctx, stream, event.Any, []event.Proposed{{
			ID: event.DeriveID(tag+"-"+strconv.Itoa(i), 0), Type: "bench.happened.v1", SchemaVersion: 1, Data: data,
			Metadata: event.Metadata{Tenant: "bench", Actor: "bench"},
		}})
		if err != nil {
			return fmt.Errorf("fill: %w", err)
		}
	}
	return nil
}

// benchData is a JSON object of size bytes with incompressible-looking
// content (hex of random bytes), so compression does not flatter the
// figures.
func benchData(size int) []byte {
	raw := make([]byte, size)
	rand.Read(raw)
	b := append([]byte(`{"v":"`), hex.EncodeToString(raw)...)
	b = b[:max(size-2, 8)]
	return append(b, `"}`...)
}

// benchLag runs an exactly-once bridge and a read_committed consumer
// while appending at cfg.LagRate, and measures append -> visible.
func benchLag(ctx context.Context, cfg BenchConfig, brokers []string, admin *kgo.Client, res *BenchResult) error {
	store := memory.New(memory.Config{})
	defer store.Close()
	bcfg := benchBridgeConfig(cfg, brokers, store, ExactlyOnce)
	bcfg.setDefaults()
	specs := []topicSpec{bcfg.Topics.checkpointSpec()}
	var topics []string
	for _, c := range benchCategories {
		t := bcfg.Topics.TopicFor(c)
		topics = append(topics, t)
		specs = append(specs, bcfg.Topics.eventSpec(t))
	}
	if err := createTopics(ctx, admin, specs...); err != nil {
		return err
	}
	defer deleteTopics(ctx, admin, specs)
	b, err := New(bcfg)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, cfg.ClientOpts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	runErr := make(chan error, 1)
	go func() { defer wg.Done(); runErr <- b.Run(rctx) }()
	var lags []time.Duration
	const warmUp = time.Second
	// One primer event first: measuring starts once the bridge session
	// and the consumer's fetches are live, plus a second of warm-up.
	warm := 1 + int(float64(cfg.LagRate)*warmUp.Seconds())
	total := warm + int(float64(cfg.LagRate)*cfg.LagDuration.Seconds())
	seen := 0
	allSeen, firstSeen := make(chan struct{}), make(chan struct{})
	go func() {
		defer wg.Done()
		defer close(allSeen)
		for seen < total && rctx.Err() == nil {
			fs := cl.PollFetches(rctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				if seen == 0 {
					close(firstSeen)
				}
				seen++
				var ns, pos int64
				for _, h := range r.Headers {
					switch h.Key {
					case HeaderRecordedAt:
						ns, _ = strconv.ParseInt(string(h.Value), 10, 64)
					case HeaderPosition:
						pos, _ = strconv.ParseInt(string(h.Value), 10, 64)
					}
				}
				if pos > int64(warm) {
					lags = append(lags, now.Sub(time.Unix(0, ns)))
				}
			})
		}
	}()

	data := benchData(cfg.EventBytes)
	appendOne := func(i int) error {
		sid := i % cfg.Streams
		stream := benchCategories[sid%len(benchCategories)] + "-" + strconv.Itoa(sid)
		_, err := store.Append(ctx, stream, event.Any, []event.Proposed{{
			ID: event.DeriveID("lag-"+strconv.Itoa(i), 0), Type: "bench.happened.v1", SchemaVersion: 1, Data: data,
		}})
		return err
	}
	if err := appendOne(0); err != nil {
		return err
	}
	select {
	case <-firstSeen:
	case <-time.After(time.Minute):
		return errors.New("the consumer did not see the first record in a minute")
	}

	// Append at the rate in ticks of 10 ms.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for sent := 1; sent < total; {
		<-tick.C
		due := min(total, 1+int(time.Since(start).Seconds()*float64(cfg.LagRate)))
		for ; sent < due; sent++ {
			if err := appendOne(sent); err != nil {
				return err
			}
		}
	}
	timedOut := false
	select {
	case <-allSeen:
	case <-time.After(time.Minute):
		timedOut = true
	}
	cancel()
	wg.Wait()
	if timedOut {
		err = fmt.Errorf("the consumer saw %d of %d records in a minute", seen, total)
	}
	if rerr := <-runErr; rerr != nil && !errors.Is(rerr, context.Canceled) && err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	slices.Sort(lags)
	res.LagSamples = len(lags)
	res.LagP50 = lags[len(lags)/2]
	res.LagP99 = lags[len(lags)*99/100]
	res.LagMax = lags[len(lags)-1]
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func randomID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// deleteTopics deletes bench topics, best effort.
func deleteTopics(ctx context.Context, cl *kgo.Client, specs []topicSpec) {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 30_000
	for _, s := range specs {
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = kmsg.StringPtr(s.name)
		req.Topics = append(req.Topics, t)
		req.TopicNames = append(req.TopicNames, s.name)
	}
	req.RequestWith(context.WithoutCancel(ctx), cl)
}
