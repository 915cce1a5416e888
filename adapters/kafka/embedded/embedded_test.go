package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/adapters/kafka"
	"github.com/livecore/livecore/adapters/kafka/embedded"
	"github.com/livecore/livecore/domain/event"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func appendN(t *testing.T, s event.Appender, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		stream := fmt.Sprintf("order-%d", i%50)
		_, err := s.Append(context.Background(), stream, event.Any, []event.Proposed{{
			ID: event.DeriveID(fmt.Sprint("cmd-", i), 0), Type: "order.placed.v1", SchemaVersion: 1, Data: []byte(`{"n":1}`),
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func publish(t *testing.T, cfg kafka.Config, upTo uint64) {
	t.Helper()
	b, err := kafka.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := b.WaitPublished(wctx, upTo); err != nil {
		t.Fatalf("published %d, want %d: %v", b.Published(), upTo, err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v", err)
	}
}

// TestRestartKeepsAddressAndData publishes through the bridge, restarts
// the broker on the same directory and port, and checks the address, the
// records and the checkpoint survived: a second bridge resumes without
// duplicates. A second broker on a locked directory is refused.
func TestRestartKeepsAddressAndData(t *testing.T) {
	ctx := context.Background()
	dir, port := t.TempDir(), freePort(t)
	b1, err := embedded.Start(ctx, embedded.Config{Dir: dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := embedded.Start(ctx, embedded.Config{Dir: dir, Port: freePort(t)}); !errors.Is(err, embedded.ErrLocked) {
		t.Errorf("second broker on the same dir: %v, want ErrLocked", err)
	}
	store := memory.New(memory.Config{})
	defer store.Close()
	cfg := kafka.Config{Source: store, Brokers: b1.Brokers(), Region: "dev"}
	appendN(t, store, 0, 3000)
	publish(t, cfg, 3000)
	first := b1.Brokers()
	b1.Close()

	b2, err := embedded.Start(ctx, embedded.Config{Dir: dir, Port: port})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer b2.Close()
	if !slices.Equal(first, b2.Brokers()) {
		t.Errorf("address changed across restart: %v -> %v", first, b2.Brokers())
	}
	appendN(t, store, 3000, 1000)
	publish(t, cfg, 4000)
	r, err := kafka.Verify(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after restart on %v:\n%s", b2.Brokers(), r)
	if !r.OK() || r.Records != 4000 || r.Published != 4000 {
		t.Errorf("after restart: want 4000 records exactly once:\n%s", r)
	}
}
