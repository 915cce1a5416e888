package fulfillment

import (
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/money"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/workflows/internal/steps"
	"github.com/livecore/livecore/workflows/refund"
)

// Fulfill sees a confirmed order's parcels to the customer:
//
//  1. Record the split into shipments (one per stock location).
//  2. Until every shipment is settled, wait for the next of:
//     - a carrier update: on dispatch record the shipment (stock committed,
//     lines fulfilled) and capture its amount (capture ID = shipment ID);
//     on delivery record it; on a failed or lost parcel record it and
//     refund what was captured for it (a child refund saga);
//     - a cancellation: call off every parcel that has not left, release
//     its stock and its money;
//     - the authorization about to lapse (ExpiryMargin before it does): do
//     the same for what has not left, and raise an alert.
//  3. Complete the order.
//
// A parcel is never left charged without being delivered: it is either
// delivered, refunded, or was never captured.
func Fulfill(ctx workflow.Context, in Input) (Status, error) {
	in.Options.setDefaults()
	f := newRun(in)
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return f.status(), nil }); err != nil {
		return Status{}, err
	}
	carrier := workflow.GetSignalChannel(ctx, SignalCarrier)
	cancels := workflow.GetSignalChannel(ctx, SignalCancel)

	// 1. The parcels.
	var a *Activities
	if err := steps.Local(ctx, a.SplitOrder, SplitInput{OrderID: in.OrderID, Tenant: in.Tenant, Shipments: in.Shipments, At: workflow.Now(ctx)}).Get(ctx, nil); err != nil {
		return f.status(), err
	}
	if in.Resume {
		var progress []Progress
		if err := steps.Local(ctx, a.LoadProgress, in.OrderID).Get(ctx, &progress); err != nil {
			return f.status(), err
		}
		f.resume(ctx, progress)
	}

	// 2. Until every parcel is settled.
	lapseCtx, stopLapse := workflow.WithCancel(ctx)
	var lapse workflow.Future
	lapsed := in.Payment.ExpiresAt.IsZero() // a hold without expiry never lapses
	if !lapsed {
		lapse = workflow.NewTimer(lapseCtx, in.Payment.ExpiresAt.Add(-in.Options.ExpiryMargin).Sub(workflow.Now(ctx)))
	}
	for !f.settled() {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(carrier, func(c workflow.ReceiveChannel, _ bool) {
			var u CarrierUpdate
			c.Receive(ctx, &u)
			f.onCarrier(ctx, u)
		})
		sel.AddReceive(cancels, func(c workflow.ReceiveChannel, _ bool) {
			var req CancelRequest
			c.Receive(ctx, &req)
			if req.Reason == "" {
				req.Reason = "cancelled"
			}
			f.callOff(ctx, req.Reason)
		})
		if !lapsed {
			sel.AddFuture(lapse, func(workflow.Future) {
				lapsed = true
				f.onLapse(ctx)
			})
		}
		sel.Select(ctx)
	}
	stopLapse()

	// 3. The order.
	if err := steps.Local(ctx, a.CompleteOrder, OrderInput{OrderID: in.OrderID, Tenant: in.Tenant, At: workflow.Now(ctx)}).Get(ctx, nil); err != nil {
		return f.status(), err
	}
	f.done = true
	return f.status(), nil
}

// run is the workflow's state.
type run struct {
	in        Input
	shipments []*parcel
	captured  money.Money
	refunded  money.Money
	released  money.Money
	alerts    []string
	done      bool
}

type parcel struct {
	Shipment
	state    string
	captured bool
	refunded bool
}

func newRun(in Input) *run {
	z := money.Zero(in.Payment.Amount.Currency())
	r := &run{in: in, captured: z, refunded: z, released: z}
	for _, s := range in.Shipments {
		r.shipments = append(r.shipments, &parcel{Shipment: s, state: StatePlanned})
	}
	return r
}

func (r *run) status() Status {
	st := Status{OrderID: r.in.OrderID, Captured: r.captured, Refunded: r.refunded, Released: r.released, Alerts: r.alerts, Done: r.done}
	for _, p := range r.shipments {
		st.Shipments = append(st.Shipments, ShipmentStatus{ID: p.ID, State: p.state, Captured: p.captured, Refunded: p.refunded})
	}
	return st
}

