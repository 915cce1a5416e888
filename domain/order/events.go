package order

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/money"
)

// Event type names. They are persisted: never change one; add a new version
// and an upcaster instead.
const (
	TypeOrderPlacedV1       = "order.placed.v1" // read-only: upcast to v2
	TypeOrderPlaced         = "order.placed.v2"
	TypeCheckoutStarted     = "order.checkout_started.v1"
	TypeOrderConfirmed      = "order.confirmed.v1"
	TypeOrderCancelled      = "order.cancelled.v1"
	TypeOrderLinesCancelled = "order.lines_cancelled.v1"
	TypeOrderLinesFulfilled = "order.lines_fulfilled.v1"
	TypeOrderCompleted      = "order.completed.v1"
	TypeRefundRequested     = "order.refund_requested.v1"
	TypeOrderRefunded       = "order.refunded.v1"
	TypeReturnRequested     = "order.return_requested.v1"
	TypeReturnReceived      = "order.return_received.v1"
)

// Register adds every order event type and the upcasters of old versions to
// r. It panics if one is already registered (a wiring bug).
func Register(r *event.Registry) {
	r.Register(
		func() event.Event { return &OrderPlaced{} },
		func() event.Event { return &CheckoutStarted{} },
		func() event.Event { return &OrderConfirmed{} },
		func() event.Event { return &OrderCancelled{} },
		func() event.Event { return &OrderLinesCancelled{} },
		func() event.Event { return &OrderLinesFulfilled{} },
		func() event.Event { return &OrderCompleted{} },
		func() event.Event { return &RefundRequested{} },
		func() event.Event { return &OrderRefunded{} },
		func() event.Event { return &ReturnRequested{} },
		func() event.Event { return &ReturnReceived{} },
	)
	r.RegisterUpcaster(TypeOrderPlacedV1, TypeOrderPlaced, upcastPlacedV1)
}

// StreamID is the order's stream: "order-"+id.
func StreamID(id string) string { return "order-" + id }

// Line is an order line as placed: line numbers are 1-based positions in the
// cart and are how later commands name lines.
type Line struct {
	No        int         `json:"no"`
	SKU       string      `json:"sku"`
	Quantity  int64       `json:"quantity"`
	UnitPrice money.Money `json:"unit_price"`
	Amount    money.Money `json:"amount"` // Quantity * UnitPrice, exactly
}

// Adjustment is an explicit discount or tax amount with a label ("SPRING10",
// "CA sales tax"). Discounts are positive amounts subtracted from the
// subtotal; taxes are non-negative amounts added to it.
type Adjustment struct {
	Label  string      `json:"label"`
	Amount money.Money `json:"amount"`
}

// LineQuantity is a quantity of one order line.
type LineQuantity struct {
	Line     int   `json:"line"`
	Quantity int64 `json:"quantity"`
}

// OrderPlaced (v2): a customer placed an order. The totals are computed at
// placement and stored, so history states the exact amounts agreed:
// Total = Subtotal - DiscountTotal + TaxTotal, Subtotal = sum of line amounts.
type OrderPlaced struct {
	OrderID       string         `json:"order_id"`
	CustomerID    string         `json:"customer_id"`
	Region        string         `json:"region"`
	Currency      money.Currency `json:"currency"`
	Lines         []Line         `json:"lines"`
	Discounts     []Adjustment   `json:"discounts"`
	Taxes         []Adjustment   `json:"taxes"`
	Subtotal      money.Money    `json:"subtotal"`
	DiscountTotal money.Money    `json:"discount_total"`
	TaxTotal      money.Money    `json:"tax_total"`
	Total         money.Money    `json:"total"`
	PlacedAt      time.Time      `json:"placed_at"`
}

// EventType is "order.placed.v2".
func (OrderPlaced) EventType() string { return TypeOrderPlaced }

// upcastPlacedV1 reads an order.placed.v1, written before explicit tax lines
// existed (prices included tax), as a v2 with no tax lines and a zero tax
// total: v1's total was subtotal - discounts, which v2 states with tax 0.
func upcastPlacedV1(data []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	var cur string
	if err := json.Unmarshal(m["currency"], &cur); err != nil {
		return nil, fmt.Errorf("v1 currency: %w", err)
	}
	c, err := money.ParseCurrency(cur)
	if err != nil {
		return nil, fmt.Errorf("v1 currency: %w", err)
	}
	zero, err := json.Marshal(money.Zero(c))
	if err != nil {
		return nil, err
	}
	m["taxes"] = json.RawMessage("[]")
	m["tax_total"] = zero
	return json.Marshal(m)
}

