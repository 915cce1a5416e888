package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/api/serviceerror"
	sdkclient "go.temporal.io/sdk/client"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/regions"
	"github.com/livecore/livecore/workflows/bnpl"
	"github.com/livecore/livecore/workflows/checkout"
	"github.com/livecore/livecore/workflows/dispatcher"
	wffulfillment "github.com/livecore/livecore/workflows/fulfillment"
	"github.com/livecore/livecore/workflows/refund"
)

// sagaKeeper moves checkout sagas with ownership. The dispatcher starts a
// saga only for the homes this region holds (its filter); the keeper
// handles what changes hands:
//
//   - a home this region takes (at start, after a failover or a failback):
//     the checkout saga of every open order of the home (placed, checking
//     out, confirmed, or in fulfillment; not cancelled or completed) is
//     started again here from the
//     order's state (Dispatcher.Redrive). The old owner's sagas lived in the
//     old owner's Temporal; the business idempotency keys make the provider
//     return the first authorization instead of charging again. A re-driven
//     checkout of an order in fulfillment resumes its fulfillment here from
//     the aggregates (shipped parcels captured once, settled ones kept).
//   - a home this region does not hold (at start, or lost): its sagas of
//     the home's open orders are terminated, so an old owner that comes
//     back never runs a stale saga on (its writes would be refused by the
//     fence, but its compensations would call the provider: a void of an
//     authorization the new owner relies on). Checkout and fulfillment runs
//     are terminated (no compensation runs); a later take-back starts them
//     again.
//
// The keeper's index of open orders follows the local $all (own events and
// replicas), so every region knows every home's open orders.
type sagaKeeper struct {
	// plans lists the open BNPL plans of a home, caught up with the log
	// (the plans read model).
	plans  func(ctx context.Context, home string) ([]dispatcher.RedrivePlan, error)
	topo   regions.Topology
	leases *regions.Leases
	store  event.Store
	disp   *dispatcher.Dispatcher
	client sdkclient.Client
	log    *slog.Logger

	mu   sync.Mutex
	open map[string]openOrder // order ID -> open order
	// refunds are the refunds asked for (or returns received) and not yet
	// settled, by order: their sagas move with the order's home.
	refunds map[string]map[string]refund.Input
	// splitSeen holds the orders whose fulfillment split was applied: a
	// replica's $all keeps each stream's order but not the order between
	// streams (each category is its own Kafka topic), so the split may
	// come before the order's own events.
	splitSeen map[string]bool
	position  uint64        // index applied up to here
	caught    chan struct{} // closed at each index advance

	redriven, terminated, passes atomic.Uint64
}

type openOrder struct {
	tenant, home string
	checkingOut  bool // checkout started
	split        bool // handed over to fulfillment: the checkout saga is done
}

func newSagaKeeper(topo regions.Topology, leases *regions.Leases, store event.Store, d *dispatcher.Dispatcher, c sdkclient.Client, log *slog.Logger) *sagaKeeper {
	return &sagaKeeper{topo: topo, leases: leases, store: store, disp: d, client: c, log: log,
		open: map[string]openOrder{}, splitSeen: map[string]bool{}, refunds: map[string]map[string]refund.Input{}, caught: make(chan struct{})}
}

// follow keeps the open-order index from $all.
func (k *sagaKeeper) follow(ctx context.Context) error {
	return k.store.SubscribeAll(ctx, 1, func(ctx context.Context, batch []event.Envelope) error {
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, env := range batch {
			if env.Type == fulfillment.TypeOrderSplit {
				// The checkout saga's last step (the hand-over to
				// fulfillment) is done; the fulfillment runs on.
				id := strings.TrimPrefix(env.StreamID, "fulfillment-")
				k.splitSeen[id] = true
				if o, ok := k.open[id]; ok {
					o.split = true
					k.open[id] = o
				}
				continue
			}
			if event.Category(env.StreamID) != "order" {
				continue
			}
			id := strings.TrimPrefix(env.StreamID, "order-")
			switch env.Type {
			case order.TypeOrderPlaced, order.TypeOrderPlacedV1:
				k.open[id] = openOrder{tenant: env.Metadata.Tenant, home: k.topo.HomeOf(env.StreamID), split: k.splitSeen[id]}
			case order.TypeCheckoutStarted:
				if o, ok := k.open[id]; ok {
					o.checkingOut = true
					k.open[id] = o
				}
			case order.TypeOrderCancelled, order.TypeOrderCompleted:
				delete(k.open, id)
				delete(k.splitSeen, id)
			case order.TypeRefundRequested, order.TypeReturnReceived, order.TypeOrderRefunded:
				k.trackRefund(env, id)
			}
		}
		k.position = batch[len(batch)-1].Position
		close(k.caught)
		k.caught = make(chan struct{})
		return nil
	})
}

