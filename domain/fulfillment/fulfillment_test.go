package fulfillment

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/inventory"
)

var (
	t0  = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	ams = inventory.MustLocation("ams-1")
	rtm = inventory.MustLocation("rtm-1")
)

var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.Comparer(func(a, b inventory.Location) bool { return a == b }),
	cmp.AllowUnexported(Fulfillment{}, shipment{}, returnState{}, ShipmentStatus{}),
	cmpopts.EquateEmpty(),
}

type testCase struct {
	name  string
	given []event.Event
	when  func(f *Fulfillment) ([]event.Event, error)
	then  []event.Event
	err   error
	after func(t *testing.T, f *Fulfillment)
}

func fold(events ...[]event.Event) *Fulfillment {
	var f Fulfillment
	for _, es := range events {
		for _, e := range es {
			f.Apply(e)
		}
	}
	return &f
}

func join(parts ...[]event.Event) []event.Event {
	var out []event.Event
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func runCases(t *testing.T, cases []testCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := fold(tc.given)
			got, err := tc.when(f)
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Fatalf("error = %v, want %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.then, got, cmpOpts...); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(fold(tc.given), f, cmpOpts...); diff != "" {
				t.Errorf("the decision changed the fulfillment (-before +after):\n%s", diff)
			}
			if tc.after != nil {
				tc.after(t, fold(tc.given, got))
			}
		})
	}
}

func plan() []PlannedShipment {
	return []PlannedShipment{
		{ID: "s1", Location: ams, Lines: []Line{{Line: 1, SKU: "SKU-A", Quantity: 2}}},
		{ID: "s2", Location: rtm, Lines: []Line{{Line: 2, SKU: "SKU-B", Quantity: 1}, {Line: 1, SKU: "SKU-A", Quantity: 1}}},
	}
}

func status(f *Fulfillment, id string) ShipmentStatus {
	s, _ := f.Shipment(id)
	return s.Status
}

func wantStatus(id string, st ShipmentStatus) func(*testing.T, *Fulfillment) {
	return func(t *testing.T, f *Fulfillment) {
		t.Helper()
		if got := status(f, id); got != st {
			t.Errorf("shipment %s status %s, want %s", id, got, st)
		}
	}
}

var (
	evSplit     = []event.Event{&OrderSplit{OrderID: "o1", Shipments: plan(), At: t0}}
	evPicked    = []event.Event{&ShipmentPicked{OrderID: "o1", ShipmentID: "s1", At: t0}}
	evPacked    = []event.Event{&ShipmentPacked{OrderID: "o1", ShipmentID: "s1", At: t0}}
	evShipped   = []event.Event{&ShipmentShipped{OrderID: "o1", ShipmentID: "s1", Carrier: "DHL", TrackingNumber: "JD0001", At: t0}}
	evDelivered = []event.Event{&ShipmentDelivered{OrderID: "o1", ShipmentID: "s1", At: t0}}
	evFailed    = []event.Event{&DeliveryFailed{OrderID: "o1", ShipmentID: "s1", Reason: "address unknown", At: t0}}
	evLost      = []event.Event{&ShipmentLost{OrderID: "o1", ShipmentID: "s1", At: t0}}
	evCancelled = []event.Event{&ShipmentCancelled{OrderID: "o1", ShipmentID: "s1", Reason: "order cancelled", At: t0}}

	// Shipment s1 in each status.
	sPlanned   = evSplit
	sPicked    = join(sPlanned, evPicked)
	sPacked    = join(sPicked, evPacked)
	sShipped   = join(sPacked, evShipped)
	sDelivered = join(sShipped, evDelivered)
	sFailed    = join(sShipped, evFailed)
	sLost      = join(sShipped, evLost)
	sCancelled = join(sPlanned, evCancelled)
)

