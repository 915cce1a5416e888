package readmodels

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/projections"
)

// OrderRow is an order as the read model keeps it. Amounts are minor units
// of Currency.
type OrderRow struct {
	OrderID, Tenant, CustomerID, Region, Currency string
	Status, PaymentMethod, PlanKind, PaymentRef   string
	Subtotal, DiscountTotal, TaxTotal, Total      int64
	Paid, Refunded, RefundPending, CancelledValue int64
	Lines, Units                                  int64
	UnitsFulfilled, UnitsCancelled, UnitsReturned int64
	PlacedAt, UpdatedAt                           string
	Version, Position                             int64
}

var ordersSpec = projections.Spec[OrderRow]{
	Name: "rm_orders",
	Cols: []string{"order_id", "tenant", "customer_id", "region", "currency", "status", "payment_method", "plan_kind", "payment_ref",
		"subtotal", "discount_total", "tax_total", "total", "paid", "refunded", "refund_pending", "cancelled_value",
		"lines", "units", "units_fulfilled", "units_cancelled", "units_returned", "placed_at", "updated_at", "version", "position"},
	Key: 1,
	Fields: func(r *OrderRow) []any {
		return []any{&r.OrderID, &r.Tenant, &r.CustomerID, &r.Region, &r.Currency, &r.Status, &r.PaymentMethod, &r.PlanKind, &r.PaymentRef,
			&r.Subtotal, &r.DiscountTotal, &r.TaxTotal, &r.Total, &r.Paid, &r.Refunded, &r.RefundPending, &r.CancelledValue,
			&r.Lines, &r.Units, &r.UnitsFulfilled, &r.UnitsCancelled, &r.UnitsReturned, &r.PlacedAt, &r.UpdatedAt, &r.Version, &r.Position}
	},
	Indexes: []string{
		"CREATE INDEX {{table}}_customer ON {{table}} (tenant, customer_id, placed_at)",
		"CREATE INDEX {{table}}_status ON {{table}} (tenant, status, placed_at)",
	},
}

// OrderLineRow is one order line with its progress.
type OrderLineRow struct {
	OrderID                                  string
	LineNo                                   int64
	Tenant, SKU                              string
	Quantity, UnitPrice, Amount              int64
	Cancelled, Fulfilled, Returned, Position int64
}

var orderLinesSpec = projections.Spec[OrderLineRow]{
	Name: "rm_order_lines",
	Cols: []string{"order_id", "line_no", "tenant", "sku", "quantity", "unit_price", "amount", "cancelled", "fulfilled", "returned", "position"},
	Key:  2,
	Fields: func(r *OrderLineRow) []any {
		return []any{&r.OrderID, &r.LineNo, &r.Tenant, &r.SKU, &r.Quantity, &r.UnitPrice, &r.Amount, &r.Cancelled, &r.Fulfilled, &r.Returned, &r.Position}
	},
}

// OrderRefundRow is one refund of an order: requested, then recorded.
type OrderRefundRow struct {
	OrderID, RefundID, Tenant string
	Requested, Refunded       int64
	Status                    string // "pending", "refunded"
	Reason                    string
	RequestedAt, RefundedAt   string
	Position                  int64
}

var orderRefundsSpec = projections.Spec[OrderRefundRow]{
	Name: "rm_order_refunds",
	Cols: []string{"order_id", "refund_id", "tenant", "requested", "refunded", "status", "reason", "requested_at", "refunded_at", "position"},
	Key:  2,
	Fields: func(r *OrderRefundRow) []any {
		return []any{&r.OrderID, &r.RefundID, &r.Tenant, &r.Requested, &r.Refunded, &r.Status, &r.Reason, &r.RequestedAt, &r.RefundedAt, &r.Position}
	},
}

// Orders is the orders read model: one row per order (status, totals,
// customer, region, tenant, payment method, timestamps), its lines and its
// refunds. Its name "orders" is stable (renaming it rebuilds it).
type Orders struct{ Registry *event.Registry }

