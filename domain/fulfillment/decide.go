package fulfillment

import (
	"fmt"
	"time"

	"github.com/livecore/livecore/domain/event"
)

// Split splits the order into shipments. Each needs a unique ID
// (ErrDuplicateShipment), a location (ErrInvalidInput), and at least one line
// (ErrEmptyShipment) with a positive line number, a SKU and a positive
// quantity (ErrInvalidInput, ErrInvalidQuantity), each line once per
// shipment (ErrDuplicateLine). A line may be spread over several shipments.
// Splitting twice is ErrAlreadySplit.
func (f *Fulfillment) Split(orderID string, shipments []PlannedShipment, now time.Time) ([]event.Event, error) {
	if f.split {
		return nil, fmt.Errorf("split %s: %w", f.orderID, ErrAlreadySplit)
	}
	switch {
	case orderID == "":
		return nil, fmt.Errorf("split: %w: order ID required", ErrInvalidInput)
	case len(shipments) == 0:
		return nil, fmt.Errorf("split %s: %w", orderID, ErrNoShipments)
	}
	ids := make(map[string]bool, len(shipments))
	out := make([]PlannedShipment, len(shipments))
	for i, s := range shipments {
		switch {
		case s.ID == "":
			return nil, fmt.Errorf("split %s: shipment %d: %w: ID required", orderID, i+1, ErrInvalidInput)
		case ids[s.ID]:
			return nil, fmt.Errorf("split %s: %w: %s", orderID, ErrDuplicateShipment, s.ID)
		case s.Location.IsZero():
			return nil, fmt.Errorf("split %s: shipment %s: %w: location required", orderID, s.ID, ErrInvalidInput)
		case len(s.Lines) == 0:
			return nil, fmt.Errorf("split %s: shipment %s: %w", orderID, s.ID, ErrEmptyShipment)
		}
		ids[s.ID] = true
		lines := make(map[int]bool, len(s.Lines))
		for _, l := range s.Lines {
			switch {
			case l.Line < 1 || l.SKU == "":
				return nil, fmt.Errorf("split %s: shipment %s: %w: line %d SKU %q", orderID, s.ID, ErrInvalidInput, l.Line, l.SKU)
			case l.Quantity <= 0:
				return nil, fmt.Errorf("split %s: shipment %s: line %d: %w: %d", orderID, s.ID, l.Line, ErrInvalidQuantity, l.Quantity)
			case lines[l.Line]:
				return nil, fmt.Errorf("split %s: shipment %s: %w: %d", orderID, s.ID, ErrDuplicateLine, l.Line)
			}
			lines[l.Line] = true
		}
		out[i] = PlannedShipment{ID: s.ID, Location: s.Location, Lines: append([]Line(nil), s.Lines...)}
	}
	return []event.Event{&OrderSplit{OrderID: orderID, Shipments: out, At: now}}, nil
}

// shipment returns the shipment id if its status is one of allowed:
// ErrNotSplit, ErrUnknownShipment or a *TransitionError otherwise.
func (f *Fulfillment) shipment(cmd, id string, allowed ...ShipmentStatus) (*shipment, error) {
	if !f.split {
		return nil, fmt.Errorf("%s: %w", cmd, ErrNotSplit)
	}
	s := f.shipments[id]
	if s == nil {
		return nil, fmt.Errorf("%s %s: %w: %q", cmd, f.orderID, ErrUnknownShipment, id)
	}
	for _, st := range allowed {
		if s.status == st {
			return s, nil
		}
	}
	return nil, &TransitionError{Shipment: id, From: s.status, Command: cmd}
}

// Pick records that a Planned shipment was picked.
func (f *Fulfillment) Pick(shipmentID string, now time.Time) ([]event.Event, error) {
	if _, err := f.shipment("pick", shipmentID, StatusPlanned); err != nil {
		return nil, err
	}
	return []event.Event{&ShipmentPicked{OrderID: f.orderID, ShipmentID: shipmentID, At: now}}, nil
}

// Pack records that a Picked shipment was packed.
func (f *Fulfillment) Pack(shipmentID string, now time.Time) ([]event.Event, error) {
	if _, err := f.shipment("pack", shipmentID, StatusPicked); err != nil {
		return nil, err
	}
	return []event.Event{&ShipmentPacked{OrderID: f.orderID, ShipmentID: shipmentID, At: now}}, nil
}

// Ship records that the carrier took a Packed shipment; carrier and tracking
// number are required (ErrInvalidInput).
func (f *Fulfillment) Ship(shipmentID, carrier, trackingNumber string, now time.Time) ([]event.Event, error) {
	if _, err := f.shipment("ship", shipmentID, StatusPacked); err != nil {
		return nil, err
	}
	if carrier == "" || trackingNumber == "" {
		return nil, fmt.Errorf("ship %s: %w: carrier and tracking number required", shipmentID, ErrInvalidInput)
	}
	return []event.Event{&ShipmentShipped{OrderID: f.orderID, ShipmentID: shipmentID, Carrier: carrier, TrackingNumber: trackingNumber, At: now}}, nil
}

// Deliver records that a Shipped shipment was delivered.
func (f *Fulfillment) Deliver(shipmentID string, now time.Time) ([]event.Event, error) {
	if _, err := f.shipment("deliver", shipmentID, StatusShipped); err != nil {
		return nil, err
	}
	return []event.Event{&ShipmentDelivered{OrderID: f.orderID, ShipmentID: shipmentID, At: now}}, nil
}