var allStates = []struct {
	status ShipmentStatus
	events []event.Event
}{
	{StatusPlanned, sPlanned}, {StatusPicked, sPicked}, {StatusPacked, sPacked}, {StatusShipped, sShipped},
	{StatusDelivered, sDelivered}, {StatusFailed, sFailed}, {StatusLost, sLost}, {StatusCancelled, sCancelled},
}

// illegal returns a case per status of s1 not in allowed (ErrIllegalTransition),
// one before Split (ErrNotSplit) and one for an unknown shipment.
func illegal(cmd string, when func(f *Fulfillment, shipmentID string) ([]event.Event, error), allowed ...ShipmentStatus) []testCase {
	out := []testCase{
		{name: cmd + " before split", when: func(f *Fulfillment) ([]event.Event, error) { return when(f, "s1") }, err: ErrNotSplit},
		{name: cmd + " unknown shipment", given: sPlanned, when: func(f *Fulfillment) ([]event.Event, error) { return when(f, "s9") }, err: ErrUnknownShipment},
	}
outer:
	for _, s := range allStates {
		for _, a := range allowed {
			if s.status == a {
				continue outer
			}
		}
		out = append(out, testCase{name: cmd + " illegal in " + s.status.String(), given: s.events,
			when: func(f *Fulfillment) ([]event.Event, error) { return when(f, "s1") }, err: ErrIllegalTransition})
	}
	return out
}

func TestSplit(t *testing.T) {
	split := func(order string, ss []PlannedShipment) func(*Fulfillment) ([]event.Event, error) {
		return func(f *Fulfillment) ([]event.Event, error) { return f.Split(order, ss, t0) }
	}
	with := func(mod func(ss []PlannedShipment) []PlannedShipment) func(*Fulfillment) ([]event.Event, error) {
		return split("o1", mod(plan()))
	}
	runCases(t, []testCase{
		{name: "two locations", when: split("o1", plan()), then: evSplit, after: func(t *testing.T, f *Fulfillment) {
			ss := f.Shipments()
			if !f.IsSplit() || f.OrderID() != "o1" || len(ss) != 2 || ss[0].ID != "s1" || ss[1].Location != rtm || ss[1].Status != StatusPlanned {
				t.Errorf("shipments %+v", ss)
			}
		}},
		{name: "split twice", given: sPlanned, when: split("o1", plan()), err: ErrAlreadySplit},
		{name: "order ID required", when: split("", plan()), err: ErrInvalidInput},
		{name: "no shipments", when: split("o1", nil), err: ErrNoShipments},
		{name: "shipment ID required", when: with(func(ss []PlannedShipment) []PlannedShipment { ss[1].ID = ""; return ss }), err: ErrInvalidInput},
		{name: "shipment ID twice", when: with(func(ss []PlannedShipment) []PlannedShipment { ss[1].ID = "s1"; return ss }), err: ErrDuplicateShipment},
		{name: "location required", when: with(func(ss []PlannedShipment) []PlannedShipment { ss[0].Location = inventory.Location{}; return ss }), err: ErrInvalidInput},
		{name: "empty shipment", when: with(func(ss []PlannedShipment) []PlannedShipment { ss[0].Lines = nil; return ss }), err: ErrEmptyShipment},
		{name: "line number required", when: with(func(ss []PlannedShipment) []PlannedShipment { ss[0].Lines[0].Line = 0; return ss }), err: ErrInvalidInput},
		{name: "SKU required", when: with(func(ss []PlannedShipment) []PlannedShipment { ss[0].Lines[0].SKU = ""; return ss }), err: ErrInvalidInput},
		{name: "zero quantity", when: with(func(ss []PlannedShipment) []PlannedShipment { ss[0].Lines[0].Quantity = 0; return ss }), err: ErrInvalidQuantity},
		{name: "line twice in a shipment", when: with(func(ss []PlannedShipment) []PlannedShipment { ss[1].Lines[1].Line = 2; return ss }), err: ErrDuplicateLine},
	})
}

