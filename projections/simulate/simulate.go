// Package simulate produces realistic commerce histories for tests and
// benchmarks of the projections and the audit tools: orders placed, paid by
// card or financed with BNPL plans, reserved, split, shipped, delivered,
// lost, cancelled, returned and refunded; payments captured, voided and
// charged back; plans collected, charged late fees, paid off, defaulted and
// charged off; live drops. Every event comes from the real aggregates'
// decision methods (a business rejection just skips the step), is encoded
// with the real registry and appended with exact expected versions, so the
// histories obey every domain invariant.
//
// A run is deterministic for a seed: the same store contents (but for the
// store's clock, which Sim.Now drives when the store is built with it).
package simulate

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
)

// Registry returns a registry with every domain event type.
func Registry() *event.Registry {
	r := event.NewRegistry()
	order.Register(r)
	payment.Register(r)
	financing.Register(r)
	inventory.Register(r)
	fulfillment.Register(r)
	return r
}

// Config shapes a simulation.
type Config struct {
	Seed uint64
	// Orders is how many orders to run to the end (default 100).
	Orders int
	// InFlight is how many orders progress at once, interleaved in $all
	// (default 16).
	InFlight int
	// Tenants (default "acme", "globex") and Currencies (default USD, EUR,
	// JPY) are chosen at random per order.
	Tenants    []string
	Currencies []string
	// Start is the simulated clock's start (default 2026-01-05T09:00Z).
	Start time.Time
	// BNPLPercent of orders try a BNPL plan (default 30; -1 for none).
	BNPLPercent int
	// Registry encodes events (default Registry()).
	Registry *event.Registry
}

func (c *Config) setDefaults() {
	if c.Orders <= 0 {
		c.Orders = 100
	}
	if c.InFlight <= 0 {
		c.InFlight = 16
	}
	if len(c.Tenants) == 0 {
		c.Tenants = []string{"acme", "globex"}
	}
	if len(c.Currencies) == 0 {
		c.Currencies = []string{"USD", "EUR", "JPY"}
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	}
	switch {
	case c.BNPLPercent == 0:
		c.BNPLPercent = 30
	case c.BNPLPercent < 0:
		c.BNPLPercent = 0
	}
	if c.Registry == nil {
		c.Registry = Registry()
	}
}

// Stats counts what a run did.
type Stats struct {
	Orders, Events, Appends, Rejected int
	ByType                            map[string]int
}

// Sim is one simulation. Build the store with Now: sim.Now so recorded-at
// times follow the simulated clock.
type Sim struct {
	cfg   Config
	rng   *rand.Rand
	store event.Appender
	mu    sync.Mutex
	clock time.Time
	stats Stats
	err   error
	items map[string]*agg[*inventory.Item]
}

// New returns a simulation of cfg.
func New(cfg Config) *Sim {
	cfg.setDefaults()
	return &Sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), clock: cfg.Start,
		stats: Stats{ByType: map[string]int{}}, items: map[string]*agg[*inventory.Item]{}}
}

// Now is the simulated clock (safe for concurrent use).
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock
}

func (s *Sim) tick() {
	s.mu.Lock()
	s.clock = s.clock.Add(time.Duration(1+s.rng.IntN(30)) * time.Second)
	s.mu.Unlock()
}

// Run appends the simulated history to store and returns what it did.
func (s *Sim) Run(ctx context.Context, store event.Appender) (Stats, error) {
	s.store = store
	type live struct {
		next func() (struct{}, bool)
		stop func()
	}
	var running []live
	started := 0
	start := func() {
		n := started
		started++
		next, stop := iter.Pull(func(yield func(struct{}) bool) {
			if n%40 == 39 {
				s.dropLife(ctx, n, func() bool { return yield(struct{}{}) })
			}
			s.orderLife(ctx, n, func() bool { return yield(struct{}{}) })
		})
		running = append(running, live{next, stop})
	}
	defer func() {
		for _, r := range running {
			r.stop()
		}
	}()
	for started < s.cfg.Orders || len(running) > 0 {
		for len(running) < s.cfg.InFlight && started < s.cfg.Orders {
			start()
		}
		i := s.rng.IntN(len(running))
		if _, ok := running[i].next(); !ok {
			running[i].stop()
			running = append(running[:i], running[i+1:]...)
			s.stats.Orders++
		}
		if s.err != nil {
			return s.stats, s.err
		}
		if err := ctx.Err(); err != nil {
			return s.stats, err
		}
	}
	return s.stats, nil
}

