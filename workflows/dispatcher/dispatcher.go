// Package dispatcher starts the sagas from the event log: it follows $all
// from its own checkpoint and, for each event that begins a process, starts
// (or signals) the workflow whose ID is derived from the business key. So
// accepting an order never waits on Temporal, and no placed order is ever
// left without its saga:
//
//   - order.placed: start the checkout saga "checkout-<order>". When the
//     same batch already holds the order's checkout_started, the choice
//     goes in the start input (one call instead of two).
//   - order.checkout_started: SignalWithStart the checkout saga with the
//     choice (it starts the saga if the placed event's start was lost).
//   - order.return_received: start the refund saga of the return
//     ("refund-<order>-return-<return>") for the received value.
//   - order.refund_requested: start the refund saga of that refund, unless
//     a saga asked for it (then it exists and the start is deduplicated).
//
// # Exactly one saga per key
//
// Starts use WorkflowIDReusePolicy REJECT_DUPLICATE and
// WorkflowIDConflictPolicy FAIL: a second start of a running or finished
// saga is refused by the server (WorkflowExecutionAlreadyStarted), which the
// dispatcher counts as done. Re-delivery is therefore harmless, and so are
// concurrent dispatchers.
//
// # Checkpoint
//
// The checkpoint is a small file holding the $all position after the last
// batch whose every start was acknowledged by Temporal, replaced
// atomically (write, fsync, rename, fsync the directory) after each batch.
// A crash between a start and the checkpoint re-delivers the batch; the
// starts are deduplicated. A start that fails for any other reason is
// retried with backoff and the checkpoint does not move past it, so an
// outage of Temporal delays sagas and loses none. (A file, not a stream:
// the dispatcher must not write to the log it reads, and each region's
// dispatcher keeps its own position.)
package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/internal/durable"
	"github.com/livecore/livecore/workflows/bnpl"
	"github.com/livecore/livecore/workflows/checkout"
	"github.com/livecore/livecore/workflows/refund"
)

// Config configures a Dispatcher.
type Config struct {
	// Store is followed from the checkpoint. Required.
	Store event.Subscriber
	// Filter, if set, skips the events it returns false for: a region
	// dispatches only the events of the homes it owns ($all also holds
	// every other region's replicas). See Redrive for a home taken over.
	Filter func(event.Envelope) bool
	// Registry decodes the events the dispatcher acts on. Required.
	Registry *event.Registry
	// Client starts workflows. Use the client the local worker was built
	// with: eager starts then run the first workflow task in this process.
	// Required.
	Client client.Client
	// TaskQueue of the workflows. Required.
	TaskQueue string
	// Checkpoint is the checkpoint file; its directory must exist.
	// Required.
	Checkpoint string
	// Parallelism is how many starts of one batch run at once. Default 32.
	Parallelism int
	// Checkout is passed to every checkout saga (timeouts, provider
	// options).
	Checkout checkout.Options
	// NoEager turns off eager workflow start, which is on by default: the
	// first workflow task of a started saga runs on this process's worker
	// (if Client has one with a free slot), skipping a round trip through
	// matching.
	NoEager bool
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Parallelism <= 0 {
		c.Parallelism = 32
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a missing field.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("dispatcher: Store required")
	case c.Registry == nil:
		return errors.New("dispatcher: Registry required")
	case c.Client == nil:
		return errors.New("dispatcher: Client required")
	case c.TaskQueue == "":
		return errors.New("dispatcher: TaskQueue required")
	case c.Checkpoint == "":
		return errors.New("dispatcher: Checkpoint required")
	}
	return nil
}

// Dispatcher follows the log and starts sagas. Make one with New and call
// Run once.
type Dispatcher struct {
	cfg   Config
	stats struct{ batches, started, deduplicated, signalled, retries, redriven atomic.Int64 }
}

// New returns a Dispatcher; it fails if cfg does not Validate.
func New(cfg Config) (*Dispatcher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Dispatcher{cfg: cfg}, nil
}