// settled reports whether no parcel can change any more.
func (r *run) settled() bool {
	for _, p := range r.shipments {
		if p.state == StatePlanned || p.state == StateShipped || p.state == StateUncaptured {
			return false
		}
	}
	return true
}

func (r *run) viaPSP() bool { return r.in.Payment.Method == payment.MethodCard }

func (r *run) onCarrier(ctx workflow.Context, u CarrierUpdate) {
	var p *parcel
	for _, s := range r.shipments {
		if s.ID == u.ShipmentID {
			p = s
		}
	}
	log := workflow.GetLogger(ctx)
	if p == nil {
		log.Warn("carrier update for an unknown shipment", "order", r.in.OrderID, "shipment", u.ShipmentID)
		return
	}
	switch u.Event {
	case Dispatched, Delivered, Failed, Lost:
	default:
		log.Warn("unknown carrier event", "order", r.in.OrderID, "event", u.Event)
		return
	}
	if p.state == StatePlanned {
		// A delivery or loss reported first still means it left.
		r.dispatch(ctx, p, u)
	}
	if p.state != StateShipped && p.state != StateUncaptured {
		return // settled, or a repeated report
	}
	switch u.Event {
	case Delivered:
		r.record(ctx, p, u, StateDelivered)
	case Failed, Lost:
		state := StateFailed
		if u.Event == Lost {
			state = StateLost
		}
		r.record(ctx, p, u, state)
		r.refund(ctx, p, string(u.Event))
	}
}

// dispatch records a parcel leaving and captures its amount.
func (r *run) dispatch(ctx workflow.Context, p *parcel, u CarrierUpdate) {
	var a *Activities
	now := workflow.Now(ctx)
	var warnings []string
	err := steps.Local(ctx, a.RecordDispatch, ShipmentInput{
		OrderID: r.in.OrderID, Tenant: r.in.Tenant, Shipment: p.Shipment, Carrier: u.Carrier, TrackingNumber: u.TrackingNumber, At: now,
	}).Get(ctx, &warnings)
	if err != nil {
		r.alert(ctx, "dispatch_not_recorded/"+p.ID, fmt.Sprintf("shipment %s left but could not be recorded: %v", p.ID, err))
	}
	for _, w := range warnings {
		r.alert(ctx, "stock/"+p.ID, w)
	}
	p.state = StateShipped
	capture := CaptureInput{OrderID: r.in.OrderID, Tenant: r.in.Tenant, PaymentID: r.in.Payment.PaymentID, ShipmentID: p.ID, Amount: p.Amount, ViaPSP: r.viaPSP(), At: now}
	if r.viaPSP() {
		err = steps.Provider(ctx, r.in.Options.Steps, a.CaptureShipment, capture).Get(ctx, nil)
	} else {
		err = steps.Local(ctx, a.CaptureShipment, capture).Get(ctx, nil)
	}
	if err != nil {
		p.state = StateUncaptured
		r.alert(ctx, "uncaptured/"+p.ID, fmt.Sprintf("shipment %s left but %s could not be captured: %v", p.ID, p.Amount, err))
		return
	}
	p.captured = true
	r.captured, _ = r.captured.Add(p.Amount)
}

// resume brings the parcels to where the aggregates have them (Input.Resume).
func (r *run) resume(ctx workflow.Context, progress []Progress) {
	for _, pr := range progress {
		var p *parcel
		for _, s := range r.shipments {
			if s.ID == pr.ShipmentID {
				p = s
			}
		}
		if p == nil {
			continue
		}
		u := CarrierUpdate{ShipmentID: p.ID, Event: Dispatched, Carrier: pr.Carrier, TrackingNumber: pr.TrackingNumber, Reason: pr.Reason}
		switch pr.Status {
		case fulfillment.StatusCancelled.String():
			p.state = StateCancelled
		case fulfillment.StatusShipped.String():
			r.dispatch(ctx, p, u)
		case fulfillment.StatusDelivered.String():
			r.dispatch(ctx, p, u)
			p.state = StateDelivered
		case fulfillment.StatusFailed.String(), fulfillment.StatusLost.String():
			r.dispatch(ctx, p, u)
			ev, state := Failed, StateFailed
			if pr.Status == fulfillment.StatusLost.String() {
				ev, state = Lost, StateLost
			}
			p.state = state
			r.refund(ctx, p, string(ev))
		}
	}
}