// agg is an aggregate the simulation keeps folded, with its stream version.
type agg[A interface{ Apply(event.Event) }] struct {
	stream  string
	a       A
	version uint64
}

// exec decides with the aggregate and appends the events; false if the
// decision was rejected or a no-op (or the run failed).
func exec[A interface{ Apply(event.Event) }](ctx context.Context, s *Sim, g *agg[A], cmdID string, md event.Metadata, decide func(A) ([]event.Event, error)) bool {
	if s.err != nil {
		return false
	}
	evs, err := decide(g.a)
	if err != nil {
		s.stats.Rejected++
		return false
	}
	if len(evs) == 0 {
		return false
	}
	props := make([]event.Proposed, len(evs))
	for i, e := range evs {
		if props[i], err = s.cfg.Registry.Propose(event.DeriveID(cmdID, i), e, md); err != nil {
			s.err = err
			return false
		}
	}
	s.tick()
	if _, err := s.store.Append(ctx, g.stream, event.Exact(g.version), props); err != nil {
		s.err = fmt.Errorf("simulate: append %s: %w", g.stream, err)
		return false
	}
	for _, e := range evs {
		g.a.Apply(e)
		s.stats.ByType[e.EventType()]++
	}
	g.version += uint64(len(evs))
	s.stats.Events += len(evs)
	s.stats.Appends++
	return true
}

var locations = []inventory.Location{inventory.MustLocation("ams-1"), inventory.MustLocation("nyc-2")}

func (s *Sim) item(tenant, sku string, loc inventory.Location) *agg[*inventory.Item] {
	stream := inventory.StreamID(sku, loc)
	it, ok := s.items[stream]
	if !ok {
		it = &agg[*inventory.Item]{stream: stream, a: inventory.NewItem(sku, loc)}
		s.items[stream] = it
	}
	return it
}

