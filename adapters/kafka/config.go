package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/livecore/livecore/domain/event"
)

// Mode is how the bridge publishes.
type Mode uint8

const (
	// ExactlyOnce publishes each transaction's records and the checkpoint
	// in one Kafka transaction (the default and the only production mode).
	ExactlyOnce Mode = iota
	// AtLeastOnce produces the records idempotently, then the checkpoint,
	// with no transaction: a crash between the two republishes the batch.
	// It exists to measure what transactions cost; never run it for real.
	AtLeastOnce
)

func (m Mode) String() string {
	if m == AtLeastOnce {
		return "at-least-once"
	}
	return "exactly-once"
}

// Source is what the bridge reads: $all in order (catch-up and live), and
// its head (for the lag metric and the checkpoint sanity check).
type Source interface {
	event.AllReader
	event.HeadReader
	event.Subscriber
}

// TxnInfo describes one bridge transaction, for Hooks.
type TxnInfo struct {
	FirstPosition, LastPosition uint64 // the events in it (inclusive)
	Events                      int
	ProducerID                  int64 // the producer ID and epoch that wrote it
	ProducerEpoch               int16
}

// Hooks let tests stop the bridge at the dangerous moments. Production
// code leaves them nil.
type Hooks struct {
	// BeforeCommit runs after every record of a transaction (checkpoint
	// included) has been acknowledged by the brokers, just before
	// EndTransaction. A kill here leaves an open transaction that the next
	// instance must abort. Blocking here stalls the bridge (zombie tests).
	BeforeCommit func(ctx context.Context, t TxnInfo)
	// AfterCommit runs after EndTransaction returned success.
	AfterCommit func(ctx context.Context, t TxnInfo)
	// SessionStart runs after a new client fenced its predecessors and read
	// the checkpoint, with the position it resumes after.
	SessionStart func(ctx context.Context, checkpoint uint64)
}

// Topics says how categories map to topics and how topics are created.
// The zero value is usable: livecore.<category>.v1, 8 partitions, the
// broker's replication factor and min.insync.replicas, kept forever.
type Topics struct {
	// Prefix and Suffix frame the category: Prefix + category + Suffix.
	// Defaults "livecore." and ".v1" (livecore.order.v1).
	Prefix, Suffix string
	// Checkpoint is the compacted checkpoint topic. Default
	// "livecore.checkpoints.v1".
	Checkpoint string
	// Partitions of a new event topic. Default 8. The checkpoint topic
	// always gets 1.
	Partitions int32
	// ReplicationFactor of new topics; 0 or -1: the broker's default.
	// Production: 3.
	ReplicationFactor int16
	// MinInsyncReplicas of new topics; 0: the broker's default.
	// Production: 2 (with acks=all, a commit then survives one broker).
	MinInsyncReplicas int
	// RetentionMs of new event topics. Default -1 (forever): the topics are
	// what other regions replicate from, so they are not trimmed by age.
	RetentionMs int64
}

func (t *Topics) setDefaults() {
	if t.Prefix == "" {
		t.Prefix = "livecore."
	}
	if t.Suffix == "" {
		t.Suffix = ".v1"
	}
	if t.Checkpoint == "" {
		t.Checkpoint = "livecore.checkpoints.v1"
	}
	if t.Partitions == 0 {
		t.Partitions = 8
	}
	if t.ReplicationFactor == 0 {
		t.ReplicationFactor = -1
	}
	if t.RetentionMs == 0 {
		t.RetentionMs = -1
	}
}

// TopicFor returns the topic of a category.
func (t Topics) TopicFor(category string) string { return t.Prefix + category + t.Suffix }

