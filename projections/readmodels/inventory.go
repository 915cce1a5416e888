package readmodels

import (
	"context"
	"fmt"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/projections"
)

// StockRow is the stock of one SKU at one location. Available = OnHand -
// Reserved; Reserved counts open reservations and the open drop's unsold
// allocation.
type StockRow struct {
	SKU, Location, Tenant                   string
	OnHand, Reserved, Available             int64
	Received, Committed, Adjusted           int64
	DropID                                  string
	DropOpen, DropAllocation, DropRemaining int64
	UpdatedAt                               string
	Version, Position                       int64
}

var stockSpec = projections.Spec[StockRow]{
	Name: "rm_stock",
	Cols: []string{"sku", "location", "tenant", "on_hand", "reserved", "available", "received", "committed", "adjusted",
		"drop_id", "drop_open", "drop_allocation", "drop_remaining", "updated_at", "version", "position"},
	Key: 2,
	Fields: func(r *StockRow) []any {
		return []any{&r.SKU, &r.Location, &r.Tenant, &r.OnHand, &r.Reserved, &r.Available, &r.Received, &r.Committed, &r.Adjusted,
			&r.DropID, &r.DropOpen, &r.DropAllocation, &r.DropRemaining, &r.UpdatedAt, &r.Version, &r.Position}
	},
	Indexes: []string{"CREATE INDEX {{table}}_tenant ON {{table}} (tenant, sku)"},
}

// DropRow is one live drop.
type DropRow struct {
	DropID, Tenant, SKU, Location                 string
	Allocation, PerCustomerLimit, Sold, Remaining int64
	Purchases, Open                               int64
	OpenedAt, ClosedAt                            string
	Position                                      int64
}

var dropsSpec = projections.Spec[DropRow]{
	Name: "rm_drops",
	Cols: []string{"drop_id", "tenant", "sku", "location", "allocation", "per_customer_limit", "sold", "remaining", "purchases", "open", "opened_at", "closed_at", "position"},
	Key:  1,
	Fields: func(r *DropRow) []any {
		return []any{&r.DropID, &r.Tenant, &r.SKU, &r.Location, &r.Allocation, &r.PerCustomerLimit, &r.Sold, &r.Remaining, &r.Purchases, &r.Open, &r.OpenedAt, &r.ClosedAt, &r.Position}
	},
	Indexes: []string{"CREATE INDEX {{table}}_tenant ON {{table}} (tenant, open)"},
}

// Inventory is the availability read model: on hand, reserved and
// available per SKU per location, and live drops. Its name "inventory" is
// stable.
type Inventory struct{ Registry *event.Registry }

func (Inventory) Name() string { return "inventory" }
func (Inventory) Version() int { return 1 }
func (Inventory) Tables() []projections.Table {
	return []projections.Table{stockSpec.Table(), dropsSpec.Table()}
}

// Decodes implements projections.Decoding: Apply decodes the inventory events.
func (p Inventory) Decodes(e *event.Envelope) *event.Registry {
	if event.Category(e.StreamID) == "inventory" {
		return p.Registry
	}
	return nil
}

