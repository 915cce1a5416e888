// Package sagatest builds the world the saga tests run in: an event store,
// the application service, the sandbox payment provider, payment tokens,
// stock and orders. Tests of every workflow package and the integration
// tests share it.
package sagatest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/workflows"
)

// Locations are the two stock locations of the test world.
var Locations = []inventory.Location{inventory.MustLocation("ams-1"), inventory.MustLocation("ber-1")}

// NewRegistry returns a registry with every domain event and the sagas' own.
func NewRegistry() *event.Registry {
	r := event.NewRegistry()
	order.Register(r)
	inventory.Register(r)
	payment.Register(r)
	financing.Register(r)
	fulfillment.Register(r)
	workflows.RegisterEvents(r)
	return r
}

// Tokens is an in-memory TokenSource: orders without a token of their own
// pay with Default.
type Tokens struct {
	mu      sync.Mutex
	Default string
	byOrder map[string]string
}

// Set gives order orderID the token tok.
func (t *Tokens) Set(orderID, tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byOrder == nil {
		t.byOrder = map[string]string{}
	}
	t.byOrder[orderID] = tok
}

// PaymentToken implements workflows.TokenSource.
func (t *Tokens) PaymentToken(_ context.Context, orderID string) (payment.Token, error) {
	t.mu.Lock()
	tok, ok := t.byOrder[orderID]
	if !ok {
		tok = t.Default
	}
	t.mu.Unlock()
	if tok == "" {
		tok = "tok_visa_approve"
	}
	return payment.ParseToken(tok)
}

// World is one test's store, service, provider and tokens.
type World struct {
	Store    event.Store
	Registry *event.Registry
	App      *app.Service
	PSP      *sandbox.Sandbox
	Tokens   *Tokens
	// Now is the clock of the provider and of the helpers below; Continue
	// moves it to a new testsuite environment.
	Now func() time.Time
}

// Options configure NewWorld.
type Options struct {
	// Store defaults to an in-memory store.
	Store event.Store
	// Now defaults to time.Now; testsuite tests pass env.Now so that the
	// provider's expiry follows the workflow clock.
	Now func() time.Time
	// PSP defaults to a new sandbox on Now.
	PSP *sandbox.Sandbox
}

// NewWorld builds a world.
func NewWorld(t testing.TB, o Options) *World {
	t.Helper()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Store == nil {
		o.Store = memory.New(memory.Config{})
	}
	reg := NewRegistry()
	svc, err := app.New(app.Config{Store: o.Store, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	w := &World{Store: o.Store, Registry: reg, App: svc, PSP: o.PSP, Tokens: &Tokens{}, Now: o.Now}
	if w.PSP == nil {
		w.PSP = sandbox.New(sandbox.Config{Now: func() time.Time { return w.Now() }})
	}
	return w
}

// Deps are the workflow dependencies of the world.
func (w *World) Deps() workflows.Deps {
	return workflows.Deps{App: w.App, Events: w.Store, Registry: w.Registry, PSP: w.PSP, Tokens: w.Tokens, Locations: Locations}
}

// Activities builds the activity structs of the world.
func (w *World) Activities(t testing.TB) workflows.Activities {
	t.Helper()
	acts, err := workflows.NewActivities(w.Deps())
	if err != nil {
		t.Fatal(err)
	}
	return acts
}

// Stock receives qty units of sku at loc.
func (w *World) Stock(t testing.TB, sku string, loc inventory.Location, qty int64) {
	t.Helper()
	_, err := app.Execute(context.Background(), w.App, inventory.StreamID(sku, loc), func() *inventory.Item { return inventory.NewItem(sku, loc) },
		app.Command{ID: fmt.Sprintf("receive/%s@%s/%d", sku, loc, time.Now().UnixNano())},
		func(it *inventory.Item) ([]event.Event, error) { return it.Receive(qty, "po-1", w.Now()) })
	if err != nil {
		t.Fatal(err)
	}
}

// Available is the available quantity of sku at loc.
func (w *World) Available(t testing.TB, sku string, loc inventory.Location) int64 {
	t.Helper()
	var n int64
	if err := app.Query(context.Background(), w.App, inventory.StreamID(sku, loc), func() *inventory.Item { return inventory.NewItem(sku, loc) },
		func(it *inventory.Item, _ uint64) { n = it.Available() }); err != nil {
		t.Fatal(err)
	}
	return n
}

// Line is a cart line.
type Line struct {
	SKU   string
	Qty   int64
	Price string // USD
}

// PlaceOrder places order id for customer "cust-<id>" in USD, with
// metadata tenant "t1".
func (w *World) PlaceOrder(t testing.TB, id string, lines ...Line) {
	t.Helper()
	var items []order.LineItem
	for _, l := range lines {
		items = append(items, order.LineItem{SKU: l.SKU, Quantity: l.Qty, UnitPrice: money.MustParse(l.Price, "USD")})
	}
	w.exec(t, id, "place", func(o *order.Order) ([]event.Event, error) {
		return o.Place(order.PlaceOrder{OrderID: id, CustomerID: "cust-" + id, Region: "eu", Currency: money.MustCurrency("USD"), Lines: items}, w.Now())
	})
}

// StartCheckout records the customer's payment choice.
func (w *World) StartCheckout(t testing.TB, id string, method order.PaymentMethod, plan order.PlanKind) {
	t.Helper()
	w.exec(t, id, "checkout", func(o *order.Order) ([]event.Event, error) { return o.StartCheckout(method, plan, w.Now()) })
}

func (w *World) exec(t testing.TB, id, step string, decide func(o *order.Order) ([]event.Event, error)) {
	t.Helper()
	_, err := app.Execute(context.Background(), w.App, order.StreamID(id), func() *order.Order { return &order.Order{} },
		app.Command{ID: "api/" + id + "/" + step, Metadata: event.Metadata{Tenant: "t1", Actor: "test"}}, decide)
	if err != nil {
		t.Fatal(err)
	}
}

// Order loads order id.
func (w *World) Order(t testing.TB, id string) *order.Order {
	t.Helper()
	o, _, err := app.Load(context.Background(), w.App, order.StreamID(id), func() *order.Order { return &order.Order{} })
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// Payment loads payment id.
func (w *World) Payment(t testing.TB, id string) *payment.Payment {
	t.Helper()
	p, _, err := app.Load(context.Background(), w.App, payment.StreamID(id), func() *payment.Payment { return &payment.Payment{} })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Plan loads plan id.
func (w *World) Plan(t testing.TB, id string) *financing.Plan {
	t.Helper()
	p, _, err := app.Load(context.Background(), w.App, financing.StreamID(id), func() *financing.Plan { return &financing.Plan{} })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Types lists the event types of stream, in order.
func (w *World) Types(t testing.TB, stream string) []string {
	t.Helper()
	envs, err := w.Store.ReadStream(context.Background(), stream, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.Type
	}
	return out
}

// Count counts the events of type typ in stream.
func (w *World) Count(t testing.TB, stream, typ string) int {
	t.Helper()
	n := 0
	for _, ty := range w.Types(t, stream) {
		if ty == typ {
			n++
		}
	}
	return n
}

// USD parses a USD amount.
func USD(s string) money.Money { return money.MustParse(s, "USD") }
