// Package inventory is the stock aggregate: one Item per SKU per location,
// with reservations for orders and live drops. It never oversells: every
// decision keeps
//
//	0 <= Reserved <= OnHand, Available = OnHand - Reserved >= 0
//	Reserved = sum of open reservations + the open drop's remaining units
//
// # Reservations
//
// A reservation holds units for one order (reservation ID = order ID) until it
// expires, is released, or is committed when the goods ship (partially or
// fully). Reserving for an order that already holds a reservation of the same
// quantity is an idempotent no-op (no events), so a saga step retried with a
// new command ID cannot double-reserve; another quantity is
// ErrReservationConflict. Once an order's reservation is closed (committed,
// released or expired) reserving for it again is ErrReservationClosed: a
// retried step must not resurrect stock that shipped or was freed. Releasing
// a released or expired reservation is a no-op too (compensations repeat).
// Reserve expires due reservations itself when, and only when, the request
// would not fit otherwise.
//
// # Live drops
//
// A live drop sets a fixed allocation aside (it counts as reserved) and sells
// it to many buyers within seconds, at most PerCustomerLimit units each.
// BuyFromDrop is built to be cheap under contention:
//
//   - Its state is O(1) to consult: remaining units, a map of units bought per
//     customer and the map of reservations; the decision does a few map
//     lookups and integer compares and never scans or folds history. Apply of
//     DropPurchased is O(1) as well.
//   - The application service keeps the folded Item cached in memory and
//     catches up from its cached version, so a decision never re-reads the
//     stream from the start.
//   - The service batches all buyers queued on the hot stream: one goroutine
//     decides them in order against the evolving Item (each decision applied
//     before the next) and appends all their events in one append, one fsync,
//     per round; each buyer gets its own events or its own error (sold out,
//     limit), so a rejected buyer never fails the others.
//
// A purchase becomes a reservation for its order without expiry, committed or
// released like any other; released units go back to available stock, not
// to the drop. Closing the drop returns its unsold units to available stock.
package inventory

import (
	"fmt"
	"sort"
	"time"

	"github.com/livecore/livecore/domain/event"
)

// Item is the stock of one SKU at one location. Make one with NewItem (the
// stream's identity), then fold its events with Apply. Decisions return
// events and never change the Item. An Item is not safe for concurrent use.
type Item struct {
	sku    string
	loc    Location
	keyErr error // invalid SKU or location, refused by every decision

	onHand, reserved              int64
	received, committed, adjusted int64

	reservations map[string]Reservation
	closed       map[string]closeReason
	drop         drop
	dropIDs      map[string]struct{}
	updatedAt    time.Time
}

type closeReason uint8

const (
	closedCommitted closeReason = iota + 1
	closedReleased
	closedExpired
)

// Reservation is units held for one order.
type Reservation struct {
	OrderID  string
	Quantity int64
	// ExpiresAt is zero for drop purchases, which do not expire.
	ExpiresAt  time.Time
	DropID     string // set for drop purchases
	CustomerID string // set for drop purchases
}

type drop struct {
	id                           string
	open                         bool
	allocation, remaining, limit int64
	bought                       map[string]int64
}

// NewItem returns an empty Item for sku at loc. An invalid SKU (see
// ValidateSKU) or a zero Location makes every decision fail with that error.
func NewItem(sku string, loc Location) *Item {
	it := &Item{sku: sku, loc: loc}
	if err := ValidateSKU(sku); err != nil {
		it.keyErr = err
	} else if loc.IsZero() {
		it.keyErr = fmt.Errorf("%w: zero location", ErrInvalidLocation)
	}
	it.init()
	return it
}

func (it *Item) init() {
	if it.reservations == nil {
		it.reservations = map[string]Reservation{}
		it.closed = map[string]closeReason{}
		it.dropIDs = map[string]struct{}{}
	}
}