// Stats are running totals since New.
type Stats struct {
	Batches      int64 // batches dispatched and checkpointed
	Started      int64 // workflows started
	Deduplicated int64 // starts refused as duplicates (already started or finished)
	Signalled    int64 // choices delivered with SignalWithStart
	Retries      int64 // failed calls retried
	Redriven     int64 // sagas started again by Redrive
}

// Stats returns the running totals.
func (d *Dispatcher) Stats() Stats {
	return Stats{
		Batches: d.stats.batches.Load(), Started: d.stats.started.Load(), Deduplicated: d.stats.deduplicated.Load(),
		Signalled: d.stats.signalled.Load(), Retries: d.stats.retries.Load(), Redriven: d.stats.redriven.Load(),
	}
}

// Run follows the log from the checkpoint until ctx is done (returning
// ctx.Err()) or the checkpoint cannot be read or written.
func (d *Dispatcher) Run(ctx context.Context) error {
	pos, err := ReadCheckpoint(d.cfg.Checkpoint)
	if err != nil {
		return err
	}
	return d.cfg.Store.SubscribeAll(ctx, pos+1, func(ctx context.Context, batch []event.Envelope) error {
		if err := d.dispatch(ctx, batch); err != nil {
			return err
		}
		if err := WriteCheckpoint(d.cfg.Checkpoint, batch[len(batch)-1].Position); err != nil {
			return err
		}
		d.stats.batches.Add(1)
		return nil
	})
}

// job is what one order or refund needs from a batch.
type job struct {
	tenant   string
	placed   bool
	choice   *checkout.Choice
	refund   *refund.Input
	workflow string
}

