package steps

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Options tune how a saga runs its activities. They travel in workflow
// inputs, so a run replays with the values it started with; zero fields get
// the defaults below (SetDefaults).
type Options struct {
	// ProviderHeartbeat is the heartbeat timeout of payment-provider
	// activities: a worker that dies during a provider call is noticed
	// after it (the call is then retried with the same idempotency key).
	// Default 10s.
	ProviderHeartbeat time.Duration `json:"provider_heartbeat,omitempty"`
	// ProviderRetry is the first retry interval of provider calls (doubling
	// up to a minute). Default 1s.
	ProviderRetry time.Duration `json:"provider_retry,omitempty"`
	// ProviderDeadline bounds all attempts of one provider call in the
	// forward path; after it the saga compensates. Default 30m.
	// Compensations retry for a day.
	ProviderDeadline time.Duration `json:"provider_deadline,omitempty"`
	// LocalProvider runs provider calls as local activities: one workflow
	// task fewer per call, at the price of holding a workflow task open
	// during the call. Both are safe (keys make retries harmless); the
	// default is regular activities, see the package benchmark.
	LocalProvider bool `json:"local_provider,omitempty"`
}

// SetDefaults fills zero fields.
func (o *Options) SetDefaults() {
	if o.ProviderHeartbeat <= 0 {
		o.ProviderHeartbeat = 10 * time.Second
	}
	if o.ProviderRetry <= 0 {
		o.ProviderRetry = time.Second
	}
	if o.ProviderDeadline <= 0 {
		o.ProviderDeadline = 30 * time.Minute
	}
}

// compensationDeadline bounds the attempts of one compensating step.
const compensationDeadline = 24 * time.Hour

// localOptions are for domain commands: fast, idempotent by command ID.
var localOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout: 10 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 5 * time.Second, MaximumAttempts: 10,
	},
}

// Local runs a domain command as a local activity (retried ten times over
// about half a minute, then the saga compensates).
func Local(ctx workflow.Context, fn any, args ...any) workflow.Future {
	return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localOptions), fn, args...)
}

// LocalCompensation runs a compensating domain command: retried for a day.
func LocalCompensation(ctx workflow.Context, fn any, args ...any) workflow.Future {
	o := localOptions
	o.ScheduleToCloseTimeout = compensationDeadline
	o.RetryPolicy = &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: time.Minute}
	return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, o), fn, args...)
}

// Provider runs a payment-provider call (with the domain events that
// record it) as a regular activity, or a local one if o.LocalProvider.
func Provider(ctx workflow.Context, o Options, fn any, args ...any) workflow.Future {
	return provider(ctx, o, o.ProviderDeadline, fn, args...)
}

// ProviderCompensation is Provider for a compensating call: retried for a
// day.
func ProviderCompensation(ctx workflow.Context, o Options, fn any, args ...any) workflow.Future {
	return provider(ctx, o, compensationDeadline, fn, args...)
}

func provider(ctx workflow.Context, o Options, deadline time.Duration, fn any, args ...any) workflow.Future {
	o.SetDefaults()
	retry := &temporal.RetryPolicy{InitialInterval: o.ProviderRetry, BackoffCoefficient: 2, MaximumInterval: time.Minute}
	if o.LocalProvider {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			ScheduleToCloseTimeout: deadline, StartToCloseTimeout: time.Minute, RetryPolicy: retry,
		}), fn, args...)
	}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ScheduleToCloseTimeout: deadline, StartToCloseTimeout: time.Minute, HeartbeatTimeout: o.ProviderHeartbeat,
		RetryPolicy: retry,
	}), fn, args...)
}

// Compensations are the undo steps of a saga, run last-added first.
type Compensations []func(ctx workflow.Context) error

// Add pushes an undo step.
func (c *Compensations) Add(f func(ctx workflow.Context) error) { *c = append(*c, f) }

// Run runs every undo step in reverse order on a context that survives the
// saga's cancellation, logging (not stopping at) failures, and returns the
// first error.
func (c Compensations) Run(ctx workflow.Context) error {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	var first error
	for i := len(c) - 1; i >= 0; i-- {
		if err := c[i](ctx); err != nil {
			workflow.GetLogger(ctx).Error("compensation failed", "step", i, "error", err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}
