package steps

import (
	"context"
	"time"

	"github.com/livecore/livecore/domain/event"
)

// TypeAlertRaised is the persisted name of AlertRaised.
const TypeAlertRaised = "saga.alert_raised.v1"

// AlertRaised: a saga met something a person must look at (an
// authorization about to lapse with goods unshipped, a capture refused
// after dispatch). It is stored in the order's alert stream,
// AlertStreamID(orderID), so audits and read models see it next to the
// money events it explains.
type AlertRaised struct {
	OrderID string    `json:"order_id"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// EventType is "saga.alert_raised.v1".
func (*AlertRaised) EventType() string { return TypeAlertRaised }

// AlertStreamID is the stream of an order's saga alerts: "alert-"+orderID.
func AlertStreamID(orderID string) string { return "alert-" + orderID }

// RegisterEvents adds the sagas' own event types to r.
func RegisterEvents(r *event.Registry) {
	r.Register(func() event.Event { return &AlertRaised{} })
}

// alerts is the (stateless) aggregate of an alert stream.
type alerts struct{}

func (*alerts) Apply(event.Event) {}

// Alert logs an alert at error level and records it once per order and
// kind (command ID "order/<id>/alert/<kind>"). A registry without
// AlertRaised (RegisterEvents not called at wiring) gets the log line only:
// the store refuses types it cannot decode.
func Alert(ctx context.Context, p Ports, orderID, kind, message string, at time.Time, md event.Metadata) error {
	p.log().ErrorContext(ctx, "saga alert", "order", orderID, "kind", kind, "message", message)
	if !p.Registry.Known(TypeAlertRaised) {
		return nil
	}
	_, err := Exec(ctx, p, AlertStreamID(orderID), func() *alerts { return &alerts{} }, "order/"+orderID+"/alert/"+kind, md,
		func(*alerts) ([]event.Event, error) {
			return []event.Event{&AlertRaised{OrderID: orderID, Kind: kind, Message: message, At: at.UTC()}}, nil
		})
	return err
}
