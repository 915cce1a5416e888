package inventory

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/livecore/livecore/domain/event"
)

func (it *Item) check(cmd string) error {
	if it.keyErr != nil {
		return fmt.Errorf("%s: %w", cmd, it.keyErr)
	}
	return nil
}

func (it *Item) insufficient(requested, available int64) error {
	return &InsufficientStockError{SKU: it.sku, Requested: requested, Available: available}
}

// Receive records qty units arriving (ref names the purchase order or
// transfer and is required). It returns ErrInvalidQuantity for qty <= 0 or a
// total past int64.
func (it *Item) Receive(qty int64, ref string, now time.Time) ([]event.Event, error) {
	if err := it.check("receive"); err != nil {
		return nil, err
	}
	switch {
	case qty <= 0 || qty > math.MaxInt64-it.onHand:
		return nil, fmt.Errorf("receive %s: %w: %d", it.sku, ErrInvalidQuantity, qty)
	case ref == "":
		return nil, fmt.Errorf("receive %s: %w: reference required", it.sku, ErrInvalidInput)
	}
	return []event.Event{&StockReceived{SKU: it.sku, Location: it.loc, Quantity: qty, Ref: ref, At: now}}, nil
}

// Reserve holds qty units for orderID until expiresAt (after now, else
// ErrBadExpiry). If they are not available it first expires reservations due
// at now (ReservationExpired events precede StockReserved); if they still do
// not fit it returns *InsufficientStockError (ErrInsufficientStock) and no
// events. Repeating a reservation of the same quantity returns no events;
// see the package doc for ErrReservationConflict and ErrReservationClosed.
func (it *Item) Reserve(orderID string, qty int64, expiresAt, now time.Time) ([]event.Event, error) {
	if err := it.check("reserve"); err != nil {
		return nil, err
	}
	switch {
	case orderID == "":
		return nil, fmt.Errorf("reserve %s: %w: order ID required", it.sku, ErrInvalidInput)
	case qty <= 0:
		return nil, fmt.Errorf("reserve %s for %s: %w: %d", it.sku, orderID, ErrInvalidQuantity, qty)
	case !expiresAt.After(now):
		return nil, fmt.Errorf("reserve %s for %s: %w", it.sku, orderID, ErrBadExpiry)
	}
	if err := it.checkNewReservation(orderID, qty, ""); err != nil {
		if err == errSameReservation {
			return nil, nil
		}
		return nil, fmt.Errorf("reserve %s for %s: %w", it.sku, orderID, err)
	}
	var out []event.Event
	if available := it.Available(); qty > available {
		due := it.due(now)
		for _, r := range due {
			available += r.Quantity
		}
		if qty > available {
			return nil, fmt.Errorf("reserve for %s: %w", orderID, it.insufficient(qty, available))
		}
		for _, r := range due {
			out = append(out, &ReservationExpired{SKU: it.sku, Location: it.loc, OrderID: r.OrderID, Quantity: r.Quantity, At: now})
		}
	}
	return append(out, &StockReserved{SKU: it.sku, Location: it.loc, OrderID: orderID, Quantity: qty, ExpiresAt: expiresAt, At: now}), nil
}

// errSameReservation marks an idempotent repeat; it never leaves the package.
var errSameReservation = errors.New("same reservation")

// checkNewReservation returns errSameReservation for an existing reservation
// of qty (from dropID, "" for plain ones), ErrReservationConflict for another
// one and ErrReservationClosed for a closed one.
func (it *Item) checkNewReservation(orderID string, qty int64, dropID string) error {
	if r, ok := it.reservations[orderID]; ok {
		if r.Quantity == qty && r.DropID == dropID {
			return errSameReservation
		}
		return fmt.Errorf("%w: holds %d", ErrReservationConflict, r.Quantity)
	}
	if _, closed := it.closed[orderID]; closed {
		return ErrReservationClosed
	}
	return nil
}

// due returns the reservations expiring at or before now, by order ID.
func (it *Item) due(now time.Time) []Reservation {
	var out []Reservation
	for _, r := range it.reservations {
		if !r.ExpiresAt.IsZero() && !r.ExpiresAt.After(now) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OrderID < out[j].OrderID })
	return out
}

