// Package readmodels holds livecore's SQL read models, projected from $all
// by the projections.Runner, and the tenant-scoped queries the API calls:
//
//   - Orders ("orders"): rm_orders, rm_order_lines, rm_order_refunds;
//     GetOrder, ListOrders, ListCustomerOrders.
//   - Inventory ("inventory"): rm_stock (on hand, reserved, available per
//     SKU per location), rm_drops (live drops); GetAvailability, GetStock,
//     ListDrops.
//   - Payments ("payments"): rm_payments; PaymentsForOrder, GetPayment.
//   - Plans ("plans"): rm_plans, rm_plan_installments (BNPL receivables);
//     GetPlan, ListCustomerPlans, ReceivablesAging.
//   - Shipments ("shipments"): rm_shipments; ShipmentsForOrder,
//     GetShipment.
//
// Every row carries the tenant of the event that created it (event
// metadata); every query takes a tenant and never returns another
// tenant's rows (a missing row and another tenant's row both read as
// projections.ErrNotFound). Amounts are integer minor units with a
// currency column; times are fixed-width UTC ISO 8601 text. The same SQL
// runs on SQLite and PostgreSQL/CockroachDB.
//
// Each projection folds a batch into the rows it touches in memory and
// writes them back with multi-row upserts, deterministically, so a rebuild
// from position 1 yields the same rows as the live run.
package readmodels

import (
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/projections"
)

// All returns every read-model projection, decoding with reg (which must
// know every domain event type).
func All(reg *event.Registry) []projections.Projection {
	return []projections.Projection{Orders{reg}, Inventory{reg}, Payments{reg}, Plans{reg}, Shipments{reg}}
}