// dispatch starts everything a batch asks for, in parallel, and returns
// when all starts were acknowledged (or ctx is done).
func (d *Dispatcher) dispatch(ctx context.Context, batch []event.Envelope) error {
	var jobs []*job
	orders := map[string]*job{}
	orderJob := func(id, tenant string) *job {
		j := orders[id]
		if j == nil {
			j = &job{tenant: tenant, workflow: checkout.WorkflowID(id)}
			orders[id] = j
			jobs = append(jobs, j)
		}
		return j
	}
	for _, env := range batch {
		switch env.Type {
		case order.TypeOrderPlaced, order.TypeOrderPlacedV1, order.TypeCheckoutStarted, order.TypeReturnReceived, order.TypeRefundRequested:
		default:
			continue
		}
		if d.cfg.Filter != nil && !d.cfg.Filter(env) {
			continue
		}
		ev, err := d.cfg.Registry.DecodeEnvelope(env)
		if err != nil {
			return fmt.Errorf("dispatcher: position %d: %w", env.Position, err)
		}
		switch e := ev.(type) {
		case *order.OrderPlaced:
			orderJob(e.OrderID, env.Metadata.Tenant).placed = true
		case *order.CheckoutStarted:
			orderJob(e.OrderID, env.Metadata.Tenant).choice = &checkout.Choice{Method: e.Method, Plan: e.Plan}
		case *order.ReturnReceived:
			rid := refund.ReturnRefundID(e.ReturnID)
			jobs = append(jobs, &job{tenant: env.Metadata.Tenant, workflow: refund.WorkflowID(e.OrderID, rid), refund: &refund.Input{
				OrderID: e.OrderID, Tenant: env.Metadata.Tenant, RefundID: rid, Amount: e.Value, Reason: "return " + e.ReturnID + " received",
				Options: refund.Options{Steps: d.cfg.Checkout.Steps},
			}})
		case *order.RefundRequested:
			jobs = append(jobs, &job{tenant: env.Metadata.Tenant, workflow: refund.WorkflowID(e.OrderID, e.RefundID), refund: &refund.Input{
				OrderID: e.OrderID, Tenant: env.Metadata.Tenant, RefundID: e.RefundID, Amount: e.Amount, Reason: e.Reason,
				Options: refund.Options{Steps: d.cfg.Checkout.Steps},
			}})
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	sem := make(chan struct{}, d.cfg.Parallelism)
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = d.retry(ctx, j.workflow, func() error { return d.run(ctx, j) })
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// run does one job once.
func (d *Dispatcher) run(ctx context.Context, j *job) error {
	if j.refund != nil {
		_, err := d.start(ctx, j.workflow, refund.Refund, *j.refund)
		return err
	}
	orderID := strings.TrimPrefix(j.workflow, "checkout-")
	if j.placed {
		// The choice, when this batch holds it too, rides in the input.
		in := checkout.Input{OrderID: orderID, Tenant: j.tenant, Choice: j.choice, Options: d.cfg.Checkout}
		started, err := d.start(ctx, j.workflow, checkout.Checkout, in)
		if err != nil || started || j.choice == nil {
			return err
		}
		// The saga existed before (a re-delivery, or the choice's own
		// start won the race): the choice still has to reach it.
	}
	if j.choice != nil {
		_, err := StartOrSignalCheckout(ctx, d.cfg.Client, d.cfg.TaskQueue, checkout.Input{OrderID: orderID, Tenant: j.tenant, Options: d.cfg.Checkout}, *j.choice, &d.stats.signalled, &d.stats.deduplicated)
		return err
	}
	return nil
}

// Redrive starts the checkout saga of each order again, from the order's
// state (the saga reads its choice from the aggregate; checkout.Input
// Redrive): what a region does for the open orders of a home it has just
// taken over, whose sagas ran in the old owner's Temporal. A saga running
// here already is left alone; any finished run is followed by a new one,
// which finds the order where the aggregates have it: still checking out
// (it runs the remaining steps), confirmed but not handed over (it hands
// over), or handed over (it resumes the fulfillment here). Business
// idempotency keys keep the provider calls single. It returns how many
// started.
func (d *Dispatcher) Redrive(ctx context.Context, orders []RedriveOrder) (int, error) {
	return d.redrive(ctx, len(orders), enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, func(i int) (string, any, any) {
		o := orders[i]
		return checkout.WorkflowID(o.OrderID), checkout.Checkout, checkout.Input{OrderID: o.OrderID, Tenant: o.Tenant, Options: d.cfg.Checkout, Redrive: true}
	})
}

// redrive starts n workflows in parallel (start names the i-th: its ID,
// workflow and input) under the reuse policy, retrying failed calls; one
// already running is left alone. It returns how many started.
func (d *Dispatcher) redrive(ctx context.Context, n int, reuse enumspb.WorkflowIdReusePolicy, start func(i int) (id string, wf any, input any)) (int, error) {
	var started atomic.Int64
	sem := make(chan struct{}, d.cfg.Parallelism)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			id, wf, input := start(i)
			errs[i] = d.retry(ctx, id, func() error {
				opts := StartOptions(id, d.cfg.TaskQueue, false)
				opts.WorkflowIDReusePolicy = reuse
				_, err := d.cfg.Client.ExecuteWorkflow(ctx, opts, wf, input)
				switch {
				case err == nil:
					d.stats.started.Add(1)
					d.stats.redriven.Add(1)
					started.Add(1)
					return nil
				case IsAlreadyStarted(err):
					d.stats.deduplicated.Add(1)
					return nil
				}
				return fmt.Errorf("redrive %s: %w", id, err)
			})
		}()
	}
	wg.Wait()
	return int(started.Load()), errors.Join(errs...)
}

// RedriveSchedules starts the installment schedule of each BNPL plan again
// (a home taken over: the schedules ran in the old owner's Temporal). A
// schedule loads its plan on every step, so a new run carries on from the
// plan's state (installments collected, late fees, default). A running
// one here is left alone; a failed or terminated one is replaced; a
// completed one is not started again. It returns how many started.
func (d *Dispatcher) RedriveSchedules(ctx context.Context, plans []RedrivePlan) (int, error) {
	return d.redrive(ctx, len(plans), enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY, func(i int) (string, any, any) {
		p := plans[i]
		return bnpl.WorkflowID(p.PlanID), bnpl.Schedule, bnpl.Input{PlanID: p.PlanID, OrderID: p.OrderID, Tenant: p.Tenant, Options: d.cfg.Checkout.Schedule}
	})
}

// RedriveRefunds starts the refund saga of each refund again (a home taken
// over: the sagas ran in the old owner's Temporal). Every step of a refund
// is keyed by its refund ID, so a new run finishes what the old one
// started without refunding twice. A running one here is left alone; a
// failed or terminated one is replaced; a completed one is not started
// again. It returns how many started.
func (d *Dispatcher) RedriveRefunds(ctx context.Context, refunds []refund.Input) (int, error) {
	return d.redrive(ctx, len(refunds), enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY, func(i int) (string, any, any) {
		in := refunds[i]
		in.Options = refund.Options{Steps: d.cfg.Checkout.Steps}
		return refund.WorkflowID(in.OrderID, in.RefundID), refund.Refund, in
	})
}

// RedrivePlan names a BNPL plan whose schedule RedriveSchedules starts again.
type RedrivePlan struct {
	PlanID, OrderID, Tenant string
}

// RedriveOrder names an order whose checkout saga Redrive starts again.
type RedriveOrder struct {
	OrderID, Tenant string
}

// start starts workflow id with input; started is false when the ID was
// taken (a duplicate, counted as done).
func (d *Dispatcher) start(ctx context.Context, id string, wf any, input any) (started bool, err error) {
	_, err = d.cfg.Client.ExecuteWorkflow(ctx, StartOptions(id, d.cfg.TaskQueue, !d.cfg.NoEager), wf, input)
	switch {
	case err == nil:
		d.stats.started.Add(1)
		return true, nil
	case IsAlreadyStarted(err):
		d.stats.deduplicated.Add(1)
		return false, nil
	}
	return false, fmt.Errorf("start %s: %w", id, err)
}

// retry calls fn until it succeeds or ctx is done, backing off from 100ms
// to 10s.
func (d *Dispatcher) retry(ctx context.Context, id string, fn func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.stats.retries.Add(1)
		d.cfg.Logger.WarnContext(ctx, "dispatcher: start failed, retrying", "workflow", id, "error", err, "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// StartOptions are the options of every saga start: the business ID, the
// duplicate policies that make a second start fail with
// WorkflowExecutionAlreadyStarted, and eager start.
func StartOptions(id, taskQueue string, eager bool) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                taskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without it the SDK answers a duplicate start of a running
		// workflow with that run, as if it had started it.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		EnableEagerStart:                         eager,
	}
}

// IsAlreadyStarted reports whether err says the workflow ID is taken (a
// running or a finished run).
func IsAlreadyStarted(err error) bool {
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	return errors.As(err, &already)
}

// StartOrSignalCheckout delivers a payment choice to an order's checkout
// saga with SignalWithStart, starting the saga if it does not exist, and
// returns the run that got it. A saga that already finished refuses the
// start (REJECT_DUPLICATE): the choice came too late to matter and counts as
// delivered (run ""). signalled and deduplicated may be nil.
func StartOrSignalCheckout(ctx context.Context, c client.Client, taskQueue string, in checkout.Input, choice checkout.Choice, signalled, deduplicated *atomic.Int64) (run string, err error) {
	opts := StartOptions(checkout.WorkflowID(in.OrderID), taskQueue, false)
	// Signal the running saga; eager start is not offered for
	// SignalWithStart.
	opts.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
	r, err := c.SignalWithStartWorkflow(ctx, opts.ID, checkout.SignalCheckoutStarted, choice, opts, checkout.Checkout, in)
	switch {
	case err == nil:
		if signalled != nil {
			signalled.Add(1)
		}
		return r.GetRunID(), nil
	case IsAlreadyStarted(err):
		if deduplicated != nil {
			deduplicated.Add(1)
		}
		return "", nil
	}
	return "", fmt.Errorf("signal-with-start %s: %w", opts.ID, err)
}

// ReadCheckpoint returns the position stored in file (0 if there is none).
func ReadCheckpoint(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("dispatcher: checkpoint: %w", err)
	}
	pos, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("dispatcher: checkpoint %s: %w", file, err)
	}
	return pos, nil
}

// WriteCheckpoint replaces file with pos, durably: write a temporary file,
// fsync it, rename it over file, fsync the directory.
func WriteCheckpoint(file string, pos uint64) error {
	if err := durable.WriteFile(file, []byte(strconv.FormatUint(pos, 10)+"\n")); err != nil {
		return fmt.Errorf("dispatcher: checkpoint: %w", err)
	}
	return nil
}