func (Orders) Name() string { return "orders" }
func (Orders) Version() int { return 1 }
func (Orders) Tables() []projections.Table {
	return []projections.Table{ordersSpec.Table(), orderLinesSpec.Table(), orderRefundsSpec.Table()}
}

// Decodes implements projections.Decoding: Apply decodes the order events.
func (p Orders) Decodes(e *event.Envelope) *event.Registry {
	if event.Category(e.StreamID) == "order" {
		return p.Registry
	}
	return nil
}

// Apply folds the batch's order events into the rows they touch.
func (p Orders) Apply(ctx context.Context, tx projections.Tx, batch []event.Envelope) error {
	type decoded struct {
		env *event.Envelope
		ev  event.Event
	}
	var evs []decoded
	ids := map[string]bool{}
	for i := range batch {
		e := &batch[i]
		if p.Decodes(e) == nil {
			continue
		}
		ev, err := tx.Decode(p.Registry, e)
		if err != nil {
			return fmt.Errorf("position %d: %w", e.Position, err)
		}
		evs = append(evs, decoded{e, ev})
		ids[e.StreamID[len("order-"):]] = true
	}
	if len(evs) == 0 {
		return nil
	}
	orders, lines, refunds := projections.NewRowSet[OrderRow](), projections.NewRowSet[OrderLineRow](), projections.NewRowSet[OrderRefundRow]()
	linesOf := map[string][]*OrderLineRow{}
	idList := projections.Keys(ids)
	if err := projections.Load(ctx, tx, ordersSpec, "order_id", idList, func(r *OrderRow) { orders.Put(r.OrderID, r) }); err != nil {
		return err
	}
	lineKey := func(order string, no int64) string { return order + "\x00" + strconv.FormatInt(no, 10) }
	if err := projections.Load(ctx, tx, orderLinesSpec, "order_id", idList, func(r *OrderLineRow) {
		lines.Put(lineKey(r.OrderID, r.LineNo), r)
		linesOf[r.OrderID] = append(linesOf[r.OrderID], r)
	}); err != nil {
		return err
	}
	if err := projections.Load(ctx, tx, orderRefundsSpec, "order_id", idList, func(r *OrderRefundRow) { refunds.Put(r.OrderID+"\x00"+r.RefundID, r) }); err != nil {
		return err
	}
	for _, d := range evs {
		id := d.env.StreamID[len("order-"):]
		o := orders.Get(id)
		if o == nil {
			if _, ok := d.ev.(*order.OrderPlaced); !ok {
				continue // an order's history starts with its placement
			}
			// The tenant is the placing event's; it never changes.
			o = &OrderRow{OrderID: id, Tenant: d.env.Metadata.Tenant}
			orders.Put(id, o)
		}
		pos := int64(d.env.Position)
		line := func(no int) *OrderLineRow {
			l := lines.Get(lineKey(id, int64(no)))
			if l != nil {
				l.Position = pos
				lines.Touch(lineKey(id, int64(no)))
			}
			return l
		}
		switch e := d.ev.(type) {
		case *order.OrderPlaced:
			o.CustomerID, o.Region, o.Currency = e.CustomerID, e.Region, e.Currency.Code()
			o.Status = order.StatusPlaced.String()
			o.Subtotal, o.DiscountTotal, o.TaxTotal, o.Total = e.Subtotal.MinorUnits(), e.DiscountTotal.MinorUnits(), e.TaxTotal.MinorUnits(), e.Total.MinorUnits()
			o.Lines = int64(len(e.Lines))
			for _, l := range e.Lines {
				o.Units += l.Quantity
				r := &OrderLineRow{OrderID: id, LineNo: int64(l.No), Tenant: o.Tenant, SKU: l.SKU, Quantity: l.Quantity,
					UnitPrice: l.UnitPrice.MinorUnits(), Amount: l.Amount.MinorUnits(), Position: pos}
				lines.Put(lineKey(id, int64(l.No)), r)
				lines.Touch(lineKey(id, int64(l.No)))
				linesOf[id] = append(linesOf[id], r)
			}
			o.PlacedAt = projections.Timestamp(e.PlacedAt)
			o.UpdatedAt = projections.Timestamp(e.PlacedAt)
		case *order.CheckoutStarted:
			o.PaymentMethod, o.PlanKind = e.Method.String(), e.Plan.String()
			o.Status = order.StatusCheckoutStarted.String()
			o.UpdatedAt = projections.Timestamp(e.At)
		case *order.OrderConfirmed:
			o.PaymentRef, o.Paid = e.PaymentRef, e.Paid.MinorUnits()
			o.Status = order.StatusConfirmed.String()
			o.UpdatedAt = projections.Timestamp(e.At)
		case *order.OrderCancelled:
			o.Status = order.StatusCancelled.String()
			o.UpdatedAt = projections.Timestamp(e.At)
		case *order.OrderLinesCancelled:
			for _, lq := range e.Lines {
				if l := line(lq.Line); l != nil {
					l.Cancelled += lq.Quantity
					o.UnitsCancelled += lq.Quantity
				}
			}
			o.CancelledValue += e.Value.MinorUnits()
			settle(o, linesOf[id])
			o.UpdatedAt = projections.Timestamp(e.At)
		case *order.OrderLinesFulfilled:
			for _, lq := range e.Lines {
				if l := line(lq.Line); l != nil {
					l.Fulfilled += lq.Quantity
					o.UnitsFulfilled += lq.Quantity
				}
			}
			settle(o, linesOf[id])
			o.UpdatedAt = projections.Timestamp(e.At)
		case *order.OrderCompleted:
			o.Status = order.StatusCompleted.String()
			o.UpdatedAt = projections.Timestamp(e.At)
		case *order.RefundRequested:
			k := id + "\x00" + e.RefundID
			refunds.Put(k, &OrderRefundRow{OrderID: id, RefundID: e.RefundID, Tenant: o.Tenant, Requested: e.Amount.MinorUnits(),
				Status: "pending", Reason: e.Reason, RequestedAt: projections.Timestamp(e.At), Position: pos})
			refunds.Touch(k)
			o.RefundPending += e.Amount.MinorUnits()
			o.UpdatedAt = projections.Timestamp(e.At)
		case *order.OrderRefunded:
			k := id + "\x00" + e.RefundID
			r := refunds.Get(k)
			if r == nil {
				r = &OrderRefundRow{OrderID: id, RefundID: e.RefundID, Tenant: o.Tenant}
				refunds.Put(k, r)
			}
			if r.Status == "pending" {
				o.RefundPending -= r.Requested
			}
			r.Status, r.Refunded, r.RefundedAt, r.Position = "refunded", r.Refunded+e.Amount.MinorUnits(), projections.Timestamp(e.At), pos
			refunds.Touch(k)
			o.Refunded += e.Amount.MinorUnits()
			o.UpdatedAt = projections.Timestamp(e.At)
		case *order.ReturnRequested:
			o.UpdatedAt = projections.Timestamp(e.At)
		case *order.ReturnReceived:
			for _, lq := range e.Lines {
				if l := line(lq.Line); l != nil {
					l.Returned += lq.Quantity
					o.UnitsReturned += lq.Quantity
				}
			}
			o.UpdatedAt = projections.Timestamp(e.At)
		}
		o.Version, o.Position = int64(d.env.Version), pos
		orders.Touch(id)
	}
	if err := projections.Save(ctx, tx, ordersSpec, orders.Changed()); err != nil {
		return err
	}
	if err := projections.Save(ctx, tx, orderLinesSpec, lines.Changed()); err != nil {
		return err
	}
	return projections.Save(ctx, tx, orderRefundsSpec, refunds.Changed())
}

