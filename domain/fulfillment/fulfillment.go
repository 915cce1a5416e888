// Package fulfillment is the fulfillment aggregate of one order: the order's
// lines split into shipments (one location each) and each shipment's way to
// the customer and, for returns, back.
//
// # Shipment state machine
//
//	(none) ──Split──► Planned ──Pick──► Picked ──Pack──► Packed ──Ship──► Shipped ──Deliver──► Delivered
//	Planned | Picked | Packed ──CancelShipment──► Cancelled
//	Shipped ──FailDelivery──► Failed
//	Shipped ──ReportLost────► Lost
//
// Returns belong to delivered shipments: AuthorizeReturn (Delivered, at most
// the delivered quantity not already authorized) then ReceiveReturn (at most
// the authorized quantity), which closes the return and feeds the refund.
// Any other command in a status is a *TransitionError
// (ErrIllegalTransition); commands before Split return ErrNotSplit.
//
// Decisions are methods that return events and never change the
// Fulfillment; Apply is the only mutator. No IO, no clock: times come in.
package fulfillment

import (
	"sort"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/inventory"
)

// Fulfillment is one order's fulfillment. The zero Fulfillment is not yet
// split, ready for Split or for folding its stream with Apply. It is not
// safe for concurrent use.
type Fulfillment struct {
	orderID   string
	split     bool
	shipments map[string]*shipment
	order     []string // shipment IDs in split order
	returns   map[string]*returnState
	updatedAt time.Time
}

type shipment struct {
	id             string
	location       inventory.Location
	lines          []Line
	status         ShipmentStatus
	carrier        string
	trackingNumber string
	reason         string        // of failure or cancellation
	returning      map[int]int64 // authorized, not yet received, by order line
	returned       map[int]int64 // received, by order line
}

type returnState struct {
	shipmentID string
	lines      map[int]int64
	received   bool
}

// Apply evolves the fulfillment by one event. It never fails: events are
// facts. Events of other aggregates are ignored.
func (f *Fulfillment) Apply(e event.Event) {
	switch e := e.(type) {
	case *OrderSplit:
		f.orderID, f.split = e.OrderID, true
		f.shipments = make(map[string]*shipment, len(e.Shipments))
		f.returns = map[string]*returnState{}
		for _, ps := range e.Shipments {
			f.shipments[ps.ID] = &shipment{
				id: ps.ID, location: ps.Location, lines: append([]Line(nil), ps.Lines...), status: StatusPlanned,
				returning: map[int]int64{}, returned: map[int]int64{},
			}
			f.order = append(f.order, ps.ID)
		}
		f.updatedAt = e.At
	case *ShipmentPicked:
		f.move(e.ShipmentID, StatusPicked, e.At)
	case *ShipmentPacked:
		f.move(e.ShipmentID, StatusPacked, e.At)
	case *ShipmentShipped:
		if s := f.move(e.ShipmentID, StatusShipped, e.At); s != nil {
			s.carrier, s.trackingNumber = e.Carrier, e.TrackingNumber
		}
	case *ShipmentDelivered:
		f.move(e.ShipmentID, StatusDelivered, e.At)
	case *DeliveryFailed:
		if s := f.move(e.ShipmentID, StatusFailed, e.At); s != nil {
			s.reason = e.Reason
		}
	case *ShipmentLost:
		f.move(e.ShipmentID, StatusLost, e.At)
	case *ShipmentCancelled:
		if s := f.move(e.ShipmentID, StatusCancelled, e.At); s != nil {
			s.reason = e.Reason
		}
	case *ReturnAuthorized:
		rs := &returnState{shipmentID: e.ShipmentID, lines: make(map[int]int64, len(e.Lines))}
		s := f.shipments[e.ShipmentID]
		for _, lq := range e.Lines {
			rs.lines[lq.Line] += lq.Quantity
			if s != nil {
				s.returning[lq.Line] += lq.Quantity
			}
		}
		f.returns[e.ReturnID] = rs
		f.updatedAt = e.At
	case *ReturnReceived:
		s := f.shipments[e.ShipmentID]
		if rs := f.returns[e.ReturnID]; rs != nil && !rs.received {
			rs.received = true
			for line, q := range rs.lines {
				if s != nil {
					s.returning[line] -= q
				}
			}
		}
		for _, lq := range e.Lines {
			if s != nil {
				s.returned[lq.Line] += lq.Quantity
			}
		}
		f.updatedAt = e.At
	}
}

func (f *Fulfillment) move(id string, to ShipmentStatus, at time.Time) *shipment {
	s := f.shipments[id]
	if s != nil {
		s.status = to
	}
	f.updatedAt = at
	return s
}

// OrderID is the order being fulfilled ("" before Split).
func (f *Fulfillment) OrderID() string { return f.orderID }

// IsSplit reports whether the order was split into shipments.
func (f *Fulfillment) IsSplit() bool { return f.split }

// ShipmentView describes one shipment.
type ShipmentView struct {
	ID             string
	Location       inventory.Location
	Lines          []Line
	Status         ShipmentStatus
	Carrier        string
	TrackingNumber string
	Reason         string
	// Returning and Returned are quantities by order line: authorized and
	// not yet received, and received.
	Returning, Returned map[int]int64
}

// Shipment returns one shipment.
func (f *Fulfillment) Shipment(id string) (ShipmentView, bool) {
	s := f.shipments[id]
	if s == nil {
		return ShipmentView{}, false
	}
	v := ShipmentView{
		ID: s.id, Location: s.location, Lines: append([]Line(nil), s.lines...), Status: s.status,
		Carrier: s.carrier, TrackingNumber: s.trackingNumber, Reason: s.reason,
		Returning: map[int]int64{}, Returned: map[int]int64{},
	}
	for l, q := range s.returning {
		if q != 0 {
			v.Returning[l] = q
		}
	}
	for l, q := range s.returned {
		v.Returned[l] = q
	}
	return v, true
}

// Shipments returns every shipment in split order.
func (f *Fulfillment) Shipments() []ShipmentView {
	out := make([]ShipmentView, 0, len(f.order))
	for _, id := range f.order {
		v, _ := f.Shipment(id)
		out = append(out, v)
	}
	return out
}

// ReturnView describes one return.
type ReturnView struct {
	ID         string
	ShipmentID string
	Lines      []LineQuantity // authorized, by line number
	Received   bool
}

// Returns lists the returns by ID.
func (f *Fulfillment) Returns() []ReturnView {
	out := make([]ReturnView, 0, len(f.returns))
	for id, rs := range f.returns {
		v := ReturnView{ID: id, ShipmentID: rs.shipmentID, Received: rs.received}
		for l, q := range rs.lines {
			v.Lines = append(v.Lines, LineQuantity{Line: l, Quantity: q})
		}
		sort.Slice(v.Lines, func(i, j int) bool { return v.Lines[i].Line < v.Lines[j].Line })
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// UpdatedAt is the time of the last event.
func (f *Fulfillment) UpdatedAt() time.Time { return f.updatedAt }
