package fulfillment

import (
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/inventory"
)

// Event type names. They are persisted: never change one; add a new version
// and an upcaster instead.
const (
	TypeOrderSplit        = "fulfillment.order_split.v1"
	TypeShipmentPicked    = "fulfillment.shipment_picked.v1"
	TypeShipmentPacked    = "fulfillment.shipment_packed.v1"
	TypeShipmentShipped   = "fulfillment.shipment_shipped.v1"
	TypeShipmentDelivered = "fulfillment.shipment_delivered.v1"
	TypeDeliveryFailed    = "fulfillment.delivery_failed.v1"
	TypeShipmentLost      = "fulfillment.shipment_lost.v1"
	TypeShipmentCancelled = "fulfillment.shipment_cancelled.v1"
	TypeReturnAuthorized  = "fulfillment.return_authorized.v1"
	TypeReturnReceived    = "fulfillment.return_received.v1"
)

// Register adds every fulfillment event type to r. It panics if one is
// already registered (a wiring bug).
func Register(r *event.Registry) {
	r.Register(
		func() event.Event { return &OrderSplit{} },
		func() event.Event { return &ShipmentPicked{} },
		func() event.Event { return &ShipmentPacked{} },
		func() event.Event { return &ShipmentShipped{} },
		func() event.Event { return &ShipmentDelivered{} },
		func() event.Event { return &DeliveryFailed{} },
		func() event.Event { return &ShipmentLost{} },
		func() event.Event { return &ShipmentCancelled{} },
		func() event.Event { return &ReturnAuthorized{} },
		func() event.Event { return &ReturnReceived{} },
	)
}

// StreamID is the stream of one order's fulfillment: "fulfillment-"+orderID.
func StreamID(orderID string) string { return "fulfillment-" + orderID }

// Line is a quantity of one order line (by its number in the order) of SKU.
type Line struct {
	Line     int    `json:"line"`
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// LineQuantity is a quantity of one order line, in returns.
type LineQuantity struct {
	Line     int   `json:"line"`
	Quantity int64 `json:"quantity"`
}

// PlannedShipment is one parcel: lines and quantities from one location.
type PlannedShipment struct {
	ID       string             `json:"id"`
	Location inventory.Location `json:"location"`
	Lines    []Line             `json:"lines"`
}

// OrderSplit: the order's lines were split into shipments, one location each.
type OrderSplit struct {
	OrderID   string            `json:"order_id"`
	Shipments []PlannedShipment `json:"shipments"`
	At        time.Time         `json:"at"`
}

// EventType is "fulfillment.order_split.v1".
func (OrderSplit) EventType() string { return TypeOrderSplit }

// ShipmentPicked: the goods were picked from the shelves.
type ShipmentPicked struct {
	OrderID    string    `json:"order_id"`
	ShipmentID string    `json:"shipment_id"`
	At         time.Time `json:"at"`
}

// EventType is "fulfillment.shipment_picked.v1".
func (ShipmentPicked) EventType() string { return TypeShipmentPicked }

// ShipmentPacked: the parcel was packed.
type ShipmentPacked struct {
	OrderID    string    `json:"order_id"`
	ShipmentID string    `json:"shipment_id"`
	At         time.Time `json:"at"`
}

// EventType is "fulfillment.shipment_packed.v1".
func (ShipmentPacked) EventType() string { return TypeShipmentPacked }

// ShipmentShipped: the carrier took the parcel. This is when inventory is
// committed and the order's lines count as fulfilled.
type ShipmentShipped struct {
	OrderID        string    `json:"order_id"`
	ShipmentID     string    `json:"shipment_id"`
	Carrier        string    `json:"carrier"`
	TrackingNumber string    `json:"tracking_number"`
	At             time.Time `json:"at"`
}

// EventType is "fulfillment.shipment_shipped.v1".
func (ShipmentShipped) EventType() string { return TypeShipmentShipped }

// ShipmentDelivered: the carrier delivered the parcel.
type ShipmentDelivered struct {
	OrderID    string    `json:"order_id"`
	ShipmentID string    `json:"shipment_id"`
	At         time.Time `json:"at"`
}

// EventType is "fulfillment.shipment_delivered.v1".
func (ShipmentDelivered) EventType() string { return TypeShipmentDelivered }

// DeliveryFailed: the carrier could not deliver (bad address, refused).
type DeliveryFailed struct {
	OrderID    string    `json:"order_id"`
	ShipmentID string    `json:"shipment_id"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

// EventType is "fulfillment.delivery_failed.v1".
func (DeliveryFailed) EventType() string { return TypeDeliveryFailed }

// ShipmentLost: the carrier lost the parcel.
type ShipmentLost struct {
	OrderID    string    `json:"order_id"`
	ShipmentID string    `json:"shipment_id"`
	At         time.Time `json:"at"`
}

// EventType is "fulfillment.shipment_lost.v1".
func (ShipmentLost) EventType() string { return TypeShipmentLost }

// ShipmentCancelled: a shipment that had not left was called off.
type ShipmentCancelled struct {
	OrderID    string    `json:"order_id"`
	ShipmentID string    `json:"shipment_id"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

// EventType is "fulfillment.shipment_cancelled.v1".
func (ShipmentCancelled) EventType() string { return TypeShipmentCancelled }

// ReturnAuthorized: the customer may send back these delivered quantities.
type ReturnAuthorized struct {
	OrderID    string         `json:"order_id"`
	ReturnID   string         `json:"return_id"`
	ShipmentID string         `json:"shipment_id"`
	Lines      []LineQuantity `json:"lines"`
	Reason     string         `json:"reason"`
	At         time.Time      `json:"at"`
}

// EventType is "fulfillment.return_authorized.v1".
func (ReturnAuthorized) EventType() string { return TypeReturnAuthorized }

// ReturnReceived: returned goods arrived; the return is closed. This feeds the
// refund the saga requests on the order.
type ReturnReceived struct {
	OrderID    string         `json:"order_id"`
	ReturnID   string         `json:"return_id"`
	ShipmentID string         `json:"shipment_id"`
	Lines      []LineQuantity `json:"lines"`
	At         time.Time      `json:"at"`
}

// EventType is "fulfillment.return_received.v1".
func (ReturnReceived) EventType() string { return TypeReturnReceived }