// trackRefund keeps the open refunds from an order's refund events (the
// same refund inputs the dispatcher starts the sagas with).
func (k *sagaKeeper) trackRefund(env event.Envelope, orderID string) {
	open := k.refunds[orderID]
	if open == nil {
		open = map[string]refund.Input{}
		k.refunds[orderID] = open
	}
	switch env.Type {
	case order.TypeRefundRequested:
		var e order.RefundRequested
		if json.Unmarshal(env.Data, &e) == nil {
			open[e.RefundID] = refund.Input{OrderID: orderID, Tenant: env.Metadata.Tenant, RefundID: e.RefundID, Amount: e.Amount, Reason: e.Reason}
		}
	case order.TypeReturnReceived:
		var e order.ReturnReceived
		if json.Unmarshal(env.Data, &e) == nil {
			rid := refund.ReturnRefundID(e.ReturnID)
			if _, asked := open[rid]; !asked {
				open[rid] = refund.Input{OrderID: orderID, Tenant: env.Metadata.Tenant, RefundID: rid, Amount: e.Value, Reason: "return " + e.ReturnID + " received"}
			}
		}
	case order.TypeOrderRefunded:
		var e order.OrderRefunded
		if json.Unmarshal(env.Data, &e) == nil {
			delete(open, e.RefundID)
		}
	}
	if len(open) == 0 {
		delete(k.refunds, orderID)
	}
}

func (k *sagaKeeper) refundsOf(home string) []refund.Input {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []refund.Input
	for id, open := range k.refunds {
		if k.topo.HomeOf(order.StreamID(id)) != home {
			continue
		}
		for _, in := range open {
			out = append(out, in)
		}
	}
	return out
}

