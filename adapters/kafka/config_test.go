package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	src := newMemStore(t)
	c := Config{Source: src, Brokers: []string{"x:9092"}, Region: "eu-west"}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.TransactionalID != "livecore-bridge-eu-west" || c.Name != "livecore-bridge-eu-west" ||
		c.Topics.TopicFor("order") != "livecore.order.v1" || c.Topics.Checkpoint != "livecore.checkpoints.v1" ||
		c.MaxEvents != 5000 || c.MaxDelay != 50*time.Millisecond || c.Mode != ExactlyOnce {
		t.Errorf("defaults: %+v", c)
	}
	for name, tc := range map[string]struct {
		mut  func(*Config)
		want string
	}{
		"no source":        {func(c *Config) { c.Source = nil }, "source"},
		"no brokers":       {func(c *Config) { c.Brokers = nil }, "brokers"},
		"no region":        {func(c *Config) { c.Region = "" }, "region"},
		"bad region":       {func(c *Config) { c.Region = "eu west" }, "region"},
		"bad batch":        {func(c *Config) { c.MaxEvents = -1 }, "max events"},
		"short timeout":    {func(c *Config) { c.TransactionTimeout = 100 * time.Millisecond }, "transaction timeout"},
		"bad topic":        {func(c *Config) { c.Topics.Prefix = "live core." }, "topic"},
		"isr above rf":     {func(c *Config) { c.Topics.ReplicationFactor, c.Topics.MinInsyncReplicas = 1, 2 }, "min.insync.replicas"},
		"unknown mode":     {func(c *Config) { c.Mode = 7 }, "mode"},
		"backoff inverted": {func(c *Config) { c.MaxRetryBackoff = time.Millisecond }, "backoff"},
	} {
		c := Config{Source: src, Brokers: []string{"x:9092"}, Region: "eu-west"}
		tc.mut(&c)
		c.setDefaults()
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error about %q", name, err, tc.want)
		}
	}
}

// TestAtLeastOnceMode: the measurement mode publishes everything too (no
// transactions; a crash may duplicate, which is what it exists to show).
func TestAtLeastOnceMode(t *testing.T) {
	kf, brokers := startKfake(t)
	store := newMemStore(t)
	cfg := testConfig(t, target{name: "kfake", brokers: brokers, kf: kf}, store)
	cfg.Mode = AtLeastOnce
	appendEvents(t, store, 300, 5000, 100, 1)
	b, stop := runBridge(t, cfg)
	waitPublished(t, b, 5000, time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	r := verify(t, cfg)
	if !r.OK() || r.Records != 5000 || r.Published != 5000 {
		t.Errorf("at-least-once:\n%s", r)
	}
}

// TestEventTooLarge: an event too large for a record stops the bridge with
// ErrEventTooLarge, naming it, instead of retrying forever.
func TestEventTooLarge(t *testing.T) {
	kf, brokers := startKfake(t)
	store := newMemStore(t)
	cfg := testConfig(t, target{name: "kfake", brokers: brokers, kf: kf}, store)
	appendEvents(t, store, 10, 100, 100, 1)
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	waitPublished(t, b, 100, time.Minute)
	appendEvents(t, store, 10, 1, 2<<20, 2)
	err = <-done
	t.Logf("run: %v", err)
	if !errors.Is(err, ErrEventTooLarge) || !strings.Contains(err.Error(), "position 101") {
		t.Errorf("Run = %v, want ErrEventTooLarge at position 101", err)
	}
	if r := verify(t, cfg); r.Published != 100 || !r.OK() {
		t.Errorf("the events before it should be published exactly once:\n%s", r)
	}
}