func (t Topics) validate() error {
	var errs []error
	if t.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions %d < 1", t.Partitions))
	}
	if t.MinInsyncReplicas < 0 {
		errs = append(errs, fmt.Errorf("min.insync.replicas %d < 0", t.MinInsyncReplicas))
	}
	if t.ReplicationFactor > 0 && t.MinInsyncReplicas > int(t.ReplicationFactor) {
		errs = append(errs, fmt.Errorf("min.insync.replicas %d > replication factor %d", t.MinInsyncReplicas, t.ReplicationFactor))
	}
	for _, n := range []string{t.TopicFor("x"), t.Checkpoint} {
		if err := validTopic(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func validTopic(n string) error {
	if n == "" || len(n) > 249 {
		return fmt.Errorf("topic %q: 1-249 characters", n)
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic %q: character %q not in [a-zA-Z0-9._-]", n, c)
		}
	}
	return nil
}

// Config configures a Bridge. Source, Brokers and Region are required.
type Config struct {
	// Source is the event store whose $all is published.
	Source Source
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Region is this bridge's region: it is the CloudEvents source of every
	// record and names the transactional ID and the checkpoint key.
	Region string
	// Name keys this bridge's checkpoint record. Default
	// "livecore-bridge-<region>". Renaming a bridge loses its checkpoint:
	// the renamed bridge republishes everything from position 1.
	Name string
	// TransactionalID fences zombies: a new instance with the same ID
	// aborts the old one's open transaction and makes its commit fail.
	// Default "livecore-bridge-<region>". It must be stable across
	// restarts and unique per bridge.
	TransactionalID string
	// Mode: ExactlyOnce (default) or AtLeastOnce (measurement only).
	Mode Mode
	// Topics maps categories to topics and sets how they are created.
	Topics Topics
	// MaxEvents and MaxDelay bound a transaction: it commits when it holds
	// MaxEvents events or MaxDelay after it began, whichever comes first.
	// Defaults 5,000 and 50 ms. One event per transaction costs a few
	// milliseconds each; batching is what makes the bridge fast.
	MaxEvents int
	MaxDelay  time.Duration
	// TransactionTimeout is how long the broker lets a transaction stay open
	// before aborting it (and fencing the producer). Default 60 s; it must
	// not exceed the broker's transaction.max.timeout.ms.
	TransactionTimeout time.Duration
	// RetryBackoff is the first pause after a failed session; it doubles
	// up to MaxRetryBackoff. Defaults 100 ms and 5 s.
	RetryBackoff, MaxRetryBackoff time.Duration
	// Registerer receives the bridge's metrics (see Metrics). nil: not
	// registered anywhere. The default global registry is never used.
	Registerer prometheus.Registerer
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Hooks for tests.
	Hooks Hooks
	// ClientOpts are appended to the franz-go options of every client the
	// bridge builds (TLS, SASL, timeouts). Options that break the contract
	// (acks, idempotency, transactional ID, isolation) must not be passed.
	ClientOpts []kgo.Opt
	// Now is the clock for the time-based lag metric. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	c.Topics.setDefaults()
	if c.Name == "" {
		c.Name = "livecore-bridge-" + c.Region
	}
	if c.TransactionalID == "" {
		c.TransactionalID = "livecore-bridge-" + c.Region
	}
	if c.MaxEvents == 0 {
		c.MaxEvents = 5000
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = 50 * time.Millisecond
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = time.Minute
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem with c (after defaults).
func (c Config) Validate() error {
	var errs []error
	if c.Source == nil {
		errs = append(errs, errors.New("no source event store"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if c.Region == "" || strings.ContainsAny(c.Region, " \t\n/") {
		errs = append(errs, fmt.Errorf("region %q: required, no spaces or slashes", c.Region))
	}
	if c.Mode > AtLeastOnce {
		errs = append(errs, fmt.Errorf("unknown mode %d", c.Mode))
	}
	if c.MaxEvents < 1 {
		errs = append(errs, fmt.Errorf("max events %d < 1", c.MaxEvents))
	}
	if c.MaxDelay <= 0 {
		errs = append(errs, fmt.Errorf("max delay %v <= 0", c.MaxDelay))
	}
	if c.TransactionTimeout < time.Second || c.TransactionTimeout < 4*c.MaxDelay {
		errs = append(errs, fmt.Errorf("transaction timeout %v: at least 1s and 4x max delay", c.TransactionTimeout))
	}
	if c.RetryBackoff <= 0 || c.MaxRetryBackoff < c.RetryBackoff {
		errs = append(errs, fmt.Errorf("retry backoff %v..%v", c.RetryBackoff, c.MaxRetryBackoff))
	}
	if err := c.Topics.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka bridge config: %w", err)
	}
	return nil
}