// waitIndexed waits until the index has applied the store's head as of now.
func (k *sagaKeeper) waitIndexed(ctx context.Context) error {
	head, err := k.store.Head(ctx)
	if err != nil {
		return err
	}
	for {
		k.mu.Lock()
		pos, ch := k.position, k.caught
		k.mu.Unlock()
		if pos >= head {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// run reconciles sagas with leases until ctx ends: on every change of the
// leases, and every second (a lease may lapse without a change event).
func (k *sagaKeeper) run(ctx context.Context) error {
	held := map[string]bool{}
	first := true
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		changed := k.leases.Changed()
		if err := k.waitIndexed(ctx); err != nil {
			return ctxErr(ctx, err)
		}
		for _, h := range k.topo.Homes {
			now := k.leases.Holds(h.Name)
			switch {
			case now && !held[h.Name]:
				k.redrive(ctx, h.Name)
			case !now && (first || held[h.Name]):
				k.terminate(ctx, h.Name)
			}
			held[h.Name] = now
		}
		first = false
		k.passes.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-t.C:
		}
	}
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (k *sagaKeeper) ordersOf(home string) []dispatcher.RedriveOrder {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []dispatcher.RedriveOrder
	for id, o := range k.open {
		if o.home == home {
			out = append(out, dispatcher.RedriveOrder{OrderID: id, Tenant: o.tenant})
		}
	}
	return out
}

func (k *sagaKeeper) redrive(ctx context.Context, home string) {
	orders := k.ordersOf(home)
	if len(orders) > 0 {
		n, err := k.disp.Redrive(ctx, orders)
		k.redriven.Add(uint64(n))
		if err != nil && ctx.Err() == nil {
			k.log.Error("redrive sagas", "home", home, "err", err)
		}
		k.log.Info("home taken: open orders' sagas re-driven here", "home", home, "open", len(orders), "started", n)
	}
	if refunds := k.refundsOf(home); len(refunds) > 0 {
		n, err := k.disp.RedriveRefunds(ctx, refunds)
		k.redriven.Add(uint64(n))
		if err != nil && ctx.Err() == nil {
			k.log.Error("redrive refunds", "home", home, "err", err)
		}
		k.log.Info("home taken: open refunds re-driven here", "home", home, "open", len(refunds), "started", n)
	}
	if k.plans == nil {
		return
	}
	plans, err := k.plans(ctx, home)
	if err != nil {
		if ctx.Err() == nil {
			k.log.Error("open plans of a home taken", "home", home, "err", err)
		}
		return
	}
	if len(plans) == 0 {
		return
	}
	n, err := k.disp.RedriveSchedules(ctx, plans)
	k.redriven.Add(uint64(n))
	if err != nil && ctx.Err() == nil {
		k.log.Error("redrive schedules", "home", home, "err", err)
	}
	k.log.Info("home taken: BNPL schedules re-driven here", "home", home, "open", len(plans), "started", n)
}

func (k *sagaKeeper) terminate(ctx context.Context, home string) {
	var ids []string
	for _, o := range k.ordersOf(home) {
		ids = append(ids, checkout.WorkflowID(o.OrderID), wffulfillment.WorkflowID(o.OrderID))
	}
	for _, in := range k.refundsOf(home) {
		ids = append(ids, refund.WorkflowID(in.OrderID, in.RefundID))
	}
	if k.plans != nil {
		plans, err := k.plans(ctx, home)
		if err != nil && ctx.Err() == nil {
			k.log.Warn("open plans of a home not held", "home", home, "err", err)
		}
		for _, p := range plans {
			ids = append(ids, bnpl.WorkflowID(p.PlanID))
		}
	}
	n := 0
	for _, id := range ids {
		err := k.client.TerminateWorkflow(ctx, id, "", "home "+home+" is not owned by this region")
		var nf *serviceerror.NotFound
		switch {
		case err == nil:
			n++
		case errors.As(err, &nf): // never ran here, or already closed
		default:
			if ctx.Err() == nil {
				k.log.Warn("terminate a saga of a home not held", "workflow", id, "err", err)
			}
		}
	}
	k.terminated.Add(uint64(n))
	if n > 0 {
		k.log.Info("home not held: its sagas here terminated", "home", home, "terminated", n)
	}
}

// SagaStats says what the region's sagas did with ownership.
type SagaStats struct {
	// Open counts the open orders (placed or checking out) of every home,
	// as this region's log has them.
	Open int `json:"open"`
	// Checkouts counts the orders of the homes this region holds whose
	// checkout started and whose saga has not ended (cancelled, or handed
	// over to fulfillment): the checkout sagas in flight here.
	Checkouts int `json:"checkouts"`
	// Started and Deduplicated are the dispatcher's starts.
	Started      int64 `json:"started"`
	Deduplicated int64 `json:"deduplicated"`
	// Redriven counts sagas started again for a home taken over;
	// Terminated, sagas stopped for a home not held.
	Redriven   uint64 `json:"redriven"`
	Terminated uint64 `json:"terminated"`
	// Indexed is the $all position the open-order index has applied.
	Indexed uint64 `json:"indexed"`
}

func (k *sagaKeeper) stats() SagaStats {
	k.mu.Lock()
	s := SagaStats{Open: len(k.open), Indexed: k.position}
	for _, o := range k.open {
		if o.checkingOut && !o.split && k.leases.Holds(o.home) {
			s.Checkouts++
		}
	}
	k.mu.Unlock()
	ds := k.disp.Stats()
	s.Started, s.Deduplicated = ds.Started, ds.Deduplicated
	s.Redriven, s.Terminated = k.redriven.Load(), k.terminated.Load()
	return s
}

// guardedPSP calls the payment provider only for orders whose home this
// region holds now: a saga of a home just lost (before the keeper
// terminates it) moves no money. Provider calls carry the business key
// "order/<id>/...", which names the order; a refused call is retryable
// (ErrProviderUnavailable), so the saga waits rather than compensates.
type guardedPSP struct {
	payment.Provider
	topo   regions.Topology
	leases *regions.Leases
}

func (g guardedPSP) check(key string) error {
	rest, ok := strings.CutPrefix(key, "order/")
	if !ok {
		return nil
	}
	id, _, _ := strings.Cut(rest, "/")
	home := g.topo.HomeOf(order.StreamID(id))
	if !g.leases.Holds(home) {
		return fmt.Errorf("%w: this region does not hold home %s of order %s", payment.ErrProviderUnavailable, home, id)
	}
	return nil
}

func (g guardedPSP) Authorize(ctx context.Context, req payment.AuthorizeRequest) (payment.Result, error) {
	if err := g.check(req.IdempotencyKey); err != nil {
		return payment.Result{}, err
	}
	return g.Provider.Authorize(ctx, req)
}

func (g guardedPSP) Capture(ctx context.Context, req payment.CaptureRequest) (payment.Result, error) {
	if err := g.check(req.IdempotencyKey); err != nil {
		return payment.Result{}, err
	}
	return g.Provider.Capture(ctx, req)
}

func (g guardedPSP) Void(ctx context.Context, req payment.VoidRequest) (payment.Result, error) {
	if err := g.check(req.IdempotencyKey); err != nil {
		return payment.Result{}, err
	}
	return g.Provider.Void(ctx, req)
}

func (g guardedPSP) Refund(ctx context.Context, req payment.RefundRequest) (payment.Result, error) {
	if err := g.check(req.IdempotencyKey); err != nil {
		return payment.Result{}, err
	}
	return g.Provider.Refund(ctx, req)
}

// publishedSource delivers $all only up to what the bridge has committed to
// Kafka (sync durability): sagas then move money only for writes that
// survive any failover.
type publishedSource struct {
	event.Subscriber
	pub regions.Publisher
}

func (p publishedSource) SubscribeAll(ctx context.Context, from uint64, h func(context.Context, []event.Envelope) error) error {
	return p.Subscriber.SubscribeAll(ctx, from, func(ctx context.Context, batch []event.Envelope) error {
		if err := p.pub.WaitPublished(ctx, batch[len(batch)-1].Position); err != nil {
			return err
		}
		return h(ctx, batch)
	})
}
