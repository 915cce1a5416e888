package stack

import (
	"context"
	"time"

	"github.com/livecore/livecore/domain/event"
)

// projectionLinger is how long the read models let new events gather
// before they apply them. Each projection applies a batch in one SQL
// transaction; without the pause a trickle of orders costs one
// transaction per order per projection (six of them), which on two cores
// is most of the CPU an order costs. 25 ms more read-model lag buys
// batches of 25 ms of traffic.
const projectionLinger = 25 * time.Millisecond

// lingerSource is the projection runner's view of the event store: the
// same $all, delivered in batches at least linger apart, read through
// reads (the cache it shares with the Kafka bridge).
type lingerSource struct {
	store  event.Store
	reads  event.AllReader
	linger time.Duration
}

func (l lingerSource) Head(ctx context.Context) (uint64, error) { return l.store.Head(ctx) }

func (l lingerSource) SubscribeAll(ctx context.Context, from uint64, handle func(context.Context, []event.Envelope) error) error {
	if _, ok := l.store.(event.HeadWaiter); !ok {
		return l.store.SubscribeAll(ctx, from, handle) // a store without WaitHead: its own subscription, no linger
	}
	return event.SubscribeAll(ctx, l.reads, l, from, 1000, handle)
}

// sharedReads is the event store as the Kafka bridge sees it: its reads
// of $all go through the cache the projections read through too, so
// that the bridge (which follows the head closely) reads each new event
// from the store and the six projections, 25 ms behind, find it in the
// cache (see event.AllCache).
type sharedReads struct {
	event.Store
	cache *event.AllCache
}

func (s sharedReads) ReadAll(ctx context.Context, from uint64, max int) ([]event.Envelope, error) {
	return s.cache.ReadAll(ctx, from, max)
}

func (s sharedReads) SubscribeAll(ctx context.Context, from uint64, handle func(context.Context, []event.Envelope) error) error {
	w, ok := s.Store.(event.HeadWaiter)
	if !ok {
		return s.Store.SubscribeAll(ctx, from, handle)
	}
	return event.SubscribeAll(ctx, s.cache, w, from, 1000, handle)
}

// sharedReadEvents is the size of the cache of $all reads shared by the
// projections and the Kafka bridge: in live following they read batches
// of tens to hundreds of events, at catch-up 1,000 (the runner's and the
// bridge's batch), and the projections run in step.
const sharedReadEvents = 4096

// WaitHead waits for the head to pass after, then lingers so that more
// events join the batch.
func (l lingerSource) WaitHead(ctx context.Context, after uint64) (uint64, error) {
	if _, err := l.store.(event.HeadWaiter).WaitHead(ctx, after); err != nil {
		return 0, err
	}
	t := time.NewTimer(l.linger)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-t.C:
	}
	return l.store.Head(ctx)
}