// price is a SKU's unit price in minor units of c (JPY has none).
func price(sku int, c money.Currency) int64 {
	base := int64(500 + (sku*7919)%9500) // 5.00-99.99
	if c.Exponent() == 0 {
		return base
	}
	return base * pow10(int(c.Exponent())) / 100
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

func mk(minor int64, c money.Currency) money.Money {
	m, err := money.FromMinor(minor, c)
	if err != nil {
		panic(err)
	}
	return m
}

type line struct {
	sku string
	loc inventory.Location
	qty int64
	no  int
}

// orderLife runs one order from cart to its end; yield returns false when
// the run stops.
func (s *Sim) orderLife(ctx context.Context, n int, yield func() bool) {
	r := s.rng
	tenant := s.cfg.Tenants[r.IntN(len(s.cfg.Tenants))]
	cur := money.MustCurrency(s.cfg.Currencies[r.IntN(len(s.cfg.Currencies))])
	oid := fmt.Sprintf("%s-%d-%d", tenant, s.cfg.Seed, n)
	customer := fmt.Sprintf("%s-cust-%d", tenant, r.IntN(200))
	md := func(actor string) event.Metadata {
		return event.Metadata{Tenant: tenant, CorrelationID: oid, Actor: actor, Region: "eu-west"}
	}
	now := s.Now()
	adv := func(d time.Duration) { now = now.Add(d) }

	// Cart: 1-3 distinct SKUs, each reserved at one location.
	var lines []line
	used := map[int]bool{}
	for no := 1; no <= 1+r.IntN(3); no++ {
		k := r.IntN(30)
		if used[k] {
			continue
		}
		used[k] = true
		lines = append(lines, line{sku: fmt.Sprintf("%s-sku-%02d", tenant, k), loc: locations[r.IntN(len(locations))], qty: int64(1 + r.IntN(3)), no: len(lines) + 1})
	}
	for _, l := range lines {
		it := s.item(tenant, l.sku, l.loc)
		if it.a.Available() < l.qty {
			exec(ctx, s, it, oid+"/restock/"+l.sku, md("ops:warehouse"), func(i *inventory.Item) ([]event.Event, error) {
				return i.Receive(int64(50+r.IntN(200)), "po-"+oid, now)
			})
			if !yield() {
				return
			}
		}
		exec(ctx, s, it, oid+"/reserve/"+l.sku, md("saga:checkout"), func(i *inventory.Item) ([]event.Event, error) {
			return i.Reserve(oid, l.qty, now.Add(time.Hour), now)
		})
		if !yield() {
			return
		}
	}

	o := &agg[*order.Order]{stream: order.StreamID(oid), a: &order.Order{}}
	place := order.PlaceOrder{OrderID: oid, CustomerID: customer, Region: "eu-west", Currency: cur}
	var subtotal int64
	for _, l := range lines {
		var k int
		fmt.Sscanf(l.sku[len(l.sku)-2:], "%d", &k)
		p := price(k, cur)
		subtotal += p * l.qty
		place.Lines = append(place.Lines, order.LineItem{SKU: l.sku, Quantity: l.qty, UnitPrice: mk(p, cur)})
	}
	if r.IntN(5) == 0 {
		place.Discounts = []order.Adjustment{{Label: "SPRING10", Amount: mk(max(1, subtotal/10), cur)}}
	}
	if r.IntN(2) == 0 {
		place.Taxes = []order.Adjustment{{Label: "VAT", Amount: mk(subtotal*8/100, cur)}}
	}
	if !exec(ctx, s, o, oid+"/place", md("api:"+tenant), func(a *order.Order) ([]event.Event, error) { return a.Place(place, now) }) {
		return
	}
	if !yield() {
		return
	}
	total := o.a.Total()
	adv(time.Minute)

	// Checkout: BNPL when it fits, else card (declines retried once).
	var plan *agg[*financing.Plan]
	method := order.MethodCard
	if r.IntN(100) < s.cfg.BNPLPercent {
		kind, okind := financing.PayIn4, order.PlanPayIn4
		if r.IntN(3) == 0 {
			kind, okind = financing.Monthly6, order.PlanMonthly6
		}
		exec(ctx, s, o, oid+"/checkout-bnpl", md("api:"+tenant), func(a *order.Order) ([]event.Event, error) {
			return a.StartCheckout(order.MethodBNPL, okind, now)
		})
		apr := financing.MustAPR(0)
		if kind.IsMonthly() {
			apr = financing.MustAPR(1999)
		}
		plan = &agg[*financing.Plan]{stream: financing.StreamID("pl-" + oid), a: &financing.Plan{}}
		exec(ctx, s, plan, oid+"/plan/decide", md("saga:checkout"), func(p *financing.Plan) ([]event.Event, error) {
			return p.Decide(financing.Application{PlanID: "pl-" + oid, CustomerID: customer, OrderID: oid, Amount: total,
				Terms: financing.Terms{Kind: kind, APR: apr}, CurrentExposure: money.Zero(cur), ExposureLimit: mk(5000*pow10(int(cur.Exponent())), cur),
				OpenDelinquencies: boolInt(r.IntN(20) == 0)}, now)
		})
		if !yield() {
			return
		}
		if plan.a.Status() == financing.StatusActive {
			method = order.MethodBNPL
		} else {
			plan = nil
		}
	}
	if method == order.MethodCard {
		exec(ctx, s, o, oid+"/checkout-card", md("api:"+tenant), func(a *order.Order) ([]event.Event, error) {
			return a.StartCheckout(order.MethodCard, order.PlanKind{}, now)
		})
	}
	var pay *agg[*payment.Payment]
	pmethod := payment.MethodCard
	if method == order.MethodBNPL {
		pmethod = payment.MethodBNPL
	}
	for attempt := 1; attempt <= 2 && pay == nil; attempt++ {
		pid := fmt.Sprintf("pay-%s-%d", oid, attempt)
		p := &agg[*payment.Payment]{stream: payment.StreamID(pid), a: &payment.Payment{}}
		auth := payment.Authorization{PaymentID: pid, OrderID: oid, Method: pmethod, Amount: total, ProviderRef: "psp-" + pid}
		if total.IsZero() {
			break
		}
		if pmethod == payment.MethodCard && r.IntN(12) == 0 {
			exec(ctx, s, p, pid+"/decline", md("saga:checkout"), func(a *payment.Payment) ([]event.Event, error) {
				return a.Decline(auth, payment.DeclineInsufficientFunds, now)
			})
		} else if exec(ctx, s, p, pid+"/authorize", md("saga:checkout"), func(a *payment.Payment) ([]event.Event, error) { return a.Authorize(auth, now) }) {
			pay = p
		}
		if !yield() {
			return
		}
	}
	release := func(reason string) bool {
		for _, l := range lines {
			exec(ctx, s, s.item(tenant, l.sku, l.loc), oid+"/release/"+l.sku, md("saga:checkout"), func(i *inventory.Item) ([]event.Event, error) {
				return i.Release(oid, reason, now)
			})
			if !yield() {
				return false
			}
		}
		return true
	}
	if pay == nil && !total.IsZero() {
		exec(ctx, s, o, oid+"/cancel", md("saga:checkout"), func(a *order.Order) ([]event.Event, error) { return a.Cancel("payment declined", now) })
		if yield() {
			release("payment declined")
		}
		return
	}
	paymentRef := ""
	if pay != nil {
		paymentRef = pay.a.ID()
	}
	exec(ctx, s, o, oid+"/confirm", md("saga:checkout"), func(a *order.Order) ([]event.Event, error) { return a.Confirm(paymentRef, total, now) })
	if !yield() {
		return
	}
	adv(time.Duration(1+r.IntN(48)) * time.Hour)

	refundSeq := 0
	// refund returns amt to the customer through the payment (and the plan).
	refund := func(amt money.Money, why string) bool {
		if pay == nil || !amt.IsPositive() {
			return true
		}
		amt = minMoney(amt, o.a.Refundable(), pay.a.Refundable())
		if !amt.IsPositive() {
			return true
		}
		refundSeq++
		rid := fmt.Sprintf("%s-r%d", oid, refundSeq)
		exec(ctx, s, o, oid+"/refund-request/"+rid, md("ops:support"), func(a *order.Order) ([]event.Event, error) {
			return a.RequestRefund(rid, amt, why, now)
		})
		if !yield() {
			return false
		}
		exec(ctx, s, pay, rid+"/payment-refund", md("saga:refund"), func(a *payment.Payment) ([]event.Event, error) { return a.Refund(rid, amt, now) })
		if !yield() {
			return false
		}
		if plan != nil {
			exec(ctx, s, plan, rid+"/plan-refund", md("saga:refund"), func(p *financing.Plan) ([]event.Event, error) { return p.Refund(rid, amt, now) })
			if !yield() {
				return false
			}
		}
		exec(ctx, s, o, oid+"/refund-record/"+rid, md("saga:refund"), func(a *order.Order) ([]event.Event, error) { return a.RecordRefund(rid, amt, now) })
		return yield()
	}

	// Some orders are cancelled before anything ships.
	if r.IntN(10) == 0 {
		exec(ctx, s, o, oid+"/cancel", md("api:"+tenant), func(a *order.Order) ([]event.Event, error) { return a.Cancel("customer changed mind", now) })
		if !yield() {
			return
		}
		if pay != nil {
			exec(ctx, s, pay, pay.a.ID()+"/void", md("saga:cancel"), func(a *payment.Payment) ([]event.Event, error) { return a.Void(now) })
			if !yield() {
				return
			}
		}
		if plan != nil {
			exec(ctx, s, plan, oid+"/plan-cancel", md("saga:cancel"), func(p *financing.Plan) ([]event.Event, error) { return p.Refund(oid+"-cancel", total, now) })
			if !yield() {
				return
			}
		}
		release("order cancelled")
		return
	}
	// Some cancel one line before shipping.
	if len(lines) > 1 && r.IntN(8) == 0 {
		l := lines[len(lines)-1]
		lines = lines[:len(lines)-1]
		if exec(ctx, s, o, oid+"/cancel-line", md("api:"+tenant), func(a *order.Order) ([]event.Event, error) {
			return a.CancelLines([]order.LineQuantity{{Line: l.no, Quantity: l.qty}}, "out of stock", now)
		}) {
			exec(ctx, s, s.item(tenant, l.sku, l.loc), oid+"/release/"+l.sku, md("saga:cancel"), func(i *inventory.Item) ([]event.Event, error) {
				return i.Release(oid, "line cancelled", now)
			})
			if plan != nil {
				value := o.a.CancelledValue()
				exec(ctx, s, plan, oid+"/plan-cancel-line", md("saga:cancel"), func(p *financing.Plan) ([]event.Event, error) {
					return p.Refund(oid+"-cancel-line", minMoney(value, total), now)
				})
			}
		}
		if !yield() {
			return
		}
	}

	// Split by location and ship.
	f := &agg[*fulfillment.Fulfillment]{stream: fulfillment.StreamID(oid), a: &fulfillment.Fulfillment{}}
	var planned []fulfillment.PlannedShipment
	byLoc := map[inventory.Location]int{}
	for _, l := range lines {
		i, ok := byLoc[l.loc]
		if !ok {
			i = len(planned)
			byLoc[l.loc] = i
			planned = append(planned, fulfillment.PlannedShipment{ID: fmt.Sprintf("%s-s%d", oid, i+1), Location: l.loc})
		}
		planned[i].Lines = append(planned[i].Lines, fulfillment.Line{Line: l.no, SKU: l.sku, Quantity: l.qty})
	}
	if !exec(ctx, s, f, oid+"/split", md("saga:fulfillment"), func(a *fulfillment.Fulfillment) ([]event.Event, error) { return a.Split(oid, planned, now) }) {
		return
	}
	if !yield() {
		return
	}
	var shippedValue int64
	orderSubtotal := o.a.Subtotal().MinorUnits()
	for si, sh := range planned {
		for _, step := range []func(*fulfillment.Fulfillment) ([]event.Event, error){
			func(a *fulfillment.Fulfillment) ([]event.Event, error) { return a.Pick(sh.ID, now) },
			func(a *fulfillment.Fulfillment) ([]event.Event, error) { return a.Pack(sh.ID, now) },
			func(a *fulfillment.Fulfillment) ([]event.Event, error) {
				return a.Ship(sh.ID, "dhl", "trk-"+sh.ID, now)
			},
		} {
			adv(time.Duration(1+r.IntN(12)) * time.Hour)
			exec(ctx, s, f, fmt.Sprintf("%s/ship-step/%d", sh.ID, f.version), md("ops:warehouse"), step)
			if !yield() {
				return
			}
		}
		var lq []order.LineQuantity
		for _, l := range sh.Lines {
			for _, ol := range lines {
				if ol.no == l.Line {
					exec(ctx, s, s.item(tenant, ol.sku, ol.loc), sh.ID+"/commit/"+ol.sku, md("saga:fulfillment"), func(i *inventory.Item) ([]event.Event, error) {
						return i.Commit(oid, sh.ID, l.Quantity, now)
					})
				}
			}
			lq = append(lq, order.LineQuantity{Line: l.Line, Quantity: l.Quantity})
			shippedValue += price(skuNo(l.SKU), cur) * l.Quantity
		}
		exec(ctx, s, o, sh.ID+"/fulfilled", md("saga:fulfillment"), func(a *order.Order) ([]event.Event, error) { return a.FulfillLines(sh.ID, lq, now) })
		if !yield() {
			return
		}
		// Capture on shipment: the cumulative share of the total shipped.
		if pay != nil && orderSubtotal > 0 {
			target := total.MinorUnits() * shippedValue / orderSubtotal
			if si == len(planned)-1 && len(lines) == len(o.a.Lines()) && o.a.CancelledValue().IsZero() {
				target = total.MinorUnits()
			}
			if amt := target - pay.a.Captured().MinorUnits(); amt > 0 {
				exec(ctx, s, pay, sh.ID+"/capture", md("saga:fulfillment"), func(a *payment.Payment) ([]event.Event, error) {
					return a.Capture(sh.ID, mk(amt, cur), now)
				})
				if !yield() {
					return
				}
			}
		}
		adv(time.Duration(1+r.IntN(72)) * time.Hour)
		switch k := r.IntN(20); {
		case k == 0:
			exec(ctx, s, f, sh.ID+"/lost", md("carrier:dhl"), func(a *fulfillment.Fulfillment) ([]event.Event, error) { return a.ReportLost(sh.ID, now) })
			if !yield() || !refund(mk(price(skuNo(sh.Lines[0].SKU), cur)*sh.Lines[0].Quantity, cur), "parcel lost") {
				return
			}
		case k == 1:
			exec(ctx, s, f, sh.ID+"/failed", md("carrier:dhl"), func(a *fulfillment.Fulfillment) ([]event.Event, error) {
				return a.FailDelivery(sh.ID, "address not found", now)
			})
			if !yield() {
				return
			}
		default:
			exec(ctx, s, f, sh.ID+"/delivered", md("carrier:dhl"), func(a *fulfillment.Fulfillment) ([]event.Event, error) { return a.Deliver(sh.ID, now) })
			if !yield() {
				return
			}
			if r.IntN(7) == 0 { // a return of the first line
				l := sh.Lines[0]
				q := int64(1 + r.IntN(int(l.Quantity)))
				rid := sh.ID + "-ret"
				adv(time.Duration(24+r.IntN(200)) * time.Hour)
				exec(ctx, s, f, rid+"/authorize", md("ops:support"), func(a *fulfillment.Fulfillment) ([]event.Event, error) {
					return a.AuthorizeReturn(rid, sh.ID, []fulfillment.LineQuantity{{Line: l.Line, Quantity: q}}, "damaged", now)
				})
				exec(ctx, s, o, rid+"/request", md("ops:support"), func(a *order.Order) ([]event.Event, error) {
					return a.RequestReturn(rid, []order.LineQuantity{{Line: l.Line, Quantity: q}}, "damaged", now)
				})
				if !yield() {
					return
				}
				adv(time.Duration(24+r.IntN(100)) * time.Hour)
				exec(ctx, s, f, rid+"/receive", md("ops:warehouse"), func(a *fulfillment.Fulfillment) ([]event.Event, error) {
					return a.ReceiveReturn(rid, []fulfillment.LineQuantity{{Line: l.Line, Quantity: q}}, now)
				})
				exec(ctx, s, o, rid+"/received", md("ops:warehouse"), func(a *order.Order) ([]event.Event, error) {
					return a.ReceiveReturn(rid, []order.LineQuantity{{Line: l.Line, Quantity: q}}, now)
				})
				exec(ctx, s, s.item(tenant, l.SKU, sh.Location), rid+"/restock", md("ops:warehouse"), func(i *inventory.Item) ([]event.Event, error) {
					return i.Receive(q, "return-"+rid, now)
				})
				if !yield() || !refund(mk(price(skuNo(l.SKU), cur)*q, cur), "return") {
					return
				}
			}
		}
	}
	exec(ctx, s, o, oid+"/complete", md("saga:fulfillment"), func(a *order.Order) ([]event.Event, error) { return a.Complete(now) })
	if !yield() {
		return
	}
	if pay != nil && pay.a.Status() == payment.StatusAuthorized {
		exec(ctx, s, pay, pay.a.ID()+"/void", md("saga:fulfillment"), func(a *payment.Payment) ([]event.Event, error) { return a.Void(now) })
		if !yield() {
			return
		}
	}
	// Chargebacks on some card payments.
	if pay != nil && pmethod == payment.MethodCard && r.IntN(25) == 0 && pay.a.Refundable().IsPositive() {
		cb := oid + "-cb"
		amt := pay.a.Refundable()
		exec(ctx, s, pay, cb+"/open", md("psp:webhook"), func(a *payment.Payment) ([]event.Event, error) {
			return a.OpenChargeback(cb, amt, payment.ChargebackFraud, now)
		})
		if !yield() {
			return
		}
		adv(30 * 24 * time.Hour)
		if r.IntN(2) == 0 {
			exec(ctx, s, pay, cb+"/won", md("psp:webhook"), func(a *payment.Payment) ([]event.Event, error) { return a.WinChargeback(cb, now) })
		} else {
			exec(ctx, s, pay, cb+"/lost", md("psp:webhook"), func(a *payment.Payment) ([]event.Event, error) { return a.LoseChargeback(cb, now) })
		}
		if !yield() {
			return
		}
	}
	if plan != nil {
		s.servicePlan(ctx, plan, md, now, yield)
	}
}

// servicePlan collects a plan's installments: mostly on time, some late
// with a fee, some paid off early, some defaulted and charged off.
func (s *Sim) servicePlan(ctx context.Context, plan *agg[*financing.Plan], md func(string) event.Metadata, now time.Time, yield func() bool) {
	r := s.rng
	id := plan.a.ID()
	fate := r.IntN(20)
	for i, in := range plan.a.Installments() {
		if plan.a.Status() != financing.StatusActive && plan.a.Status() != financing.StatusDefaulted {
			return
		}
		switch {
		case fate == 0 && i >= 1: // stops paying: default, charge-off
			at := in.DueAt.Add(95 * 24 * time.Hour)
			exec(ctx, s, plan, id+"/fee", md("saga:bnpl"), func(p *financing.Plan) ([]event.Event, error) {
				return p.AssessLateFee(in.Number, in.DueAt.Add(12*24*time.Hour))
			})
			exec(ctx, s, plan, id+"/default", md("saga:bnpl"), func(p *financing.Plan) ([]event.Event, error) { return p.Default(at) })
			if !yield() {
				return
			}
			exec(ctx, s, plan, id+"/charge-off", md("ops:collections"), func(p *financing.Plan) ([]event.Event, error) { return p.ChargeOff(at.Add(24 * time.Hour)) })
			yield()
			return
		case fate == 1 && i == 1: // pays off early
			at := in.DueAt.Add(-24 * time.Hour)
			quote := plan.a.PayoffQuote(at)
			exec(ctx, s, plan, id+"/payoff", md("api:customer"), func(p *financing.Plan) ([]event.Event, error) { return p.PayOff(id+"-payoff", quote, at) })
			yield()
			return
		}
		at := in.DueAt
		if r.IntN(6) == 0 { // late, with a fee
			at = in.DueAt.Add(time.Duration(11+r.IntN(10)) * 24 * time.Hour)
			exec(ctx, s, plan, fmt.Sprintf("%s/fee/%d", id, in.Number), md("saga:bnpl"), func(p *financing.Plan) ([]event.Event, error) {
				return p.AssessLateFee(in.Number, at)
			})
			if r.IntN(2) == 0 {
				exec(ctx, s, plan, fmt.Sprintf("%s/fail/%d", id, in.Number), md("saga:bnpl"), func(p *financing.Plan) ([]event.Event, error) {
					return p.FailCollection(fmt.Sprintf("%s-c%d-fail", id, in.Number), mk(max(1, in.Principal.MinorUnits()), in.Principal.Currency()), payment.DeclineInsufficientFunds, at)
				})
			}
			if !yield() {
				return
			}
		}
		cur := plan.a.Installments()[i]
		owed := cur.Unpaid()
		if !owed.IsPositive() {
			continue
		}
		exec(ctx, s, plan, fmt.Sprintf("%s/collect/%d", id, in.Number), md("saga:bnpl"), func(p *financing.Plan) ([]event.Event, error) {
			return p.Collect(fmt.Sprintf("%s-c%d", id, in.Number), owed, at)
		})
		if !yield() {
			return
		}
	}
}

// dropLife runs a live drop: open, a burst of purchases, close, and some
// purchases released again.
func (s *Sim) dropLife(ctx context.Context, n int, yield func() bool) {
	r := s.rng
	tenant := s.cfg.Tenants[r.IntN(len(s.cfg.Tenants))]
	sku := fmt.Sprintf("%s-drop-%d", tenant, n)
	it := s.item(tenant, sku, locations[0])
	now := s.Now()
	md := event.Metadata{Tenant: tenant, CorrelationID: "drop-" + sku, Actor: "ops:live", Region: "eu-west"}
	drop := fmt.Sprintf("drop-%d", n)
	exec(ctx, s, it, drop+"/receive", md, func(i *inventory.Item) ([]event.Event, error) { return i.Receive(100, "po-"+drop, now) })
	exec(ctx, s, it, drop+"/open", md, func(i *inventory.Item) ([]event.Event, error) { return i.OpenDrop(drop, 40, 2, now) })
	if !yield() {
		return
	}
	var bought []string
	for k := range 10 + r.IntN(30) {
		oid := fmt.Sprintf("%s-%d", drop, k)
		cust := fmt.Sprintf("%s-cust-%d", tenant, r.IntN(60))
		if exec(ctx, s, it, oid+"/buy", md, func(i *inventory.Item) ([]event.Event, error) {
			return i.BuyFromDrop(drop, cust, oid, int64(1+r.IntN(2)), now)
		}) {
			bought = append(bought, oid)
		}
		if !yield() {
			return
		}
	}
	exec(ctx, s, it, drop+"/close", md, func(i *inventory.Item) ([]event.Event, error) { return i.CloseDrop(drop, now) })
	for i, oid := range bought {
		if i%3 == 0 {
			exec(ctx, s, it, oid+"/release", md, func(it *inventory.Item) ([]event.Event, error) { return it.Release(oid, "checkout abandoned", now) })
		}
	}
	yield()
}

func skuNo(sku string) int {
	var k int
	fmt.Sscanf(sku[len(sku)-2:], "%d", &k)
	return k
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func minMoney(a money.Money, bs ...money.Money) money.Money {
	for _, b := range bs {
		if b.IsValid() && b.LessThan(a) {
			a = b
		}
	}
	return a
}