func TestPick(t *testing.T) {
	pick := func(f *Fulfillment, id string) ([]event.Event, error) { return f.Pick(id, t0) }
	cases := []testCase{
		{name: "planned", given: sPlanned, when: func(f *Fulfillment) ([]event.Event, error) { return pick(f, "s1") }, then: evPicked, after: wantStatus("s1", StatusPicked)},
		{name: "other shipment unaffected", given: sPicked, when: func(f *Fulfillment) ([]event.Event, error) { return pick(f, "s2") },
			then: []event.Event{&ShipmentPicked{OrderID: "o1", ShipmentID: "s2", At: t0}}, after: wantStatus("s1", StatusPicked)},
	}
	runCases(t, append(cases, illegal("pick", pick, StatusPlanned)...))
}

func TestPack(t *testing.T) {
	pack := func(f *Fulfillment, id string) ([]event.Event, error) { return f.Pack(id, t0) }
	cases := []testCase{
		{name: "picked", given: sPicked, when: func(f *Fulfillment) ([]event.Event, error) { return pack(f, "s1") }, then: evPacked, after: wantStatus("s1", StatusPacked)},
	}
	runCases(t, append(cases, illegal("pack", pack, StatusPicked)...))
}

func TestShip(t *testing.T) {
	ship := func(f *Fulfillment, id string) ([]event.Event, error) { return f.Ship(id, "DHL", "JD0001", t0) }
	cases := []testCase{
		{name: "packed", given: sPacked, when: func(f *Fulfillment) ([]event.Event, error) { return ship(f, "s1") }, then: evShipped, after: func(t *testing.T, f *Fulfillment) {
			s, _ := f.Shipment("s1")
			if s.Status != StatusShipped || s.Carrier != "DHL" || s.TrackingNumber != "JD0001" {
				t.Errorf("shipment %+v", s)
			}
		}},
		{name: "carrier required", given: sPacked, when: func(f *Fulfillment) ([]event.Event, error) { return f.Ship("s1", "", "JD0001", t0) }, err: ErrInvalidInput},
		{name: "tracking number required", given: sPacked, when: func(f *Fulfillment) ([]event.Event, error) { return f.Ship("s1", "DHL", "", t0) }, err: ErrInvalidInput},
	}
	runCases(t, append(cases, illegal("ship", ship, StatusPacked)...))
}

func TestDeliver(t *testing.T) {
	deliver := func(f *Fulfillment, id string) ([]event.Event, error) { return f.Deliver(id, t0) }
	cases := []testCase{
		{name: "shipped", given: sShipped, when: func(f *Fulfillment) ([]event.Event, error) { return deliver(f, "s1") }, then: evDelivered, after: wantStatus("s1", StatusDelivered)},
	}
	runCases(t, append(cases, illegal("deliver", deliver, StatusShipped)...))
}

func TestFailDelivery(t *testing.T) {
	fail := func(f *Fulfillment, id string) ([]event.Event, error) {
		return f.FailDelivery(id, "address unknown", t0)
	}
	cases := []testCase{
		{name: "shipped", given: sShipped, when: func(f *Fulfillment) ([]event.Event, error) { return fail(f, "s1") }, then: evFailed, after: func(t *testing.T, f *Fulfillment) {
			if s, _ := f.Shipment("s1"); s.Status != StatusFailed || s.Reason != "address unknown" {
				t.Errorf("shipment %+v", s)
			}
		}},
		{name: "reason required", given: sShipped, when: func(f *Fulfillment) ([]event.Event, error) { return f.FailDelivery("s1", "", t0) }, err: ErrInvalidInput},
	}
	runCases(t, append(cases, illegal("fail delivery", fail, StatusShipped)...))
}

