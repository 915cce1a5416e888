package readmodels

import (
	"context"
	"fmt"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/projections"
)

// ShipmentRow is one shipment (one parcel from one location).
type ShipmentRow struct {
	ShipmentID, Tenant, OrderID, Location, Status string
	Carrier, TrackingNumber, Reason               string
	Lines, Units, UnitsReturning, UnitsReturned   int64
	PlannedAt, ShippedAt, DeliveredAt, UpdatedAt  string
	Position                                      int64
}

var shipmentsSpec = projections.Spec[ShipmentRow]{
	Name: "rm_shipments",
	Cols: []string{"shipment_id", "tenant", "order_id", "location", "status", "carrier", "tracking_number", "reason",
		"lines", "units", "units_returning", "units_returned", "planned_at", "shipped_at", "delivered_at", "updated_at", "position"},
	Key: 1,
	Fields: func(r *ShipmentRow) []any {
		return []any{&r.ShipmentID, &r.Tenant, &r.OrderID, &r.Location, &r.Status, &r.Carrier, &r.TrackingNumber, &r.Reason,
			&r.Lines, &r.Units, &r.UnitsReturning, &r.UnitsReturned, &r.PlannedAt, &r.ShippedAt, &r.DeliveredAt, &r.UpdatedAt, &r.Position}
	},
	Indexes: []string{
		"CREATE INDEX {{table}}_order ON {{table}} (tenant, order_id)",
		"CREATE INDEX {{table}}_status ON {{table}} (tenant, status)",
	},
}

// Shipments is the shipments read model. Its name "shipments" is stable.
type Shipments struct{ Registry *event.Registry }

func (Shipments) Name() string                { return "shipments" }
func (Shipments) Version() int                { return 1 }
func (Shipments) Tables() []projections.Table { return []projections.Table{shipmentsSpec.Table()} }

// Decodes implements projections.Decoding: Apply decodes the fulfillment events.
func (p Shipments) Decodes(e *event.Envelope) *event.Registry {
	if event.Category(e.StreamID) == "fulfillment" {
		return p.Registry
	}
	return nil
}

