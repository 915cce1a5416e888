// Package workflows runs livecore's business processes on Temporal: the
// checkout saga, fulfillment, the BNPL installment schedule and refunds
// (one subpackage each, with api.go, workflows.go, activities.go and
// worker.go), and the saga dispatcher that starts them from the event log.
//
// Temporal drives the processes; the event store stays the record. Every
// step is a domain command whose ID is a business key, and every
// money-moving call carries the same kind of key as its idempotency key, so
// a step retried after a crash, a timeout or a lost answer appends nothing
// new and charges nothing twice.
//
// Wiring (livecore dev, livecore worker):
//
//	reg := event.NewRegistry(); order.Register(reg); ...; workflows.RegisterEvents(reg)
//	w := worker.New(client, workflows.TaskQueue, workflows.WorkerOptions())
//	workflows.Register(w, workflows.Deps{App: svc, Events: store, Registry: reg, PSP: psp, Tokens: tokens})
//	w.Start()
//	d, _ := dispatcher.New(dispatcher.Config{Store: store, Registry: reg, Client: client, Checkpoint: "data/dispatcher.checkpoint"})
//	go d.Run(ctx)
package workflows

import (
	"errors"
	"log/slog"

	"go.temporal.io/sdk/worker"

	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/workflows/bnpl"
	"github.com/livecore/livecore/workflows/checkout"
	"github.com/livecore/livecore/workflows/fulfillment"
	"github.com/livecore/livecore/workflows/internal/steps"
	"github.com/livecore/livecore/workflows/refund"
)

// TaskQueue is the task queue of every livecore workflow and activity.
const TaskQueue = "livecore"

// TokenSource finds the payment token a customer gave for an order. The
// HTTP API stores it when it accepts a checkout; tokens never enter a
// workflow input, so no workflow history holds one.
type TokenSource = steps.TokenSource

// TokenFunc adapts a function to TokenSource.
type TokenFunc = steps.TokenFunc

// AlertRaised is the event a saga records when a person must look
// (AlertStreamID(orderID), type "saga.alert_raised.v1").
type AlertRaised = steps.AlertRaised

// AlertStreamID is the stream of an order's saga alerts: "alert-"+orderID.
func AlertStreamID(orderID string) string { return steps.AlertStreamID(orderID) }

// RegisterEvents adds the sagas' own event types (AlertRaised) to r. Every
// registry that decodes the whole log ($all) needs them.
func RegisterEvents(r *event.Registry) { steps.RegisterEvents(r) }

// Deps are the ports the activities use.
type Deps struct {
	// App runs domain commands. Required.
	App *app.Service
	// Events reads streams directly (a plan's collections). Required: the
	// same store App appends to.
	Events event.StreamReader
	// Registry decodes what Events returns; it must know every domain
	// event type. Required.
	Registry *event.Registry
	// PSP is the payment-service provider. Required.
	PSP payment.Provider
	// Tokens finds the customer's payment token per order. Required.
	Tokens TokenSource
	// Credit backs BNPL credit decisions. Default checkout.FlatCredit{}.
	Credit checkout.CreditBureau
	// Locations are the stock locations, in order of preference. Default
	// DefaultLocations.
	Locations []inventory.Location
	// Logger for activities. Default slog.Default().
	Logger *slog.Logger
}

// DefaultLocations is the single location of a fresh 'livecore dev'.
var DefaultLocations = []inventory.Location{inventory.MustLocation("main")}

func (d *Deps) setDefaults() {
	if d.Credit == nil {
		d.Credit = checkout.FlatCredit{}
	}
	if len(d.Locations) == 0 {
		d.Locations = DefaultLocations
	}
}

// Validate reports a missing required dependency.
func (d Deps) Validate() error {
	err := steps.Check(steps.Ports{App: d.App, Events: d.Events, Registry: d.Registry, PSP: d.PSP})
	if err == nil && d.Tokens == nil {
		err = errors.New("workflows: Tokens required")
	}
	return err
}

// Activities are the activity structs Register wires, for callers that
// register them elsewhere (tests, replayers).
type Activities struct {
	Checkout    *checkout.Activities
	Fulfillment *fulfillment.Activities
	BNPL        *bnpl.Activities
	Refund      *refund.Activities
}

// NewActivities builds the activity structs from deps.
func NewActivities(deps Deps) (Activities, error) {
	deps.setDefaults()
	if err := deps.Validate(); err != nil {
		return Activities{}, err
	}
	ports := steps.Ports{App: deps.App, Events: deps.Events, Registry: deps.Registry, PSP: deps.PSP, Logger: deps.Logger}
	return Activities{
		Checkout:    &checkout.Activities{Ports: ports, Tokens: deps.Tokens, Credit: deps.Credit, Locations: deps.Locations},
		Fulfillment: &fulfillment.Activities{Ports: ports},
		BNPL:        &bnpl.Activities{Ports: ports, Tokens: deps.Tokens},
		Refund:      &refund.Activities{Ports: ports},
	}, nil
}

// Register registers every workflow and activity on w with deps. It fails
// if deps does not Validate.
func Register(w worker.Registry, deps Deps) error {
	acts, err := NewActivities(deps)
	if err != nil {
		return err
	}
	checkout.Register(w, acts.Checkout)
	fulfillment.Register(w, acts.Fulfillment)
	bnpl.Register(w, acts.BNPL)
	refund.Register(w, acts.Refund)
	return nil
}

// RegisterWorkflows registers the workflow functions only (a replayer
// needs nothing else).
func RegisterWorkflows(w worker.WorkflowRegistry) {
	w.RegisterWorkflow(checkout.Checkout)
	w.RegisterWorkflow(fulfillment.Fulfill)
	w.RegisterWorkflow(bnpl.Schedule)
	w.RegisterWorkflow(refund.Refund)
}

// WorkerOptions are the worker settings the sagas were measured with (see
// BenchSagas): enough pollers and slots that local activities and eager
// starts keep the server busy rather than waiting on the worker.
func WorkerOptions() worker.Options {
	return worker.Options{
		MaxConcurrentWorkflowTaskPollers:        4,
		MaxConcurrentActivityTaskPollers:        4,
		MaxConcurrentWorkflowTaskExecutionSize:  256,
		MaxConcurrentLocalActivityExecutionSize: 256,
		MaxConcurrentActivityExecutionSize:      256,
	}
}