func TestReportLost(t *testing.T) {
	lose := func(f *Fulfillment, id string) ([]event.Event, error) { return f.ReportLost(id, t0) }
	cases := []testCase{
		{name: "shipped", given: sShipped, when: func(f *Fulfillment) ([]event.Event, error) { return lose(f, "s1") }, then: evLost, after: wantStatus("s1", StatusLost)},
	}
	runCases(t, append(cases, illegal("report lost", lose, StatusShipped)...))
}

func TestCancelShipment(t *testing.T) {
	cancel := func(f *Fulfillment, id string) ([]event.Event, error) {
		return f.CancelShipment(id, "order cancelled", t0)
	}
	cancelled := func(given []event.Event) testCase {
		return testCase{name: "from " + status(fold(given), "s1").String(), given: given,
			when: func(f *Fulfillment) ([]event.Event, error) { return cancel(f, "s1") }, then: evCancelled, after: wantStatus("s1", StatusCancelled)}
	}
	cases := []testCase{
		cancelled(sPlanned), cancelled(sPicked), cancelled(sPacked),
		{name: "reason required", given: sPlanned, when: func(f *Fulfillment) ([]event.Event, error) { return f.CancelShipment("s1", "", t0) }, err: ErrInvalidInput},
	}
	runCases(t, append(cases, illegal("cancel shipment", cancel, StatusPlanned, StatusPicked, StatusPacked)...))
}

func TestAuthorizeReturn(t *testing.T) {
	authorize := func(id string, lq ...LineQuantity) func(*Fulfillment) ([]event.Event, error) {
		return func(f *Fulfillment) ([]event.Event, error) { return f.AuthorizeReturn(id, "s1", lq, "too small", t0) }
	}
	authorized := func(id string, lq ...LineQuantity) []event.Event {
		return []event.Event{&ReturnAuthorized{OrderID: "o1", ReturnID: id, ShipmentID: "s1", Lines: lq, Reason: "too small", At: t0}}
	}
	open := join(sDelivered, authorized("r1", LineQuantity{1, 1}))
	cases := []testCase{
		{name: "delivered", given: sDelivered, when: authorize("r1", LineQuantity{1, 1}), then: authorized("r1", LineQuantity{1, 1}), after: func(t *testing.T, f *Fulfillment) {
			if s, _ := f.Shipment("s1"); s.Returning[1] != 1 || s.Status != StatusDelivered {
				t.Errorf("shipment %+v", s)
			}
		}},
		{name: "the rest", given: open, when: authorize("r2", LineQuantity{1, 1}), then: authorized("r2", LineQuantity{1, 1})},
		{name: "more than delivered minus open returns", given: open, when: authorize("r2", LineQuantity{1, 2}), err: ErrReturnExceedsShipped},
		{name: "more than delivered", given: sDelivered, when: authorize("r1", LineQuantity{1, 3}), err: ErrReturnExceedsShipped},
		{name: "line not in the shipment", given: sDelivered, when: authorize("r1", LineQuantity{2, 1}), err: ErrUnknownLine},
		{name: "line twice", given: sDelivered, when: authorize("r1", LineQuantity{1, 1}, LineQuantity{1, 1}), err: ErrDuplicateLine},
		{name: "zero quantity", given: sDelivered, when: authorize("r1", LineQuantity{1, 0}), err: ErrInvalidQuantity},
		{name: "no lines", given: sDelivered, when: authorize("r1"), err: ErrInvalidInput},
		{name: "return ID reused", given: open, when: authorize("r1", LineQuantity{1, 1}), err: ErrDuplicateReturn},
		{name: "return ID required", given: sDelivered, when: authorize("", LineQuantity{1, 1}), err: ErrInvalidInput},
		{name: "reason required", given: sDelivered, when: func(f *Fulfillment) ([]event.Event, error) {
			return f.AuthorizeReturn("r1", "s1", []LineQuantity{{1, 1}}, "", t0)
		}, err: ErrInvalidInput},
	}
	auth := func(f *Fulfillment, id string) ([]event.Event, error) {
		return f.AuthorizeReturn("r9", id, []LineQuantity{{1, 1}}, "x", t0)
	}
	runCases(t, append(cases, illegal("authorize return", auth, StatusDelivered)...))
}

