// Package embedded runs an in-process Kafka-protocol broker (franz-go's
// kfake) for `livecore dev`: transactions, read_committed, fencing and
// compacted topics, persisted to a data directory, on a fixed local port so
// a restart keeps its address.
//
// It is a development broker: one node, no replication, and the state is
// written continuously but only fully saved on Close; after a crash
// (SIGKILL, power loss) recent records or transaction state can be lost or
// inconsistent. Production uses a real Kafka cluster.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultPort is the port the dev broker listens on when Config.Port is 0.
// It is not Kafka's 9092, so a real local Kafka does not collide with it.
const DefaultPort = 19092

// Config configures an embedded broker.
type Config struct {
	// Dir holds the broker's topics and transaction state; it is created if
	// missing and locked against a second process. Empty: memory only,
	// nothing survives Close.
	Dir string
	// Port to listen on, on 127.0.0.1. Default DefaultPort. A fixed port
	// is what keeps the broker's address across restarts (clients and the
	// persisted metadata name it).
	Port int
	// SyncWrites fsyncs every produced batch. Default off, like Kafka
	// (page cache; fsync on segment roll and Close).
	SyncWrites bool
	// Logger receives the broker's warnings and errors. Default
	// slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a bad port.
func (c Config) Validate() error {
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("embedded kafka: port %d out of range", c.Port)
	}
	return nil
}

// Broker is a running embedded broker.
type Broker struct {
	c       *kfake.Cluster
	unlock  func()
	brokers []string
	once    sync.Once
}

// Start starts the broker and waits until it answers on its port (or ctx
// is done). Errors: the port is taken, Dir is locked by another process or
// unreadable, ctx ended.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []kfake.Opt{
		kfake.Ports(cfg.Port),
		kfake.ClusterID("livecore-dev"),
		kfake.WithLogger(logger{cfg.Logger.With("component", "embedded-kafka")}),
	}
	unlock := func() {}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("embedded kafka: %w", err)
		}
		var err error
		if unlock, err = lockDir(filepath.Join(cfg.Dir, "LOCK")); err != nil {
			return nil, fmt.Errorf("embedded kafka: data dir %s: %w", cfg.Dir, err)
		}
		opts = append(opts, kfake.DataDir(cfg.Dir))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	// Fail fast and clearly when the port is taken.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		unlock()
		return nil, fmt.Errorf("embedded kafka: port %d: %w", cfg.Port, err)
	}
	ln.Close()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	b := &Broker{c: c, unlock: unlock, brokers: c.ListenAddrs()}
	if err := b.ping(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Broker) ping(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...))
	if err != nil {
		return fmt.Errorf("embedded kafka: %w", err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("embedded kafka: not answering on %v: %w", b.brokers, err)
	}
	return nil
}

// Brokers returns the seed brokers ("127.0.0.1:port").
func (b *Broker) Brokers() []string { return append([]string(nil), b.brokers...) }

// Close stops the broker, saving its state to Dir, and releases the lock.
// It is idempotent.
func (b *Broker) Close() error {
	b.once.Do(func() {
		b.c.Close()
		b.unlock()
	})
	return nil
}

// ErrLocked: another process uses the data directory.
var ErrLocked = errors.New("locked by another process")

// logger adapts slog to kfake (warnings and errors only).
type logger struct{ l *slog.Logger }

func (l logger) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.l.Error(fmt.Sprintf(msg, args...))
	case kfake.LogLevelWarn:
		l.l.Warn(fmt.Sprintf(msg, args...))
	}
}
