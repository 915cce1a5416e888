package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/adapters/psp/sandboxhttp"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/workflows"
	"github.com/livecore/livecore/workflows/checkout"
	"github.com/livecore/livecore/workflows/dispatcher"
	"github.com/livecore/livecore/workflows/fulfillment"
	"github.com/livecore/livecore/workflows/internal/sagatest"
)

// Environment of the child worker process of TestWorkerKilledAfterProviderCall.
const (
	envChild     = "LIVECORE_FAULT_CHILD"      // "1" in the child
	envHostPort  = "LIVECORE_FAULT_HOSTPORT"   // Temporal frontend
	envNamespace = "LIVECORE_FAULT_NAMESPACE"  // Temporal namespace
	envQueue     = "LIVECORE_FAULT_TASK_QUEUE" // task queue
	envEvents    = "LIVECORE_FAULT_EVENTS"     // Pebble directory
	envPSP       = "LIVECORE_FAULT_PSP"        // sandbox URL
	// envKillDir is the test hook: when set, the child SIGKILLs itself
	// right after a provider call returns, before the activity can record
	// anything or complete, the first time it sees each idempotency key
	// (a marker file per key in that directory makes "first" hold across
	// child processes).
	envKillDir = "LIVECORE_FAULT_KILL_DIR"
	// envOrders scales the test (default 10 orders: 30 kills, three per
	// order: the authorization and two captures).
	envOrders = "LIVECORE_SAGA_FAULT_ORDERS"
)

// killingProvider is the child's provider: the sandbox over HTTP, with the
// kill hook after each call returns.
type killingProvider struct {
	payment.Provider
	dir string
}