func TestReceiveReturn(t *testing.T) {
	recv := func(id string, lq ...LineQuantity) func(*Fulfillment) ([]event.Event, error) {
		return func(f *Fulfillment) ([]event.Event, error) { return f.ReceiveReturn(id, lq, t0) }
	}
	open := join(sDelivered, []event.Event{&ReturnAuthorized{OrderID: "o1", ReturnID: "r1", ShipmentID: "s1", Lines: []LineQuantity{{1, 2}}, Reason: "x", At: t0}})
	received := func(lq ...LineQuantity) []event.Event {
		return []event.Event{&ReturnReceived{OrderID: "o1", ReturnID: "r1", ShipmentID: "s1", Lines: lq, At: t0}}
	}
	runCases(t, []testCase{
		{name: "all of it", given: open, when: recv("r1", LineQuantity{1, 2}), then: received(LineQuantity{1, 2}), after: func(t *testing.T, f *Fulfillment) {
			s, _ := f.Shipment("s1")
			rs := f.Returns()
			if s.Returned[1] != 2 || len(s.Returning) != 0 || len(rs) != 1 || !rs[0].Received {
				t.Errorf("shipment %+v returns %+v", s, rs)
			}
		}},
		{name: "part of it closes the return", given: open, when: recv("r1", LineQuantity{1, 1}), then: received(LineQuantity{1, 1}), after: func(t *testing.T, f *Fulfillment) {
			if _, err := f.AuthorizeReturn("r2", "s1", []LineQuantity{{1, 1}}, "again", t0); err != nil {
				t.Errorf("the unreceived unit should be returnable again: %v", err)
			}
		}},
		{name: "more than authorized", given: open, when: recv("r1", LineQuantity{1, 3}), err: ErrReceiptExceedsReturn},
		{name: "line not in the return", given: open, when: recv("r1", LineQuantity{2, 1}), err: ErrUnknownLine},
		{name: "no lines", given: open, when: recv("r1"), err: ErrInvalidInput},
		{name: "unknown return", given: open, when: recv("r2", LineQuantity{1, 1}), err: ErrUnknownReturn},
		{name: "received twice", given: join(open, received(LineQuantity{1, 2})), when: recv("r1", LineQuantity{1, 1}), err: ErrReturnAlreadyClosed},
		{name: "before split", when: recv("r1", LineQuantity{1, 1}), err: ErrNotSplit},
	})
}

func TestTransitionErrorData(t *testing.T) {
	_, err := fold(sDelivered).Pick("s1", t0)
	var te *TransitionError
	if !errors.As(err, &te) || te.From != StatusDelivered || te.Shipment != "s1" || te.Command != "pick" {
		t.Fatalf("%v %+v", err, te)
	}
}

func TestEveryEventRegisteredWithVersionedName(t *testing.T) {
	r := event.NewRegistry()
	Register(r)
	all := join(evSplit, evPicked, evPacked, evShipped, evDelivered, evFailed, evLost, evCancelled, []event.Event{
		&ReturnAuthorized{OrderID: "o1", ReturnID: "r1", ShipmentID: "s1", Lines: []LineQuantity{{1, 1}}, Reason: "x", At: t0},
		&ReturnReceived{OrderID: "o1", ReturnID: "r1", ShipmentID: "s1", Lines: []LineQuantity{{1, 1}}, At: t0},
	})
	seen := map[string]bool{}
	for _, e := range all {
		base, _, err := event.ParseTypeName(e.EventType())
		if err != nil || !strings.HasPrefix(base, "fulfillment.") {
			t.Errorf("%T: type name %q: %v", e, e.EventType(), err)
		}
		typ, _, data, err := r.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := r.Decode(typ, data)
		if err != nil {
			t.Fatal(err)
		}
		if reflect.TypeOf(back) != reflect.TypeOf(e) {
			t.Errorf("%s decodes to %T", typ, back)
		}
		if diff := cmp.Diff(e, back, cmpOpts...); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", typ, diff)
		}
		seen[typ] = true
	}
	if len(seen) != len(r.Names()) {
		t.Errorf("covered %d types, registered %v", len(seen), r.Names())
	}
	if got := StreamID("o1"); got != "fulfillment-o1" || event.ValidateStreamID(got) != nil {
		t.Errorf("StreamID = %q", got)
	}
}

