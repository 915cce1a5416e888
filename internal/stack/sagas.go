package stack

import (
	"context"
	"fmt"
	"path/filepath"

	sdkclient "go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/workflows"
	"github.com/livecore/livecore/workflows/dispatcher"
)

// buildSagas runs the saga worker and the saga dispatcher against the
// embedded Temporal server (or cfg.TemporalAddress): the dispatcher follows
// the event log and starts a checkout saga per placed order, the worker
// runs it with the sandbox payment provider and the API's payment tokens.
func (s *Stack) buildSagas(ctx context.Context) error {
	var (
		cl  sdkclient.Client
		err error
	)
	logger := tlog.NewStructuredLogger(s.log.With("component", "temporal-sdk"))
	if s.Temporal != nil {
		cl, err = s.Temporal.NewClient(ctx, func(o *sdkclient.Options) { o.Logger = logger })
	} else {
		cl, err = sdkclient.DialContext(ctx, sdkclient.Options{HostPort: s.cfg.TemporalAddress, Namespace: s.cfg.TemporalNamespace, Logger: logger})
	}
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	s.closers = append(s.closers, func() error { cl.Close(); return nil })
	psp := s.cfg.Regional.PSP
	if psp == nil {
		if s.PSP == nil {
			s.PSP = sandbox.New(sandbox.Config{})
		}
		psp = s.PSP
	}
	w := worker.New(cl, workflows.TaskQueue, workflows.WorkerOptions())
	if err := workflows.Register(w, workflows.Deps{
		App: s.Service, Events: s.Store, Registry: s.Registry, PSP: psp, Tokens: s.Commerce, Logger: s.log,
	}); err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("saga worker: %w", err)
	}
	s.closers = append(s.closers, func() error { w.Stop(); return nil })
	var source event.Subscriber = s.Store
	if s.cfg.Regional.DispatchSource != nil {
		source = s.cfg.Regional.DispatchSource
	}
	s.TemporalClient = cl
	d, err := dispatcher.New(dispatcher.Config{
		Store: source, Filter: s.cfg.Regional.DispatchFilter, Registry: s.Registry, Client: cl, TaskQueue: workflows.TaskQueue,
		Checkpoint: filepath.Join(s.cfg.DataDir, "dispatcher.checkpoint"), Logger: s.log,
	})
	if err != nil {
		return err
	}
	s.Dispatcher = d
	s.loops = append(s.loops, namedLoop{"saga-dispatcher", d.Run})
	relay := &carrierRelay{store: source, filter: s.cfg.Regional.DispatchFilter, reg: s.Registry, client: cl, checkpoint: filepath.Join(s.cfg.DataDir, "carrier-relay.checkpoint"), log: s.log}
	s.loops = append(s.loops, namedLoop{"carrier-relay", relay.Run})
	return nil
}