// FailDelivery records that a Shipped shipment could not be delivered; a
// reason is required.
func (f *Fulfillment) FailDelivery(shipmentID, reason string, now time.Time) ([]event.Event, error) {
	if _, err := f.shipment("fail delivery", shipmentID, StatusShipped); err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, fmt.Errorf("fail delivery %s: %w: reason required", shipmentID, ErrInvalidInput)
	}
	return []event.Event{&DeliveryFailed{OrderID: f.orderID, ShipmentID: shipmentID, Reason: reason, At: now}}, nil
}

// ReportLost records that the carrier lost a Shipped shipment.
func (f *Fulfillment) ReportLost(shipmentID string, now time.Time) ([]event.Event, error) {
	if _, err := f.shipment("report lost", shipmentID, StatusShipped); err != nil {
		return nil, err
	}
	return []event.Event{&ShipmentLost{OrderID: f.orderID, ShipmentID: shipmentID, At: now}}, nil
}

// CancelShipment calls off a shipment that has not left (Planned, Picked or
// Packed); a reason is required.
func (f *Fulfillment) CancelShipment(shipmentID, reason string, now time.Time) ([]event.Event, error) {
	if _, err := f.shipment("cancel shipment", shipmentID, StatusPlanned, StatusPicked, StatusPacked); err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, fmt.Errorf("cancel shipment %s: %w: reason required", shipmentID, ErrInvalidInput)
	}
	return []event.Event{&ShipmentCancelled{OrderID: f.orderID, ShipmentID: shipmentID, Reason: reason, At: now}}, nil
}

// checkLines validates return lines against limit: not empty, lines of the
// shipment (ErrUnknownLine), once each (ErrDuplicateLine), positive
// (ErrInvalidQuantity), at most limit (exceed).
func checkLines(lines []LineQuantity, limit func(line int) (int64, bool), exceed error) error {
	if len(lines) == 0 {
		return fmt.Errorf("%w: no lines", ErrInvalidInput)
	}
	seen := make(map[int]bool, len(lines))
	for _, lq := range lines {
		max, ok := limit(lq.Line)
		switch {
		case !ok:
			return fmt.Errorf("%w: %d", ErrUnknownLine, lq.Line)
		case seen[lq.Line]:
			return fmt.Errorf("%w: %d", ErrDuplicateLine, lq.Line)
		case lq.Quantity <= 0:
			return fmt.Errorf("line %d: %w: %d", lq.Line, ErrInvalidQuantity, lq.Quantity)
		case lq.Quantity > max:
			return fmt.Errorf("line %d: %w: %d > %d", lq.Line, exceed, lq.Quantity, max)
		}
		seen[lq.Line] = true
	}
	return nil
}

// AuthorizeReturn lets the customer send back delivered quantities of a
// Delivered shipment: returnID new (ErrDuplicateReturn), a reason, and per
// line at most the delivered quantity not already authorized or returned
// (ErrReturnExceedsShipped; see checkLines).
func (f *Fulfillment) AuthorizeReturn(returnID, shipmentID string, lines []LineQuantity, reason string, now time.Time) ([]event.Event, error) {
	s, err := f.shipment("authorize return", shipmentID, StatusDelivered)
	if err != nil {
		return nil, err
	}
	switch {
	case returnID == "":
		return nil, fmt.Errorf("authorize return %s: %w: return ID required", shipmentID, ErrInvalidInput)
	case reason == "":
		return nil, fmt.Errorf("authorize return %s: %w: reason required", shipmentID, ErrInvalidInput)
	}
	if _, dup := f.returns[returnID]; dup {
		return nil, fmt.Errorf("authorize return %s: %w: %s", shipmentID, ErrDuplicateReturn, returnID)
	}
	returnable := func(line int) (int64, bool) {
		for _, l := range s.lines {
			if l.Line == line {
				return l.Quantity - s.returning[line] - s.returned[line], true
			}
		}
		return 0, false
	}
	if err := checkLines(lines, returnable, ErrReturnExceedsShipped); err != nil {
		return nil, fmt.Errorf("authorize return %s: %w", shipmentID, err)
	}
	return []event.Event{&ReturnAuthorized{OrderID: f.orderID, ReturnID: returnID, ShipmentID: shipmentID, Lines: append([]LineQuantity(nil), lines...), Reason: reason, At: now}}, nil
}

// ReceiveReturn records what arrived for an authorized return (per line at
// most the authorized quantity: ErrReceiptExceedsReturn) and closes it.
// Unknown returns are ErrUnknownReturn, received ones ErrReturnAlreadyClosed.
func (f *Fulfillment) ReceiveReturn(returnID string, lines []LineQuantity, now time.Time) ([]event.Event, error) {
	if !f.split {
		return nil, fmt.Errorf("receive return: %w", ErrNotSplit)
	}
	rs := f.returns[returnID]
	switch {
	case rs == nil:
		return nil, fmt.Errorf("receive return %s: %w: %q", f.orderID, ErrUnknownReturn, returnID)
	case rs.received:
		return nil, fmt.Errorf("receive return %s: %w: %s", f.orderID, ErrReturnAlreadyClosed, returnID)
	}
	authorized := func(line int) (int64, bool) {
		q, ok := rs.lines[line]
		return q, ok
	}
	if err := checkLines(lines, authorized, ErrReceiptExceedsReturn); err != nil {
		return nil, fmt.Errorf("receive return %s: %w", returnID, err)
	}
	return []event.Event{&ReturnReceived{OrderID: f.orderID, ReturnID: returnID, ShipmentID: rs.shipmentID, Lines: append([]LineQuantity(nil), lines...), At: now}}, nil
}