// CheckoutStarted: the customer chose how to pay. Choosing again (after a
// declined card, say) records another CheckoutStarted; the last one counts.
type CheckoutStarted struct {
	OrderID string        `json:"order_id"`
	Method  PaymentMethod `json:"method"`
	Plan    PlanKind      `json:"plan,omitzero"`
	At      time.Time     `json:"at"`
}

// EventType is "order.checkout_started.v1".
func (CheckoutStarted) EventType() string { return TypeCheckoutStarted }

// OrderConfirmed: payment for the whole total is secured (authorized by the
// card provider or the BNPL plan accepted); Paid is the ceiling for refunds.
type OrderConfirmed struct {
	OrderID    string      `json:"order_id"`
	PaymentRef string      `json:"payment_ref"`
	Paid       money.Money `json:"paid"`
	At         time.Time   `json:"at"`
}

// EventType is "order.confirmed.v1".
func (OrderConfirmed) EventType() string { return TypeOrderConfirmed }

// OrderCancelled: the whole order was cancelled before anything shipped, or
// its last open line was cancelled.
type OrderCancelled struct {
	OrderID string    `json:"order_id"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// EventType is "order.cancelled.v1".
func (OrderCancelled) EventType() string { return TypeOrderCancelled }

// OrderLinesCancelled: quantities of lines that had not shipped were
// cancelled. Value is the sum of their quantity * unit price, for the
// refund the saga requests; the placed totals are not rewritten.
type OrderLinesCancelled struct {
	OrderID string         `json:"order_id"`
	Lines   []LineQuantity `json:"lines"`
	Value   money.Money    `json:"value"`
	Reason  string         `json:"reason"`
	At      time.Time      `json:"at"`
}

// EventType is "order.lines_cancelled.v1".
func (OrderLinesCancelled) EventType() string { return TypeOrderLinesCancelled }

// OrderLinesFulfilled: one shipment carrying these quantities left.
type OrderLinesFulfilled struct {
	OrderID    string         `json:"order_id"`
	ShipmentID string         `json:"shipment_id"`
	Lines      []LineQuantity `json:"lines"`
	At         time.Time      `json:"at"`
}

// EventType is "order.lines_fulfilled.v1".
func (OrderLinesFulfilled) EventType() string { return TypeOrderLinesFulfilled }

// OrderCompleted: every line is fulfilled or cancelled and the order is
// closed for fulfillment (returns and refunds remain possible).
type OrderCompleted struct {
	OrderID string    `json:"order_id"`
	At      time.Time `json:"at"`
}

// EventType is "order.completed.v1".
func (OrderCompleted) EventType() string { return TypeOrderCompleted }

// RefundRequested: a refund of Amount was asked of the payment side; it is
// pending until OrderRefunded.
type RefundRequested struct {
	OrderID  string      `json:"order_id"`
	RefundID string      `json:"refund_id"`
	Amount   money.Money `json:"amount"`
	Reason   string      `json:"reason"`
	At       time.Time   `json:"at"`
}

// EventType is "order.refund_requested.v1".
func (RefundRequested) EventType() string { return TypeRefundRequested }

// OrderRefunded: the payment side refunded Amount (at most the requested
// amount) for RefundID, which is then settled; any difference is released.
type OrderRefunded struct {
	OrderID  string      `json:"order_id"`
	RefundID string      `json:"refund_id"`
	Amount   money.Money `json:"amount"`
	At       time.Time   `json:"at"`
}

// EventType is "order.refunded.v1".
func (OrderRefunded) EventType() string { return TypeOrderRefunded }

// ReturnRequested: the customer asked to return fulfilled quantities.
type ReturnRequested struct {
	OrderID  string         `json:"order_id"`
	ReturnID string         `json:"return_id"`
	Lines    []LineQuantity `json:"lines"`
	Reason   string         `json:"reason"`
	At       time.Time      `json:"at"`
}

// EventType is "order.return_requested.v1".
func (ReturnRequested) EventType() string { return TypeReturnRequested }

// ReturnReceived: returned goods arrived (at most the requested quantities);
// the return is closed. Value is quantity * unit price of what arrived, for
// the refund the saga requests.
type ReturnReceived struct {
	OrderID  string         `json:"order_id"`
	ReturnID string         `json:"return_id"`
	Lines    []LineQuantity `json:"lines"`
	Value    money.Money    `json:"value"`
	At       time.Time      `json:"at"`
}

// EventType is "order.return_received.v1".
func (ReturnReceived) EventType() string { return TypeReturnReceived }
