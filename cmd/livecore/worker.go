package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"
	sdkclient "go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/internal/stack"
	"github.com/livecore/livecore/workflows"
	"github.com/livecore/livecore/workflows/dispatcher"
)

func newWorkerCmd() *cobra.Command {
	var f storeFlags
	var address, namespace string
	var noDispatcher bool
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run the saga worker (and dispatcher) alone against a Temporal cluster",
		Long: `worker runs livecore's Temporal worker (checkout, fulfillment, BNPL schedule
and refund workflows with their activities) and the saga dispatcher, which
starts a checkout saga for every placed order in the event log, without the
HTTP API. 'livecore dev' runs the same worker in its own process.

It needs an event store other processes can share (--event-store sql or
kurrentdb: the embedded Pebble store allows one process), the API's
database in --data-dir (api.db: the payment tokens checkouts use), and a
Temporal frontend. Payments go to the sandbox provider.`,
		Example: `  livecore worker --temporal-address 127.0.0.1:7233 --event-store sql \
    --event-store-dsn postgres://livecore@127.0.0.1:5432/livecore`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log := slog.Default()
			store, err := f.open(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			reg := stack.NewRegistry()
			svc, err := app.New(app.Config{Store: store, Registry: reg})
			if err != nil {
				return err
			}
			db, err := stack.OpenAPIDB(f.dataDir)
			if err != nil {
				return err
			}
			defer db.Close()
			tokens := httpapi.NewSQLCommerceStore(db)
			if err := tokens.Migrate(ctx); err != nil {
				return err
			}
			cl, err := sdkclient.DialContext(ctx, sdkclient.Options{HostPort: address, Namespace: namespace,
				Logger: tlog.NewStructuredLogger(log.With("component", "temporal-sdk"))})
			if err != nil {
				return fmt.Errorf("temporal %s: %w", address, err)
			}
			defer cl.Close()
			w := worker.New(cl, workflows.TaskQueue, workflows.WorkerOptions())
			if err := workflows.Register(w, workflows.Deps{App: svc, Events: store, Registry: reg,
				PSP: sandbox.New(sandbox.Config{}), Tokens: tokens, Logger: log}); err != nil {
				return err
			}
			if err := w.Start(); err != nil {
				return fmt.Errorf("saga worker: %w", err)
			}
			defer w.Stop()
			fmt.Fprintf(cmd.OutOrStdout(), "livecore worker: task queue %s on %s (namespace %s)\n", workflows.TaskQueue, address, namespace)
			if noDispatcher {
				<-ctx.Done()
				return nil
			}
			d, err := dispatcher.New(dispatcher.Config{Store: store, Registry: reg, Client: cl, TaskQueue: workflows.TaskQueue,
				Checkpoint: filepath.Join(f.dataDir, "dispatcher.checkpoint"), Logger: log})
			if err != nil {
				return err
			}
			if err := d.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&address, "temporal-address", envOr("LIVECORE_TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend host:port (env LIVECORE_TEMPORAL_ADDRESS)")
	cmd.Flags().StringVar(&namespace, "temporal-namespace", envOr("LIVECORE_TEMPORAL_NAMESPACE", "livecore"), "Temporal namespace (env LIVECORE_TEMPORAL_NAMESPACE)")
	cmd.Flags().BoolVar(&noDispatcher, "no-dispatcher", false, "run only the worker (another process runs the dispatcher)")
	return cmd
}
