package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	historypb "go.temporal.io/api/history/v1"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/adapters/temporal/embedded"
	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/workflows"
	"github.com/livecore/livecore/workflows/checkout"
	"github.com/livecore/livecore/workflows/dispatcher"
	"github.com/livecore/livecore/workflows/internal/sagatest"
	"github.com/livecore/livecore/workflows/internal/steps"
)

// One embedded Temporal server serves every test of the package (starting
// one takes seconds); each test has its own task queue, event store and
// order IDs.
var (
	serverOnce sync.Once
	server     *embedded.Server
	serverErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if server != nil {
		_ = server.Stop()
	}
	os.Exit(code)
}

func sharedServer(t testing.TB) *embedded.Server {
	t.Helper()
	serverOnce.Do(func() {
		dir, err := os.MkdirTemp("", "livecore-temporal-*")
		if err != nil {
			serverErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		server, serverErr = embedded.Start(ctx, embedded.Config{DBPath: filepath.Join(dir, "temporal.db")})
		if serverErr == nil {
			fmt.Printf("embedded Temporal started in %v\n", time.Since(start).Round(time.Millisecond))
		}
	})
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return server
}

// testOptions make provider retries and dead-worker detection fast.
var testOptions = steps.Options{ProviderHeartbeat: 2 * time.Second, ProviderRetry: 200 * time.Millisecond}

// stack is one test's worker, dispatcher and world on the shared server.
type stack struct {
	t         testing.TB
	ctx       context.Context
	client    client.Client
	world     *sagatest.World
	taskQueue string
	dir       string
	disp      *dispatcher.Dispatcher
	stopDisp  context.CancelFunc
	dispDone  chan error
}

type stackOptions struct {
	// Checkout are the options the dispatcher gives every checkout saga.
	Checkout checkout.Options
	// NoDispatcher leaves the dispatcher off (the test starts sagas).
	NoDispatcher bool
}

// newStockedStack is newStack with stock on hand, for a test that needs the
// real Temporal server (skipped with -short).
func newStockedStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("real Temporal server")
	}
	s := newStack(t, o)
	s.stock()
	return s
}

func newStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	srv := sharedServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	store, err := pebble.Open(pebble.Config{Dir: filepath.Join(dir, "events")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	cl, err := srv.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	s := &stack{t: t, ctx: ctx, client: cl, dir: dir, taskQueue: "tq-" + strings.ReplaceAll(t.Name(), "/", "-"),
		world: sagatest.NewWorld(t, sagatest.Options{Store: store})}
	w := worker.New(cl, s.taskQueue, workflows.WorkerOptions())
	if err := workflows.Register(w, s.world.Deps()); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	if o.Checkout.Steps == (steps.Options{}) {
		o.Checkout.Steps = testOptions
	}
	if !o.NoDispatcher {
		s.startDispatcher(o.Checkout)
	}
	return s
}

func (s *stack) startDispatcher(opts checkout.Options) { s.startFilteredDispatcher(opts, nil) }

// startFilteredDispatcher starts a dispatcher that skips the events filter
// refuses (nil: none), as a region's does for the homes it does not hold.
func (s *stack) startFilteredDispatcher(opts checkout.Options, filter func(event.Envelope) bool) {
	s.t.Helper()
	d, err := dispatcher.New(dispatcher.Config{
		Store: s.world.Store, Filter: filter, Registry: s.world.Registry, Client: s.client, TaskQueue: s.taskQueue,
		Checkpoint: filepath.Join(s.dir, "dispatcher.checkpoint"), Checkout: opts,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.disp, s.stopDisp, s.dispDone = d, cancel, make(chan error, 1)
	go func() { s.dispDone <- d.Run(ctx) }()
	s.t.Cleanup(func() { s.stopDispatcher() })
}

func (s *stack) stopDispatcher() {
	if s.stopDisp == nil {
		return
	}
	s.stopDisp()
	if err := <-s.dispDone; err != nil && !errors.Is(err, context.Canceled) {
		s.t.Errorf("dispatcher: %v", err)
	}
	s.stopDisp = nil
}

// await waits for workflow id to exist and finish, and decodes its result.
func (s *stack) await(id string, result any) error {
	s.t.Helper()
	for {
		_, err := s.client.DescribeWorkflowExecution(s.ctx, id, "")
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			select {
			case <-s.ctx.Done():
				s.t.Fatalf("workflow %s never started", id)
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			s.t.Fatal(err)
		}
		return s.client.GetWorkflow(s.ctx, id, "").Get(s.ctx, result)
	}
}

// signal signals workflow id once it exists.
func (s *stack) signal(id, name string, arg any) {
	s.t.Helper()
	for {
		err := s.client.SignalWorkflow(s.ctx, id, "", name, arg)
		var nf *serviceerror.NotFound
		if !errors.As(err, &nf) {
			if err != nil {
				s.t.Fatal(err)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// query asks a running workflow until decode succeeds and done(result).
func (s *stack) waitQuery(id, name string, result any, done func() bool) {
	s.t.Helper()
	for {
		v, err := s.client.QueryWorkflow(s.ctx, id, "", name)
		if err == nil && v.Get(result) == nil && done() {
			return
		}
		select {
		case <-s.ctx.Done():
			s.t.Fatalf("query %s of %s: condition never met (last error %v)", name, id, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// exec runs an order command as the API would.
func (s *stack) exec(id, step string, decide func(o *order.Order) ([]event.Event, error)) {
	s.t.Helper()
	_, err := app.Execute(s.ctx, s.world.App, order.StreamID(id), func() *order.Order { return &order.Order{} },
		app.Command{ID: "api/" + id + "/" + step, Metadata: event.Metadata{Tenant: "t1", Actor: "test"}}, decide)
	if err != nil {
		s.t.Fatal(err)
	}
}

// record writes the histories of the given workflows to testdata/<name>.json
// when LIVECORE_RECORD_HISTORIES=1.
func (s *stack) record(name string, workflowIDs ...string) {
	s.t.Helper()
	if os.Getenv("LIVECORE_RECORD_HISTORIES") != "1" {
		return
	}
	for i, id := range workflowIDs {
		h := &historypb.History{}
		it := s.client.GetWorkflowHistory(s.ctx, id, "", false, 0)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				s.t.Fatal(err)
			}
			h.Events = append(h.Events, ev)
		}
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
		if err != nil {
			s.t.Fatal(err)
		}
		file := name
		if len(workflowIDs) > 1 {
			file = fmt.Sprintf("%s-%d", name, i+1)
		}
		if err := os.WriteFile(filepath.Join("testdata", file+".json"), b, 0o644); err != nil {
			s.t.Fatal(err)
		}
		s.t.Logf("recorded %s (%d events) to testdata/%s.json", id, len(h.Events), file)
	}
}