func (k killingProvider) after(key string) {
	if k.dir == "" {
		return
	}
	f, err := os.OpenFile(filepath.Join(k.dir, strings.NewReplacer("/", "_").Replace(key)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return // killed on this key before: let it through
	}
	_ = f.Close()
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // never returns
}

func (k killingProvider) Authorize(ctx context.Context, r payment.AuthorizeRequest) (payment.Result, error) {
	res, err := k.Provider.Authorize(ctx, r)
	k.after(r.IdempotencyKey)
	return res, err
}

func (k killingProvider) Capture(ctx context.Context, r payment.CaptureRequest) (payment.Result, error) {
	res, err := k.Provider.Capture(ctx, r)
	k.after(r.IdempotencyKey)
	return res, err
}

func (k killingProvider) Void(ctx context.Context, r payment.VoidRequest) (payment.Result, error) {
	res, err := k.Provider.Void(ctx, r)
	k.after(r.IdempotencyKey)
	return res, err
}

func (k killingProvider) Refund(ctx context.Context, r payment.RefundRequest) (payment.Result, error) {
	res, err := k.Provider.Refund(ctx, r)
	k.after(r.IdempotencyKey)
	return res, err
}

// TestFaultChildWorker is the worker process of
// TestWorkerKilledAfterProviderCall; it does nothing in a normal run.
func TestFaultChildWorker(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		t.Skip("child process of TestWorkerKilledAfterProviderCall")
	}
	store, err := pebble.Open(pebble.Config{Dir: os.Getenv(envEvents)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	psp := killingProvider{Provider: sandboxhttp.NewClient(os.Getenv(envPSP), nil), dir: os.Getenv(envKillDir)}
	w := sagatest.NewWorld(t, sagatest.Options{Store: store})
	w.PSP = nil
	deps := w.Deps()
	deps.PSP = psp
	cl, err := client.Dial(client.Options{HostPort: os.Getenv(envHostPort), Namespace: os.Getenv(envNamespace)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	opts := workflows.WorkerOptions()
	opts.StickyScheduleToStartTimeout = time.Second
	wk := worker.New(cl, os.Getenv(envQueue), opts)
	if err := workflows.Register(wk, deps); err != nil {
		t.Fatal(err)
	}
	if err := wk.Run(worker.InterruptCh()); err != nil {
		t.Fatal(err)
	}
}

// TestWorkerKilledAfterProviderCall kills the worker process right after
// a provider call returns and before the activity records or completes,
// once for every idempotency key the sagas use (every authorization and
// every capture), and checks that nothing was charged or recorded twice.
// The sandbox provider lives in this process behind HTTP, so its ledger
// outlives each worker; the worker owns the Pebble event store, which this
// process reopens to count events once the last worker is gone.
func TestWorkerKilledAfterProviderCall(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns worker processes")
	}
	orders := 10
	if n, err := strconv.Atoi(os.Getenv(envOrders)); err == nil && n > 0 {
		orders = n
	}
	srv := sharedServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	events, killDir := filepath.Join(dir, "events"), filepath.Join(dir, "kills")
	if err := os.Mkdir(killDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.New(sandbox.Config{})
	pspSrv := httptest.NewServer(sandboxhttp.Handler(sb))
	defer pspSrv.Close()

	// The orders, placed while no worker runs.
	ids := make([]string, orders)
	func() {
		store, err := pebble.Open(pebble.Config{Dir: events})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		w := sagatest.NewWorld(t, sagatest.Options{Store: store, PSP: sb})
		w.Stock(t, "A", ams, 1000)
		w.Stock(t, "B", ber, 1000)
		for i := range ids {
			ids[i] = fmt.Sprintf("kill-%02d", i)
			w.PlaceOrder(t, ids[i], sagatest.Line{SKU: "A", Qty: 2, Price: "10.00"}, sagatest.Line{SKU: "B", Qty: 1, Price: "5.00"})
			w.StartCheckout(t, ids[i], order.MethodCard, order.PlanKind{})
		}
	}()
	cl, err := srv.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	queue := "tq-fault-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, id := range ids {
		opts := dispatcher.StartOptions(checkout.WorkflowID(id), queue, false)
		opts.WorkflowTaskTimeout = 2 * time.Second // a task on a killed worker is retried soon
		if _, err := cl.ExecuteWorkflow(ctx, opts, checkout.Checkout, checkout.Input{OrderID: id, Options: checkout.Options{Steps: testOptions}}); err != nil {
			t.Fatal(err)
		}
	}

	// Workers come and go until every order is delivered.
	spawn := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFaultChildWorker$")
		cmd.Env = append(os.Environ(), envChild+"=1", envHostPort+"="+srv.HostPort(), envNamespace+"="+srv.Namespace(),
			envQueue+"="+queue, envEvents+"="+events, envPSP+"="+pspSrv.URL, envKillDir+"="+killDir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	signalled := map[string]bool{}
	done := func() bool {
		all := true
		for _, id := range ids {
			if !signalled[id] {
				if closed(ctx, cl, checkout.WorkflowID(id)) {
					for _, u := range []fulfillment.CarrierUpdate{{ShipmentID: "s1", Event: fulfillment.Dispatched}, {ShipmentID: "s2", Event: fulfillment.Dispatched},
						{ShipmentID: "s1", Event: fulfillment.Delivered}, {ShipmentID: "s2", Event: fulfillment.Delivered}} {
						if err := cl.SignalWorkflow(ctx, fulfillment.WorkflowID(id), "", fulfillment.SignalCarrier, u); err != nil {
							t.Fatalf("signal %s: %v", id, err)
						}
					}
					signalled[id] = true
				}
				all = false
				continue
			}
			all = all && closed(ctx, cl, fulfillment.WorkflowID(id))
		}
		return all
	}
	kills, workers := 0, 0
	start := time.Now()
	for !done() {
		if ctx.Err() != nil {
			t.Fatalf("not done after %v: %d kills", time.Since(start), kills)
		}
		cmd := spawn()
		workers++
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
	wait:
		for {
			select {
			case err := <-exited:
				var ee *exec.ExitError
				if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
					kills++
				} else {
					t.Fatalf("worker exited without being killed: %v", err)
				}
				break wait
			case <-time.After(200 * time.Millisecond):
				if done() {
					_ = cmd.Process.Kill()
					<-exited
					break wait
				}
			}
		}
	}
	elapsed := time.Since(start)

	// The counts: the provider's ledger and the store's payment events.
	store, err := pebble.Open(pebble.Config{Dir: events})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	w := sagatest.NewWorld(t, sagatest.Options{Store: store, PSP: sb})
	dupCharges, dupEvents, captured := 0, 0, 0
	perKey := map[string]int{}
	for _, e := range sb.Ledger() {
		perKey[e.Key]++
	}
	for k, n := range perKey {
		if n > 1 {
			dupCharges += n - 1
			t.Errorf("provider key %s took effect %d times", k, n)
		}
	}
	for _, id := range ids {
		if n := sb.Effects(id, sandbox.OpAuthorize); n != 1 {
			dupCharges += max(0, n-1)
			t.Errorf("%s: %d authorizations", id, n)
		}
		seen := map[string]int{}
		envs, err := store.ReadStream(ctx, payment.StreamID(id), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, env := range envs {
			ev, err := w.Registry.DecodeEnvelope(env)
			if err != nil {
				t.Fatal(err)
			}
			k := env.Type
			if c, ok := ev.(*payment.Captured); ok {
				k += "/" + c.CaptureID
			}
			seen[k]++
		}
		for k, n := range seen {
			if n > 1 {
				dupEvents += n - 1
				t.Errorf("%s: event %s recorded %d times", id, k, n)
			}
		}
		if p := w.Payment(t, id); p.Status() == payment.StatusCaptured {
			captured++
		}
	}
	marked, err := os.ReadDir(killDir)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("saga fault test: %d orders, %d worker processes, %d SIGKILLed right after a provider call returned "+
		"(first call of %d idempotency keys), %v: %d duplicate charges, %d duplicate payment events, %d/%d payments fully captured\n",
		orders, workers, kills, len(marked), elapsed.Round(time.Millisecond), dupCharges, dupEvents, captured, orders)
	if kills < 20 {
		t.Errorf("only %d kills", kills)
	}
	if captured != orders {
		t.Errorf("%d of %d payments fully captured", captured, orders)
	}
}

// closed reports whether workflow id has finished.
func closed(ctx context.Context, cl client.Client, id string) bool {
	d, err := cl.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return false
	}
	return d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// TestConcurrentCheckoutStartsMakeOneSaga fires 20 starts of one order's
// checkout at once (plain starts with eager start, and signal-with-starts
// carrying the choice, as the dispatcher issues them) and checks that they
// all land on one run, which authorizes once and ends captured; a second
// order is cancelled before dispatch and ends voided.
func TestConcurrentCheckoutStartsMakeOneSaga(t *testing.T) {
	s := newStockedStack(t, stackOptions{NoDispatcher: true})
	for _, id := range []string{"dup-1", "dup-2"} {
		s.placeAndChoose(id, "10.00", order.MethodCard, order.PlanKind{})
		in := checkout.Input{OrderID: id, Tenant: "t1", Options: checkout.Options{Steps: testOptions}}
		choice := checkout.Choice{Method: order.MethodCard}
		var mu sync.Mutex
		runs := map[string]bool{}
		var created, refused, signalled int
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var run string
				var err error
				if i%2 == 0 {
					var r client.WorkflowRun
					r, err = s.client.ExecuteWorkflow(s.ctx, dispatcher.StartOptions(checkout.WorkflowID(id), s.taskQueue, true), checkout.Checkout, in)
					var already *serviceerror.WorkflowExecutionAlreadyStarted
					switch {
					case err == nil:
						run = r.GetRunID()
						mu.Lock()
						created++
						mu.Unlock()
					case errors.As(err, &already):
						run, err = already.RunId, nil
						mu.Lock()
						refused++
						mu.Unlock()
					}
				} else {
					run, err = dispatcher.StartOrSignalCheckout(s.ctx, s.client, s.taskQueue, in, choice, nil, nil)
					mu.Lock()
					signalled++
					mu.Unlock()
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				runs[run] = true
				mu.Unlock()
			}()
		}
		wg.Wait()
		res := s.checkout(id)
		sagas := s.countRuns(checkout.WorkflowID(id))
		fmt.Printf("concurrent starts of %s: 20 starts -> %d saga, %d distinct run IDs answered (plain starts: %d created, %d refused as duplicates; signal-with-starts: %d), outcome %s, %d authorizations\n",
			id, sagas, len(runs), created, refused, signalled, res.Outcome, s.world.PSP.Effects(id, sandbox.OpAuthorize))
		if sagas != 1 || len(runs) != 1 || res.Outcome != checkout.OutcomeConfirmed || s.world.PSP.Effects(id, sandbox.OpAuthorize) != 1 {
			t.Fatalf("%d sagas, runs %v, outcome %s, %d authorizations", sagas, runs, res.Outcome, s.world.PSP.Effects(id, sandbox.OpAuthorize))
		}
	}
	// dup-1 ships (captured); dup-2 is cancelled before dispatch (voided).
	s.carrier("dup-1", fulfillment.CarrierUpdate{ShipmentID: "s1", Event: fulfillment.Dispatched},
		fulfillment.CarrierUpdate{ShipmentID: "s2", Event: fulfillment.Dispatched},
		fulfillment.CarrierUpdate{ShipmentID: "s1", Event: fulfillment.Delivered},
		fulfillment.CarrierUpdate{ShipmentID: "s2", Event: fulfillment.Delivered})
	s.signal(fulfillment.WorkflowID("dup-2"), fulfillment.SignalCancel, fulfillment.CancelRequest{Reason: "customer cancelled"})
	s.fulfilled("dup-1")
	s.fulfilled("dup-2")
	open := openHolds(s.world.PSP.Ledger())
	p1, p2 := s.world.Payment(t, "dup-1"), s.world.Payment(t, "dup-2")
	fmt.Printf("authorizations: dup-1 %s, dup-2 %s; holds left open: %d\n", p1.Status(), p2.Status(), len(open))
	if len(open) != 0 || p1.Status() != payment.StatusCaptured || p2.Status() != payment.StatusVoided {
		t.Fatalf("open holds %v; dup-1 %s, dup-2 %s", open, p1.Status(), p2.Status())
	}
}

// countRuns counts the executions of workflow id (every run ever started
// under the ID) in the visibility store.
func (s *stack) countRuns(id string) int {
	s.t.Helper()
	for range 50 {
		resp, err := s.client.CountWorkflow(s.ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", id)})
		if err == nil && resp.Count > 0 {
			return int(resp.Count)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("no run of %s visible", id)
	return 0
}