// Apply evolves the item by one event. It never fails: events are facts.
// Events of other aggregates are ignored. Every case is O(1).
func (it *Item) Apply(e event.Event) {
	it.init()
	switch e := e.(type) {
	case *StockReceived:
		it.onHand += e.Quantity
		it.received += e.Quantity
		it.updatedAt = e.At
	case *StockReserved:
		it.reservations[e.OrderID] = Reservation{OrderID: e.OrderID, Quantity: e.Quantity, ExpiresAt: e.ExpiresAt}
		it.reserved += e.Quantity
		it.updatedAt = e.At
	case *ReservationReleased:
		it.close(e.OrderID, e.Quantity, closedReleased)
		it.updatedAt = e.At
	case *ReservationExpired:
		it.close(e.OrderID, e.Quantity, closedExpired)
		it.updatedAt = e.At
	case *StockCommitted:
		r := it.reservations[e.OrderID]
		r.Quantity -= e.Quantity
		it.reserved -= e.Quantity
		it.onHand -= e.Quantity
		it.committed += e.Quantity
		if r.Quantity <= 0 {
			delete(it.reservations, e.OrderID)
			it.closed[e.OrderID] = closedCommitted
		} else {
			it.reservations[e.OrderID] = r
		}
		it.updatedAt = e.At
	case *StockAdjusted:
		it.onHand += e.Delta
		it.adjusted += e.Delta
		it.updatedAt = e.At
	case *DropOpened:
		it.drop = drop{id: e.DropID, open: true, allocation: e.Allocation, remaining: e.Allocation, limit: e.PerCustomerLimit, bought: map[string]int64{}}
		it.dropIDs[e.DropID] = struct{}{}
		it.reserved += e.Allocation
		it.updatedAt = e.At
	case *DropPurchased:
		// The units move from the drop's allocation to the order's
		// reservation: Reserved does not change.
		it.drop.remaining -= e.Quantity
		if it.drop.bought != nil {
			it.drop.bought[e.CustomerID] += e.Quantity
		}
		it.reservations[e.OrderID] = Reservation{OrderID: e.OrderID, Quantity: e.Quantity, DropID: e.DropID, CustomerID: e.CustomerID}
		it.updatedAt = e.At
	case *DropClosed:
		it.reserved -= e.Unsold
		it.drop.open = false
		it.drop.remaining = 0
		it.updatedAt = e.At
	}
}

func (it *Item) close(orderID string, qty int64, why closeReason) {
	delete(it.reservations, orderID)
	it.closed[orderID] = why
	it.reserved -= qty
}

// SKU and Location are the item's identity.
func (it *Item) SKU() string        { return it.sku }
func (it *Item) Location() Location { return it.loc }

// OnHand is the units physically at the location (received + adjusted -
// committed).
func (it *Item) OnHand() int64 { return it.onHand }

// Reserved is the units held by open reservations and the open drop.
func (it *Item) Reserved() int64 { return it.reserved }

// Available is OnHand - Reserved: what can still be reserved.
func (it *Item) Available() int64 { return it.onHand - it.reserved }

// Received, Committed and Adjusted are running totals of their events.
func (it *Item) Received() int64  { return it.received }
func (it *Item) Committed() int64 { return it.committed }
func (it *Item) Adjusted() int64  { return it.adjusted }

// Reservation returns the order's open reservation.
func (it *Item) Reservation(orderID string) (Reservation, bool) {
	r, ok := it.reservations[orderID]
	return r, ok
}

// Reservations returns the open reservations sorted by order ID.
func (it *Item) Reservations() []Reservation {
	out := make([]Reservation, 0, len(it.reservations))
	for _, r := range it.reservations {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OrderID < out[j].OrderID })
	return out
}

// DropView describes the current or last drop.
type DropView struct {
	ID               string
	Open             bool
	Allocation       int64
	Remaining        int64
	PerCustomerLimit int64
}

// Drop returns the current or last drop (zero if there was none).
func (it *Item) Drop() DropView {
	d := it.drop
	return DropView{ID: d.id, Open: d.open, Allocation: d.allocation, Remaining: d.remaining, PerCustomerLimit: d.limit}
}

// Bought is what a customer bought from the current or last drop.
func (it *Item) Bought(customerID string) int64 { return it.drop.bought[customerID] }

// UpdatedAt is the time of the last event.
func (it *Item) UpdatedAt() time.Time { return it.updatedAt }