// record records a delivery or a loss and moves the parcel to state.
func (r *run) record(ctx workflow.Context, p *parcel, u CarrierUpdate, state string) {
	var a *Activities
	var step any = a.RecordLoss
	if state == StateDelivered {
		step = a.RecordDelivery
	}
	err := steps.Local(ctx, step, ShipmentInput{
		OrderID: r.in.OrderID, Tenant: r.in.Tenant, Shipment: p.Shipment, Event: u.Event, Reason: u.Reason, At: workflow.Now(ctx),
	}).Get(ctx, nil)
	if err != nil {
		r.alert(ctx, "carrier_not_recorded/"+p.ID, fmt.Sprintf("shipment %s %s could not be recorded: %v", p.ID, u.Event, err))
	}
	p.state = state
}

// refund gives back what a parcel that never arrived was charged.
func (r *run) refund(ctx workflow.Context, p *parcel, why string) {
	if !p.captured {
		return
	}
	refundID := refund.ShipmentRefundID(p.ID)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            refund.WorkflowID(r.in.OrderID, refundID),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	})
	var res refund.Result
	err := workflow.ExecuteChildWorkflow(cctx, refund.Refund, refund.Input{
		OrderID: r.in.OrderID, Tenant: r.in.Tenant, RefundID: refundID, Amount: p.Amount,
		Reason: "shipment " + p.ID + " " + why, Options: refund.Options{Steps: r.in.Options.Steps},
	}).Get(ctx, &res)
	if err != nil || res.Outcome != refund.OutcomeRefunded {
		r.alert(ctx, "refund/"+p.ID, fmt.Sprintf("shipment %s %s: refund of %s not done: %v %s", p.ID, why, p.Amount, err, res.Reason))
		return
	}
	p.refunded = true
	r.refunded, _ = r.refunded.Add(p.Amount)
}

// callOff cancels every parcel that has not left and releases the rest of
// the hold.
func (r *run) callOff(ctx workflow.Context, reason string) {
	var a *Activities
	var planned []Shipment
	for _, p := range r.shipments {
		if p.state == StatePlanned {
			planned = append(planned, p.Shipment)
		}
	}
	if len(planned) == 0 {
		return
	}
	now := workflow.Now(ctx)
	if err := steps.LocalCompensation(ctx, a.CancelShipments, CancelInput{
		OrderID: r.in.OrderID, Tenant: r.in.Tenant, Shipments: planned, Reason: reason, At: now,
	}).Get(ctx, nil); err != nil {
		r.alert(ctx, "cancel_failed", fmt.Sprintf("calling off %d shipments failed: %v", len(planned), err))
		return
	}
	for _, p := range r.shipments {
		if p.state == StatePlanned {
			p.state = StateCancelled
		}
	}
	var released money.Money
	err := steps.ProviderCompensation(ctx, r.in.Options.Steps, a.ReleaseRemainder, ReleaseInput{
		OrderID: r.in.OrderID, Tenant: r.in.Tenant, PaymentID: r.in.Payment.PaymentID, PlanID: r.in.PlanID, ViaPSP: r.viaPSP(), At: now,
	}).Get(ctx, &released)
	if err != nil {
		r.alert(ctx, "release_failed", fmt.Sprintf("releasing the uncaptured remainder failed: %v", err))
		return
	}
	if released.IsValid() {
		r.released, _ = r.released.Add(released)
	}
}

// onLapse runs ExpiryMargin before the hold lapses: whatever has not left
// by now would no longer be capturable, so it is called off.
func (r *run) onLapse(ctx workflow.Context) {
	var waiting int
	for _, p := range r.shipments {
		if p.state == StatePlanned {
			waiting++
		}
	}
	if waiting == 0 {
		return
	}
	r.callOff(ctx, "authorization expiring")
	r.alert(ctx, "authorization_expiry", fmt.Sprintf("authorization %s expires at %s with %d shipments not dispatched: they were cancelled and %s released",
		r.in.Payment.PaymentID, r.in.Payment.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"), waiting, r.released))
}

// alert logs and records an alert; recording it is best effort.
func (r *run) alert(ctx workflow.Context, kind, msg string) {
	var a *Activities
	r.alerts = append(r.alerts, kind)
	if err := steps.Local(ctx, a.RaiseAlert, AlertInput{OrderID: r.in.OrderID, Tenant: r.in.Tenant, Kind: kind, Message: msg, At: workflow.Now(ctx)}).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("alert not recorded", "order", r.in.OrderID, "kind", kind, "error", err)
	}
}