// settle moves the status after lines were fulfilled or cancelled, as the
// order aggregate does: fulfilled when nothing is open and something was
// fulfilled, partially fulfilled while lines stay open.
func settle(o *OrderRow, lines []*OrderLineRow) {
	var open, fulfilled int64
	for _, l := range lines {
		open += l.Quantity - l.Cancelled - l.Fulfilled
		fulfilled += l.Fulfilled
	}
	switch {
	case fulfilled == 0:
	case open == 0:
		o.Status = order.StatusFulfilled.String()
	default:
		o.Status = order.StatusPartiallyFulfilled.String()
	}
}

// Order is an order as the API shows it.
type Order struct {
	OrderRow
	PlacedTime, UpdatedTime time.Time
	LineItems               []OrderLineRow
	Refunds                 []OrderRefundRow
}

// GetOrder returns tenant's order id with its lines and refunds, or
// projections.ErrNotFound (also for another tenant's order: reads never
// cross tenants).
func GetOrder(ctx context.Context, db *projections.DB, tenant, id string) (Order, error) {
	var o Order
	err := db.QueryRowContext(ctx, `SELECT `+ordersSpec.Columns()+` FROM rm_orders WHERE tenant = $1 AND order_id = $2`, tenant, id).Scan(ordersSpec.Fields(&o.OrderRow)...)
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, fmt.Errorf("order %s: %w", id, projections.ErrNotFound)
	}
	if err != nil {
		return Order{}, fmt.Errorf("order %s: %w", id, err)
	}
	o.PlacedTime, o.UpdatedTime = projections.ParseTimestamp(o.PlacedAt), projections.ParseTimestamp(o.UpdatedAt)
	if o.LineItems, err = projections.Query(ctx, db, orderLinesSpec, `WHERE tenant = $1 AND order_id = $2 ORDER BY line_no`, tenant, id); err != nil {
		return Order{}, err
	}
	if o.Refunds, err = projections.Query(ctx, db, orderRefundsSpec, `WHERE tenant = $1 AND order_id = $2 ORDER BY requested_at, refund_id`, tenant, id); err != nil {
		return Order{}, err
	}
	return o, nil
}

