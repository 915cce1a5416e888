package node

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/regions"
)

// driver is the node's stand-in for the checkout saga until workflows/
// lands: it follows the local $all (own events and replicas), keeps the
// orders whose checkout started and did not end, and drives each one whose
// home this region holds to Confirmed: authorize the payment with the
// business idempotency key "order/<id>/authorize", then append
// OrderConfirmed with command ID "order/<id>/confirm". Because its state
// is the aggregates' state (replicated), a new owner re-drives the open
// checkouts of a home it took over, and the idempotency key makes the
// provider return the first authorization instead of charging again.
type driver struct {
	region string
	topo   regions.Topology
	svc    *app.Service
	psp    payment.Authorizer
	leases *regions.Leases
	reg    *event.Registry
	token  payment.Token
	log    *slog.Logger
	now    func() time.Time
	// durable, when set, waits until a local position is committed to
	// Kafka (sync mode): money moves only for checkouts that survive any
	// failover.
	durable func(ctx context.Context, position uint64) error

	mu   sync.Mutex
	open map[string]*openCheckout // order ID -> checkout to finish

	confirmed, resumed, failures atomic.Uint64
}

type openCheckout struct {
	orderID   string
	home      string
	total     money.Money
	startedBy string // region that wrote CheckoutStarted
	position  uint64 // local position of CheckoutStarted
	busy      bool
}

// follow keeps the open-checkout index from the store's $all.
func (d *driver) follow(ctx context.Context, sub event.Subscriber) error {
	totals := map[string]money.Money{}
	return sub.SubscribeAll(ctx, 1, func(ctx context.Context, batch []event.Envelope) error {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, env := range batch {
			if event.Category(env.StreamID) != "order" {
				continue
			}
			ev, err := d.reg.DecodeEnvelope(env)
			if err != nil {
				continue
			}
			switch e := ev.(type) {
			case *order.OrderPlaced:
				totals[e.OrderID] = e.Total
			case *order.CheckoutStarted:
				if e.Method == order.MethodCard {
					d.open[e.OrderID] = &openCheckout{orderID: e.OrderID, home: d.topo.HomeOf(env.StreamID), total: totals[e.OrderID],
						startedBy: env.Metadata.Region, position: env.Position}
				}
			case *order.OrderConfirmed, *order.OrderCancelled:
				delete(d.open, orderIDOf(e))
				delete(totals, orderIDOf(e))
			}
		}
		return nil
	})
}

func orderIDOf(e event.Event) string {
	switch e := e.(type) {
	case *order.OrderConfirmed:
		return e.OrderID
	case *order.OrderCancelled:
		return e.OrderID
	}
	return ""
}

// run drives open checkouts of held homes until ctx ends.
func (d *driver) run(ctx context.Context, workers int) {
	work := make(chan *openCheckout)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for oc := range work {
				d.drive(ctx, oc)
				d.mu.Lock()
				oc.busy = false
				d.mu.Unlock()
			}
		})
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer func() { t.Stop(); close(work); wg.Wait() }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		held := map[string]bool{}
		for _, s := range d.leases.States() {
			held[s.Home] = s.Valid
		}
		d.mu.Lock()
		var todo []*openCheckout
		for _, oc := range d.open {
			if !oc.busy && held[oc.home] {
				oc.busy = true
				todo = append(todo, oc)
			}
		}
		d.mu.Unlock()
		for _, oc := range todo {
			select {
			case work <- oc:
			case <-ctx.Done():
				return
			}
		}
	}
}

// drive authorizes and confirms one order. Errors are retried on the next
// tick (the order stays open).
func (d *driver) drive(ctx context.Context, oc *openCheckout) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream := order.StreamID(oc.orderID)
	if d.durable != nil {
		if err := d.durable(ctx, oc.position); err != nil {
			d.failures.Add(1)
			return
		}
	}
	if !oc.total.IsValid() {
		o, _, err := app.Load(ctx, d.svc, stream, func() *order.Order { return &order.Order{} })
		if err != nil {
			d.failures.Add(1)
			return
		}
		oc.total = o.Total()
	}
	res, err := d.psp.Authorize(ctx, payment.AuthorizeRequest{
		IdempotencyKey: "order/" + oc.orderID + "/authorize",
		PaymentID:      oc.orderID,
		Method:         payment.MethodCard,
		Token:          d.token,
		Amount:         oc.total,
	})
	if err != nil {
		d.failures.Add(1)
		d.log.Debug("authorize", "order", oc.orderID, "err", err)
		return
	}
	cmd := app.Command{ID: "order/" + oc.orderID + "/confirm", Metadata: event.Metadata{Actor: "checkout-driver", CorrelationID: oc.orderID}}
	_, err = app.Execute(ctx, d.svc, stream, func() *order.Order { return &order.Order{} }, cmd, func(o *order.Order) ([]event.Event, error) {
		if o.Status() != order.StatusCheckoutStarted {
			return nil, nil // confirmed meanwhile (or cancelled): nothing to do
		}
		return o.Confirm(res.ProviderRef, res.Amount, d.now())
	})
	if err != nil {
		d.failures.Add(1)
		if !errors.Is(err, regions.ErrNotOwner) {
			d.log.Debug("confirm", "order", oc.orderID, "err", err)
		}
		return
	}
	d.confirmed.Add(1)
	if oc.startedBy != d.region {
		d.resumed.Add(1)
	}
}

// DriverStats counts the driver's work.
type DriverStats struct {
	Open      int    `json:"open"`
	Confirmed uint64 `json:"confirmed"`
	// Resumed counts checkouts this region finished that another region
	// started (re-driven after a failover).
	Resumed  uint64 `json:"resumed"`
	Failures uint64 `json:"failures"`
}

func (d *driver) stats() DriverStats {
	d.mu.Lock()
	n := len(d.open)
	d.mu.Unlock()
	return DriverStats{Open: n, Confirmed: d.confirmed.Load(), Resumed: d.resumed.Load(), Failures: d.failures.Load()}
}