// TestPropertyFoldRoundTrip runs random command sequences and checks that
// returns never exceed deliveries and that the fold equals the fold after an
// Encode -> Decode round trip.
func TestPropertyFoldRoundTrip(t *testing.T) {
	const sequences, steps = 300, 60
	const seed = 20260302
	r := rand.New(rand.NewPCG(seed, 4))
	reg := event.NewRegistry()
	Register(reg)
	var accepted, rejected, total int
	for seq := range sequences {
		f := fold()
		history := []event.Event{}
		es, err := f.Split("o1", plan(), t0)
		if err != nil {
			t.Fatal(err)
		}
		for step := range steps {
			if step > 0 {
				id := []string{"s1", "s2"}[r.IntN(2)]
				lines := []LineQuantity{{Line: 1 + r.IntN(2), Quantity: int64(r.IntN(3))}}
				rid := fmt.Sprint("r", r.IntN(4))
				cmd := r.IntN(10)
				if r.IntN(3) > 0 { // mostly the natural next step
					cmd = map[ShipmentStatus]int{StatusPlanned: 0, StatusPicked: 1, StatusPacked: 2, StatusShipped: 3 + 2*r.IntN(2), StatusDelivered: 7 + r.IntN(3)}[status(f, id)]
				}
				switch cmd {
				case 0:
					es, err = f.Pick(id, t0)
				case 1:
					es, err = f.Pack(id, t0)
				case 2:
					es, err = f.Ship(id, "DHL", "T", t0)
				case 3:
					es, err = f.Deliver(id, t0)
				case 4:
					es, err = f.FailDelivery(id, "x", t0)
				case 5:
					es, err = f.ReportLost(id, t0)
				case 6:
					es, err = f.CancelShipment(id, "x", t0)
				case 7, 8:
					es, err = f.AuthorizeReturn(rid, id, lines, "x", t0)
				default:
					es, err = f.ReceiveReturn(rid, lines, t0)
				}
			}
			if err != nil {
				rejected++
				continue
			}
			accepted++
			for _, e := range es {
				f.Apply(e)
			}
			history = append(history, es...)
			for _, s := range f.Shipments() {
				for _, l := range s.Lines {
					if s.Returning[l.Line]+s.Returned[l.Line] > l.Quantity || s.Returning[l.Line] < 0 {
						t.Fatalf("shipment %s line %d: returning %d + returned %d > %d", s.ID, l.Line, s.Returning[l.Line], s.Returned[l.Line], l.Quantity)
					}
				}
				if (len(s.Returned) > 0 || len(s.Returning) > 0) && s.Status != StatusDelivered {
					t.Fatalf("returns on a %s shipment", s.Status)
				}
			}
		}
		total += len(history)
		var decoded []event.Event
		for _, e := range history {
			typ, _, data, err := reg.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			d, err := reg.Decode(typ, data)
			if err != nil {
				t.Fatal(err)
			}
			decoded = append(decoded, d)
		}
		if diff := cmp.Diff(f, fold(decoded), cmpOpts...); diff != "" {
			t.Fatalf("seq %d: fold vs fold after JSON round trip:\n%s", seq, diff)
		}
	}
	t.Logf("%d sequences x %d random commands (seed %d): %d accepted, %d rejected, %d events; returns <= deliveries, JSON re-fold equal",
		sequences, steps, seed, accepted, rejected, total)
}