// Release frees an order's reservation (a reason is required). Releasing a
// reservation that was already released or expired returns no events; one
// that was fully committed returns ErrAlreadyCommitted; an unknown one
// ErrReservationNotFound.
func (it *Item) Release(orderID, reason string, now time.Time) ([]event.Event, error) {
	if err := it.check("release"); err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, fmt.Errorf("release %s for %s: %w: reason required", it.sku, orderID, ErrInvalidInput)
	}
	r, ok := it.reservations[orderID]
	if !ok {
		switch it.closed[orderID] {
		case closedReleased, closedExpired:
			return nil, nil
		case closedCommitted:
			return nil, fmt.Errorf("release %s for %s: %w", it.sku, orderID, ErrAlreadyCommitted)
		}
		return nil, fmt.Errorf("release %s for %q: %w", it.sku, orderID, ErrReservationNotFound)
	}
	return []event.Event{&ReservationReleased{SKU: it.sku, Location: it.loc, OrderID: orderID, Quantity: r.Quantity, Reason: reason, At: now}}, nil
}

// Commit takes qty reserved units of an order out of stock as they ship in
// shipmentID (required). A partial commit leaves the rest reserved. It
// returns ErrReservationNotFound, ErrAlreadyCommitted or ErrReservationClosed
// when there is no open reservation, and ErrCommitExceedsReservation for more
// than is held. An expired-by-time but not yet expired reservation can be
// committed: the goods are already leaving.
func (it *Item) Commit(orderID, shipmentID string, qty int64, now time.Time) ([]event.Event, error) {
	if err := it.check("commit"); err != nil {
		return nil, err
	}
	switch {
	case shipmentID == "":
		return nil, fmt.Errorf("commit %s for %s: %w: shipment ID required", it.sku, orderID, ErrInvalidInput)
	case qty <= 0:
		return nil, fmt.Errorf("commit %s for %s: %w: %d", it.sku, orderID, ErrInvalidQuantity, qty)
	}
	r, ok := it.reservations[orderID]
	if !ok {
		switch it.closed[orderID] {
		case closedCommitted:
			return nil, fmt.Errorf("commit %s for %s: %w", it.sku, orderID, ErrAlreadyCommitted)
		case closedReleased, closedExpired:
			return nil, fmt.Errorf("commit %s for %s: %w", it.sku, orderID, ErrReservationClosed)
		}
		return nil, fmt.Errorf("commit %s for %q: %w", it.sku, orderID, ErrReservationNotFound)
	}
	if qty > r.Quantity {
		return nil, fmt.Errorf("commit %s for %s: %w: %d > %d", it.sku, orderID, ErrCommitExceedsReservation, qty, r.Quantity)
	}
	return []event.Event{&StockCommitted{SKU: it.sku, Location: it.loc, OrderID: orderID, ShipmentID: shipmentID, Quantity: qty, At: now}}, nil
}

// Adjust corrects the count by delta (non-zero) with a required reason. A
// negative delta may remove only available units: taking reserved units away
// would oversell, so it returns *InsufficientStockError; release
// reservations first.
func (it *Item) Adjust(delta int64, reason string, now time.Time) ([]event.Event, error) {
	if err := it.check("adjust"); err != nil {
		return nil, err
	}
	switch {
	case delta == 0 || delta == math.MinInt64 || delta > math.MaxInt64-it.onHand:
		return nil, fmt.Errorf("adjust %s: %w: delta %d", it.sku, ErrInvalidQuantity, delta)
	case reason == "":
		return nil, fmt.Errorf("adjust %s: %w: reason required", it.sku, ErrInvalidInput)
	case delta < 0 && -delta > it.Available():
		return nil, fmt.Errorf("adjust: %w", it.insufficient(-delta, it.Available()))
	}
	return []event.Event{&StockAdjusted{SKU: it.sku, Location: it.loc, Delta: delta, Reason: reason, At: now}}, nil
}

// ExpireReservations expires every reservation whose expiry is at or before
// now, in order-ID order; no events if none is due. Drop purchases never
// expire.
func (it *Item) ExpireReservations(now time.Time) ([]event.Event, error) {
	if err := it.check("expire"); err != nil {
		return nil, err
	}
	due := it.due(now)
	if len(due) == 0 {
		return nil, nil
	}
	out := make([]event.Event, len(due))
	for i, r := range due {
		out[i] = &ReservationExpired{SKU: it.sku, Location: it.loc, OrderID: r.OrderID, Quantity: r.Quantity, At: now}
	}
	return out, nil
}

