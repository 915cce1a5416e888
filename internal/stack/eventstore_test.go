package stack_test

import (
	"context"
	"testing"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/internal/stack"
	"github.com/livecore/livecore/internal/testenv"
)

// TestProductOnPostgresEventStore runs the whole product with the SQL event
// store on real PostgreSQL instead of Pebble (--event-store sql): a card
// order goes from create to confirmed through the sagas, and its events are
// in PostgreSQL with valid hash chains.
func TestProductOnPostgresEventStore(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the whole product")
	}
	dsn := testenv.FreshSchema(t, testenv.PostgresDSN(t))
	p := bootProduct(t, func(c *stack.Config) { c.EventStore, c.EventStoreDSN = "sql", dsn })
	s, ctx := p.s, context.Background()

	checkout := s.DemoKeys["checkout"]
	var o orderResp
	p.want(t, call{method: "POST", path: "/v1/orders", key: checkout, idem: nextKey("pg-card"), strict: true,
		body: cartBody(map[string]any{"method": "card", "card_token": "tok_visa_approve"})}, 201).json(t, &o)
	deadline := time.Now().Add(60 * time.Second)
	for o.Status != "confirmed" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		p.want(t, call{method: "GET", path: "/v1/orders/" + o.ID, key: checkout}, 200).json(t, &o)
	}
	if o.Status != "confirmed" {
		t.Fatalf("order %s is %s after 60 s on the PostgreSQL event store", o.ID, o.Status)
	}
	envs, err := s.Store.ReadStream(ctx, "order-"+o.ID, 1, 0)
	if err != nil || len(envs) < 3 {
		t.Fatalf("order stream in PostgreSQL: %d events, %v", len(envs), err)
	}
	var prev event.Hash
	for i := range envs {
		if err := event.VerifyStreamLink(prev, uint64(i), &envs[i]); err != nil {
			t.Fatal(err)
		}
		prev = envs[i].Hash
	}
	all, err := s.Store.ReadAll(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var global event.Hash
	for i := range all {
		if err := event.VerifyGlobalLink(global, uint64(i), &all[i]); err != nil {
			t.Fatal(err)
		}
		global = all[i].GlobalHash
	}
	t.Logf("order %s confirmed on the PostgreSQL event store: %d events in its stream, %d in $all", o.ID, len(envs), len(all))
}