// Apply folds the batch's fulfillment events.
func (p Shipments) Apply(ctx context.Context, tx projections.Tx, batch []event.Envelope) error {
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
		for _, id := range shipmentIDs(ev) {
			ids[id] = true
		}
	}
	if len(evs) == 0 {
		return nil
	}
	rows := projections.NewRowSet[ShipmentRow]()
	if err := projections.Load(ctx, tx, shipmentsSpec, "shipment_id", projections.Keys(ids), func(r *ShipmentRow) { rows.Put(r.ShipmentID, r) }); err != nil {
		return err
	}
	for _, d := range evs {
		pos := int64(d.env.Position)
		if e, ok := d.ev.(*fulfillment.OrderSplit); ok {
			for _, ps := range e.Shipments {
				r := &ShipmentRow{ShipmentID: ps.ID, Tenant: d.env.Metadata.Tenant, OrderID: e.OrderID, Location: ps.Location.String(),
					Status: fulfillment.StatusPlanned.String(), Lines: int64(len(ps.Lines)), PlannedAt: projections.Timestamp(e.At), UpdatedAt: projections.Timestamp(e.At), Position: pos}
				for _, l := range ps.Lines {
					r.Units += l.Quantity
				}
				rows.Put(ps.ID, r)
				rows.Touch(ps.ID)
			}
			continue
		}
		ids := shipmentIDs(d.ev)
		if len(ids) != 1 {
			continue
		}
		r := rows.Get(ids[0])
		if r == nil {
			continue // a shipment's history starts with the split
		}
		switch e := d.ev.(type) {
		case *fulfillment.ShipmentPicked:
			r.Status, r.UpdatedAt = fulfillment.StatusPicked.String(), projections.Timestamp(e.At)
		case *fulfillment.ShipmentPacked:
			r.Status, r.UpdatedAt = fulfillment.StatusPacked.String(), projections.Timestamp(e.At)
		case *fulfillment.ShipmentShipped:
			r.Status, r.Carrier, r.TrackingNumber = fulfillment.StatusShipped.String(), e.Carrier, e.TrackingNumber
			r.ShippedAt, r.UpdatedAt = projections.Timestamp(e.At), projections.Timestamp(e.At)
		case *fulfillment.ShipmentDelivered:
			r.Status, r.DeliveredAt, r.UpdatedAt = fulfillment.StatusDelivered.String(), projections.Timestamp(e.At), projections.Timestamp(e.At)
		case *fulfillment.DeliveryFailed:
			r.Status, r.Reason, r.UpdatedAt = fulfillment.StatusFailed.String(), e.Reason, projections.Timestamp(e.At)
		case *fulfillment.ShipmentLost:
			r.Status, r.UpdatedAt = fulfillment.StatusLost.String(), projections.Timestamp(e.At)
		case *fulfillment.ShipmentCancelled:
			r.Status, r.Reason, r.UpdatedAt = fulfillment.StatusCancelled.String(), e.Reason, projections.Timestamp(e.At)
		case *fulfillment.ReturnAuthorized:
			for _, l := range e.Lines {
				r.UnitsReturning += l.Quantity
			}
			r.UpdatedAt = projections.Timestamp(e.At)
		case *fulfillment.ReturnReceived:
			// The return closes: what was authorized is no longer on
			// its way, what arrived is returned. The authorized
			// quantities are not in the event, so UnitsReturning drops
			// by what arrived and is floored at zero on close.
			for _, l := range e.Lines {
				r.UnitsReturned += l.Quantity
				r.UnitsReturning -= l.Quantity
			}
			r.UnitsReturning = max(0, r.UnitsReturning)
			r.UpdatedAt = projections.Timestamp(e.At)
		}
		r.Position = pos
		rows.Touch(r.ShipmentID)
	}
	return projections.Save(ctx, tx, shipmentsSpec, rows.Changed())
}

func shipmentIDs(ev event.Event) []string {
	switch e := ev.(type) {
	case *fulfillment.OrderSplit:
		out := make([]string, len(e.Shipments))
		for i, s := range e.Shipments {
			out[i] = s.ID
		}
		return out
	case *fulfillment.ShipmentPicked:
		return []string{e.ShipmentID}
	case *fulfillment.ShipmentPacked:
		return []string{e.ShipmentID}
	case *fulfillment.ShipmentShipped:
		return []string{e.ShipmentID}
	case *fulfillment.ShipmentDelivered:
		return []string{e.ShipmentID}
	case *fulfillment.DeliveryFailed:
		return []string{e.ShipmentID}
	case *fulfillment.ShipmentLost:
		return []string{e.ShipmentID}
	case *fulfillment.ShipmentCancelled:
		return []string{e.ShipmentID}
	case *fulfillment.ReturnAuthorized:
		return []string{e.ShipmentID}
	case *fulfillment.ReturnReceived:
		return []string{e.ShipmentID}
	}
	return nil
}

// ShipmentsForOrder returns tenant's shipments of an order in split order
// (by shipment ID).
func ShipmentsForOrder(ctx context.Context, db *projections.DB, tenant, orderID string) ([]ShipmentRow, error) {
	return projections.Query(ctx, db, shipmentsSpec, `WHERE tenant = $1 AND order_id = $2 ORDER BY shipment_id`, tenant, orderID)
}

// GetShipment returns tenant's shipment id, or projections.ErrNotFound.
func GetShipment(ctx context.Context, db *projections.DB, tenant, id string) (ShipmentRow, error) {
	rows, err := projections.Query(ctx, db, shipmentsSpec, `WHERE tenant = $1 AND shipment_id = $2`, tenant, id)
	if err != nil {
		return ShipmentRow{}, err
	}
	if len(rows) == 0 {
		return ShipmentRow{}, fmt.Errorf("shipment %s: %w", id, projections.ErrNotFound)
	}
	return rows[0], nil
}
