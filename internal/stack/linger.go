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
// same $all, delivered in batches at least linger apart.
type lingerSource struct {
	store  event.Store
	linger time.Duration
}

func (l lingerSource) Head(ctx context.Context) (uint64, error) { return l.store.Head(ctx) }

func (l lingerSource) SubscribeAll(ctx context.Context, from uint64, handle func(context.Context, []event.Envelope) error) error {
	if _, ok := l.store.(event.HeadWaiter); !ok {
		return l.store.SubscribeAll(ctx, from, handle) // a store without WaitHead: its own subscription, no linger
	}
	return event.SubscribeAll(ctx, l.store, l, from, 1000, handle)
}

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