// Apply folds the batch's inventory events. Every inventory event names
// its SKU and location, so nothing is parsed from stream IDs.
func (p Inventory) Apply(ctx context.Context, tx projections.Tx, batch []event.Envelope) error {
	type decoded struct {
		env *event.Envelope
		ev  event.Event
	}
	var evs []decoded
	skus, drops := map[string]bool{}, map[string]bool{}
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
		sku, _, id := itemOf(ev)
		skus[sku] = true
		if id != "" {
			drops[id] = true
		}
	}
	if len(evs) == 0 {
		return nil
	}
	stock, dropRows := projections.NewRowSet[StockRow](), projections.NewRowSet[DropRow]()
	key := func(sku, loc string) string { return sku + "@" + loc }
	if err := projections.Load(ctx, tx, stockSpec, "sku", projections.Keys(skus), func(r *StockRow) { stock.Put(key(r.SKU, r.Location), r) }); err != nil {
		return err
	}
	if err := projections.Load(ctx, tx, dropsSpec, "drop_id", projections.Keys(drops), func(r *DropRow) { dropRows.Put(r.DropID, r) }); err != nil {
		return err
	}
	for _, d := range evs {
		sku, loc, dropID := itemOf(d.ev)
		k := key(sku, loc)
		s := stock.Get(k)
		if s == nil {
			s = &StockRow{SKU: sku, Location: loc, Tenant: d.env.Metadata.Tenant}
			stock.Put(k, s)
		}
		pos := int64(d.env.Position)
		var at string
		switch e := d.ev.(type) {
		case *inventory.StockReceived:
			s.OnHand += e.Quantity
			s.Received += e.Quantity
			at = projections.Timestamp(e.At)
		case *inventory.StockReserved:
			s.Reserved += e.Quantity
			at = projections.Timestamp(e.At)
		case *inventory.ReservationReleased:
			s.Reserved -= e.Quantity
			at = projections.Timestamp(e.At)
		case *inventory.ReservationExpired:
			s.Reserved -= e.Quantity
			at = projections.Timestamp(e.At)
		case *inventory.StockCommitted:
			s.Reserved -= e.Quantity
			s.OnHand -= e.Quantity
			s.Committed += e.Quantity
			at = projections.Timestamp(e.At)
		case *inventory.StockAdjusted:
			s.OnHand += e.Delta
			s.Adjusted += e.Delta
			at = projections.Timestamp(e.At)
		case *inventory.DropOpened:
			s.Reserved += e.Allocation
			s.DropID, s.DropOpen, s.DropAllocation, s.DropRemaining = e.DropID, 1, e.Allocation, e.Allocation
			at = projections.Timestamp(e.At)
			dropRows.Put(e.DropID, &DropRow{DropID: e.DropID, Tenant: s.Tenant, SKU: sku, Location: loc, Allocation: e.Allocation,
				PerCustomerLimit: e.PerCustomerLimit, Remaining: e.Allocation, Open: 1, OpenedAt: at})
		case *inventory.DropPurchased:
			// Units move from the drop to the order's reservation.
			s.DropRemaining -= e.Quantity
			at = projections.Timestamp(e.At)
			if dr := dropRows.Get(e.DropID); dr != nil {
				dr.Sold += e.Quantity
				dr.Remaining -= e.Quantity
				dr.Purchases++
			}
		case *inventory.DropClosed:
			s.Reserved -= e.Unsold
			s.DropOpen, s.DropRemaining = 0, 0
			at = projections.Timestamp(e.At)
			if dr := dropRows.Get(e.DropID); dr != nil {
				dr.Open, dr.Remaining, dr.ClosedAt = 0, 0, at
			}
		}
		if dropID != "" && dropRows.Get(dropID) != nil {
			dropRows.Get(dropID).Position = pos
			dropRows.Touch(dropID)
		}
		s.Available = s.OnHand - s.Reserved
		s.UpdatedAt, s.Version, s.Position = at, int64(d.env.Version), pos
		stock.Touch(k)
	}
	if err := projections.Save(ctx, tx, stockSpec, stock.Changed()); err != nil {
		return err
	}
	return projections.Save(ctx, tx, dropsSpec, dropRows.Changed())
}

// itemOf returns the SKU, location and (for drop events) drop of an
// inventory event.
func itemOf(ev event.Event) (sku, loc, drop string) {
	switch e := ev.(type) {
	case *inventory.StockReceived:
		return e.SKU, e.Location.String(), ""
	case *inventory.StockReserved:
		return e.SKU, e.Location.String(), ""
	case *inventory.ReservationReleased:
		return e.SKU, e.Location.String(), ""
	case *inventory.ReservationExpired:
		return e.SKU, e.Location.String(), ""
	case *inventory.StockCommitted:
		return e.SKU, e.Location.String(), ""
	case *inventory.StockAdjusted:
		return e.SKU, e.Location.String(), ""
	case *inventory.DropOpened:
		return e.SKU, e.Location.String(), e.DropID
	case *inventory.DropPurchased:
		return e.SKU, e.Location.String(), e.DropID
	case *inventory.DropClosed:
		return e.SKU, e.Location.String(), e.DropID
	}
	return "", "", ""
}

// Availability is a SKU's stock over all its locations.
type Availability struct {
	SKU                         string
	OnHand, Reserved, Available int64
	Locations                   []StockRow
}

// GetAvailability returns tenant's stock of sku at every location (zero
// rows: the SKU was never stocked, not an error).
func GetAvailability(ctx context.Context, db *projections.DB, tenant, sku string) (Availability, error) {
	rows, err := projections.Query(ctx, db, stockSpec, `WHERE tenant = $1 AND sku = $2 ORDER BY location`, tenant, sku)
	if err != nil {
		return Availability{}, err
	}
	a := Availability{SKU: sku, Locations: rows}
	for _, r := range rows {
		a.OnHand += r.OnHand
		a.Reserved += r.Reserved
		a.Available += r.Available
	}
	return a, nil
}

// GetStock returns tenant's stock of sku at location, or
// projections.ErrNotFound.
func GetStock(ctx context.Context, db *projections.DB, tenant, sku, location string) (StockRow, error) {
	rows, err := projections.Query(ctx, db, stockSpec, `WHERE tenant = $1 AND sku = $2 AND location = $3`, tenant, sku, location)
	if err != nil {
		return StockRow{}, err
	}
	if len(rows) == 0 {
		return StockRow{}, fmt.Errorf("stock %s@%s: %w", sku, location, projections.ErrNotFound)
	}
	return rows[0], nil
}

// ListDrops returns tenant's live drops (open ones only if openOnly),
// newest first.
func ListDrops(ctx context.Context, db *projections.DB, tenant string, openOnly bool, max int) ([]DropRow, error) {
	if openOnly {
		return projections.Query(ctx, db, dropsSpec, `WHERE tenant = $1 AND open = 1 ORDER BY opened_at DESC, drop_id`+limit(max), tenant)
	}
	return projections.Query(ctx, db, dropsSpec, `WHERE tenant = $1 ORDER BY opened_at DESC, drop_id`+limit(max), tenant)
}