// OpenDrop sets allocation available units aside for a live drop with a
// per-customer limit (both positive: ErrInvalidQuantity). One drop is open
// at a time (ErrDropAlreadyOpen), drop IDs are never reused
// (ErrDuplicateDrop), and the allocation must be available
// (*InsufficientStockError).
func (it *Item) OpenDrop(dropID string, allocation, perCustomerLimit int64, now time.Time) ([]event.Event, error) {
	if err := it.check("open drop"); err != nil {
		return nil, err
	}
	switch {
	case dropID == "":
		return nil, fmt.Errorf("open drop of %s: %w: drop ID required", it.sku, ErrInvalidInput)
	case it.drop.open:
		return nil, fmt.Errorf("open drop %s of %s: %w: %s", dropID, it.sku, ErrDropAlreadyOpen, it.drop.id)
	case allocation <= 0 || perCustomerLimit <= 0:
		return nil, fmt.Errorf("open drop %s of %s: %w: allocation %d, limit %d", dropID, it.sku, ErrInvalidQuantity, allocation, perCustomerLimit)
	}
	if _, used := it.dropIDs[dropID]; used {
		return nil, fmt.Errorf("open drop %s of %s: %w", dropID, it.sku, ErrDuplicateDrop)
	}
	if allocation > it.Available() {
		return nil, fmt.Errorf("open drop %s: %w", dropID, it.insufficient(allocation, it.Available()))
	}
	return []event.Event{&DropOpened{SKU: it.sku, Location: it.loc, DropID: dropID, Allocation: allocation, PerCustomerLimit: perCustomerLimit, At: now}}, nil
}

// BuyFromDrop sells qty units of the open drop dropID to a customer for
// orderID. It is O(1): a handful of map lookups, no history (see the package
// doc). Errors, in the order checked: ErrNoOpenDrop (not the open drop),
// ErrInvalidInput / ErrInvalidQuantity, ErrReservationConflict or
// ErrReservationClosed for an order ID already used (the same purchase again
// returns no events), ErrDropSoldOut when nothing is left, a *DropLimitError
// (ErrDropLimitReached) past the customer's limit, and an
// *InsufficientStockError when fewer than qty units are left.
func (it *Item) BuyFromDrop(dropID, customerID, orderID string, qty int64, now time.Time) ([]event.Event, error) {
	d := &it.drop
	switch {
	case !d.open || d.id != dropID:
		return nil, fmt.Errorf("buy from drop %s: %w", dropID, ErrNoOpenDrop)
	case customerID == "" || orderID == "":
		return nil, fmt.Errorf("buy from drop %s: %w: customer and order ID required", dropID, ErrInvalidInput)
	case qty <= 0:
		return nil, fmt.Errorf("buy from drop %s: %w: %d", dropID, ErrInvalidQuantity, qty)
	}
	if err := it.checkNewReservation(orderID, qty, dropID); err != nil {
		if err == errSameReservation && it.reservations[orderID].CustomerID == customerID {
			return nil, nil
		}
		if err == errSameReservation {
			err = fmt.Errorf("%w: held for another customer", ErrReservationConflict)
		}
		return nil, fmt.Errorf("buy from drop %s for %s: %w", dropID, orderID, err)
	}
	bought := d.bought[customerID]
	switch {
	case d.remaining == 0:
		return nil, fmt.Errorf("buy from drop %s: %w", dropID, ErrDropSoldOut)
	case qty > d.limit-bought:
		return nil, fmt.Errorf("buy from drop %s: %w", dropID, &DropLimitError{CustomerID: customerID, Limit: d.limit, Bought: bought, Requested: qty})
	case qty > d.remaining:
		return nil, fmt.Errorf("buy from drop %s: %w", dropID, it.insufficient(qty, d.remaining))
	}
	return []event.Event{&DropPurchased{SKU: it.sku, Location: it.loc, DropID: dropID, CustomerID: customerID, OrderID: orderID, Quantity: qty, At: now}}, nil
}

// CloseDrop ends the open drop dropID (ErrNoOpenDrop otherwise); its unsold
// units return to available stock.
func (it *Item) CloseDrop(dropID string, now time.Time) ([]event.Event, error) {
	d := it.drop
	if !d.open || d.id != dropID {
		return nil, fmt.Errorf("close drop %s: %w", dropID, ErrNoOpenDrop)
	}
	return []event.Event{&DropClosed{SKU: it.sku, Location: it.loc, DropID: dropID, Sold: d.allocation - d.remaining, Unsold: d.remaining, At: now}}, nil
}
