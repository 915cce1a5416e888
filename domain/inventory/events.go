package inventory

import (
	"time"

	"github.com/livecore/livecore/domain/event"
)

// Event type names. They are persisted: never change one; add a new version
// and an upcaster instead.
const (
	TypeStockReceived       = "inventory.stock_received.v1"
	TypeStockReserved       = "inventory.stock_reserved.v1"
	TypeReservationReleased = "inventory.reservation_released.v1"
	TypeReservationExpired  = "inventory.reservation_expired.v1"
	TypeStockCommitted      = "inventory.stock_committed.v1"
	TypeStockAdjusted       = "inventory.stock_adjusted.v1"
	TypeDropOpened          = "inventory.drop_opened.v1"
	TypeDropPurchased       = "inventory.drop_purchased.v1"
	TypeDropClosed          = "inventory.drop_closed.v1"
)

// Register adds every inventory event type to r. It panics if one is
// already registered (a wiring bug).
func Register(r *event.Registry) {
	r.Register(
		func() event.Event { return &StockReceived{} },
		func() event.Event { return &StockReserved{} },
		func() event.Event { return &ReservationReleased{} },
		func() event.Event { return &ReservationExpired{} },
		func() event.Event { return &StockCommitted{} },
		func() event.Event { return &StockAdjusted{} },
		func() event.Event { return &DropOpened{} },
		func() event.Event { return &DropPurchased{} },
		func() event.Event { return &DropClosed{} },
	)
}

// StreamID is the stream of one SKU at one location:
// "inventory-"+sku+"@"+location.
func StreamID(sku string, loc Location) string { return "inventory-" + sku + "@" + loc.String() }

// Every inventory event names its SKU and location, so read models need not
// parse stream IDs.

// StockReceived: units arrived at the location (a purchase order, a transfer).
type StockReceived struct {
	SKU      string    `json:"sku"`
	Location Location  `json:"location"`
	Quantity int64     `json:"quantity"`
	Ref      string    `json:"ref"`
	At       time.Time `json:"at"`
}

// EventType is "inventory.stock_received.v1".
func (StockReceived) EventType() string { return TypeStockReceived }

// StockReserved: units are held for an order until ExpiresAt.
type StockReserved struct {
	SKU       string    `json:"sku"`
	Location  Location  `json:"location"`
	OrderID   string    `json:"order_id"`
	Quantity  int64     `json:"quantity"`
	ExpiresAt time.Time `json:"expires_at"`
	At        time.Time `json:"at"`
}

// EventType is "inventory.stock_reserved.v1".
func (StockReserved) EventType() string { return TypeStockReserved }

// ReservationReleased: an order's held units are free again (order cancelled,
// payment failed).
type ReservationReleased struct {
	SKU      string    `json:"sku"`
	Location Location  `json:"location"`
	OrderID  string    `json:"order_id"`
	Quantity int64     `json:"quantity"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// EventType is "inventory.reservation_released.v1".
func (ReservationReleased) EventType() string { return TypeReservationReleased }

// ReservationExpired: an order's hold ran out before it was committed.
type ReservationExpired struct {
	SKU      string    `json:"sku"`
	Location Location  `json:"location"`
	OrderID  string    `json:"order_id"`
	Quantity int64     `json:"quantity"`
	At       time.Time `json:"at"`
}

// EventType is "inventory.reservation_expired.v1".
func (ReservationExpired) EventType() string { return TypeReservationExpired }

// StockCommitted: reserved units left the location in a shipment; they leave
// both the reservation and the stock on hand.
type StockCommitted struct {
	SKU        string    `json:"sku"`
	Location   Location  `json:"location"`
	OrderID    string    `json:"order_id"`
	ShipmentID string    `json:"shipment_id"`
	Quantity   int64     `json:"quantity"`
	At         time.Time `json:"at"`
}

// EventType is "inventory.stock_committed.v1".
func (StockCommitted) EventType() string { return TypeStockCommitted }

// StockAdjusted: a count correction of Delta units (negative: fewer found).
type StockAdjusted struct {
	SKU      string    `json:"sku"`
	Location Location  `json:"location"`
	Delta    int64     `json:"delta"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// EventType is "inventory.stock_adjusted.v1".
func (StockAdjusted) EventType() string { return TypeStockAdjusted }

// DropOpened: a live drop set Allocation units aside, at most
// PerCustomerLimit units per customer.
type DropOpened struct {
	SKU              string    `json:"sku"`
	Location         Location  `json:"location"`
	DropID           string    `json:"drop_id"`
	Allocation       int64     `json:"allocation"`
	PerCustomerLimit int64     `json:"per_customer_limit"`
	At               time.Time `json:"at"`
}

// EventType is "inventory.drop_opened.v1".
func (DropOpened) EventType() string { return TypeDropOpened }

// DropPurchased: a customer bought units from the drop; they are reserved for
// OrderID without expiry (the checkout saga commits or releases them).
type DropPurchased struct {
	SKU        string    `json:"sku"`
	Location   Location  `json:"location"`
	DropID     string    `json:"drop_id"`
	CustomerID string    `json:"customer_id"`
	OrderID    string    `json:"order_id"`
	Quantity   int64     `json:"quantity"`
	At         time.Time `json:"at"`
}

// EventType is "inventory.drop_purchased.v1".
func (DropPurchased) EventType() string { return TypeDropPurchased }

// DropClosed: the drop ended; Unsold units went back to available stock.
type DropClosed struct {
	SKU      string    `json:"sku"`
	Location Location  `json:"location"`
	DropID   string    `json:"drop_id"`
	Sold     int64     `json:"sold"`
	Unsold   int64     `json:"unsold"`
	At       time.Time `json:"at"`
}

// EventType is "inventory.drop_closed.v1".
func (DropClosed) EventType() string { return TypeDropClosed }