// OrderFilter selects orders of one tenant. Zero fields do not filter.
type OrderFilter struct {
	CustomerID string
	Status     string
	// PlacedFrom and PlacedTo bound placement time, [From, To).
	PlacedFrom, PlacedTo time.Time
	// After is the last order ID of the previous page (keyset paging in
	// order-ID order); Limit defaults to 100, at most 1000.
	After string
	Limit int
}

// ListOrders returns tenant's orders matching f, in order-ID order.
func ListOrders(ctx context.Context, db *projections.DB, tenant string, f OrderFilter) ([]OrderRow, error) {
	where, args := `WHERE tenant = $1`, []any{tenant}
	add := func(cond string, v any) {
		args = append(args, v)
		where += fmt.Sprintf(" AND "+cond, len(args))
	}
	if f.CustomerID != "" {
		add("customer_id = $%d", f.CustomerID)
	}
	if f.Status != "" {
		add("status = $%d", f.Status)
	}
	if !f.PlacedFrom.IsZero() {
		add("placed_at >= $%d", projections.Timestamp(f.PlacedFrom))
	}
	if !f.PlacedTo.IsZero() {
		add("placed_at < $%d", projections.Timestamp(f.PlacedTo))
	}
	if f.After != "" {
		add("order_id > $%d", f.After)
	}
	return projections.Query(ctx, db, ordersSpec, where+" ORDER BY order_id"+limit(f.Limit), args...)
}

// ListCustomerOrders is ListOrders by customer, newest first.
func ListCustomerOrders(ctx context.Context, db *projections.DB, tenant, customerID string, max int) ([]OrderRow, error) {
	return projections.Query(ctx, db, ordersSpec, `WHERE tenant = $1 AND customer_id = $2 ORDER BY placed_at DESC, order_id`+limit(max), tenant, customerID)
}

func limit(n int) string {
	if n <= 0 {
		n = 100
	}
	return " LIMIT " + strconv.Itoa(min(n, 1000))
}
