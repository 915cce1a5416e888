package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	kembedded "github.com/livecore/livecore/adapters/kafka/embedded"
	"github.com/livecore/livecore/internal/stack"
)

type devConfig struct {
	stack    stack.Config
	httpAddr string
	reset    bool
}

func newDevCmd() *cobra.Command {
	var c devConfig
	var brokers string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole product in one process on embedded defaults",
		Long: `dev runs livecore in one process on embedded defaults, with all data under
--data-dir:

  events/          the event store (Pebble; every append fsynced)
  readmodels.db    SQL read models and the finance journal (SQLite)
  kafka/           the Kafka-protocol broker (franz-go kfake), fed exactly once
                   by the bridge
  temporal.db      the Temporal server (SQLite) that runs the sagas

It serves the HTTP API on --http-addr; GET /healthz, /readyz and /metrics
are always there. Stop it with Ctrl-C: in-flight requests finish first.

Point parts at real infrastructure with --kafka-brokers and
--temporal-address; the embedded part is then not started.`,
		Example: `  livecore dev
  livecore dev --data-dir /tmp/lc --http-addr 127.0.0.1:9090
  livecore dev --reset                       # delete --data-dir first
  livecore dev --kafka-brokers 127.0.0.1:9092`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if brokers != "" {
				c.stack.KafkaBrokers = strings.Split(brokers, ",")
			}
			return runDev(cmd.Context(), c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.stack.DataDir, "data-dir", envOr("LIVECORE_DATA_DIR", "./data"), "directory for all embedded data (env LIVECORE_DATA_DIR)")
	f.StringVar(&c.httpAddr, "http-addr", envOr("LIVECORE_HTTP_ADDR", "127.0.0.1:8080"), "HTTP listen address (env LIVECORE_HTTP_ADDR)")
	f.StringVar(&c.stack.Region, "region", envOr("LIVECORE_REGION", "local"), "this region's name: stamps events and names the Kafka bridge (env LIVECORE_REGION)")
	f.StringVar(&brokers, "kafka-brokers", envOr("LIVECORE_KAFKA_BROKERS", ""), "comma-separated Kafka brokers; empty runs the embedded broker (env LIVECORE_KAFKA_BROKERS)")
	f.IntVar(&c.stack.KafkaPort, "kafka-port", kembedded.DefaultPort, "port of the embedded Kafka broker")
	f.StringVar(&c.stack.EventStore, "event-store", envOr("LIVECORE_EVENT_STORE", "pebble"), "event store: pebble (embedded, in --data-dir), sql (PostgreSQL/CockroachDB) or kurrentdb (env LIVECORE_EVENT_STORE)")
	f.StringVar(&c.stack.EventStoreDSN, "event-store-dsn", envOr("LIVECORE_EVENTSTORE_DSN", ""), "DSN of the sql (postgres://...) or kurrentdb (esdb://...) event store (env LIVECORE_EVENTSTORE_DSN)")
	f.StringVar(&c.stack.TemporalAddress, "temporal-address", envOr("LIVECORE_TEMPORAL_ADDRESS", ""), "Temporal frontend host:port; empty runs the embedded server (env LIVECORE_TEMPORAL_ADDRESS)")
	f.IntVar(&c.stack.TemporalPort, "temporal-port", 7233, "frontend port of the embedded Temporal server")
	f.BoolVar(&c.reset, "reset", false, "delete --data-dir before starting")
	f.BoolVar(&c.stack.SyncReadModels, "sync-read-models", envOr("LIVECORE_SYNC_READ_MODELS", "") == "true", "fsync the SQLite read models; by default they are written without fsync and rebuilt from the event log after an operating-system crash (env LIVECORE_SYNC_READ_MODELS=true)")
	f.StringVar(&c.stack.DemoTenant, "demo-tenant", "demo", "tenant created on first start with checkout, finance and ops keys and demo stock")
	return cmd
}

func runDev(ctx context.Context, c devConfig) error {
	log := slog.Default()
	if c.reset {
		if err := os.RemoveAll(c.stack.DataDir); err != nil {
			return fmt.Errorf("reset %s: %w", c.stack.DataDir, err)
		}
	}
	start := time.Now()
	softMemoryLimit()
	c.stack.Logger = log
	s, err := stack.Build(ctx, c.stack)
	if err != nil {
		return err
	}
	defer s.Close()

	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.httpAddr, err)
	}
	errc := make(chan error, 2)
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go func() { errc <- s.Run(runCtx) }()
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.ServeHTTP(ctx, ln) }()

	abs, _ := filepath.Abs(c.stack.DataDir)
	fmt.Printf("livecore dev is up in %v\n", time.Since(start).Round(time.Millisecond))
	fmt.Printf("  API:       http://%s\n", ln.Addr())
	fmt.Printf("  health:    http://%s/healthz   metrics: http://%s/metrics\n", ln.Addr(), ln.Addr())
	if s.Temporal != nil {
		fmt.Printf("  temporal:  %s (namespace %s)\n", s.Temporal.HostPort(), s.Temporal.Namespace())
	}
	if s.Broker != nil {
		fmt.Printf("  kafka:     %s (embedded)\n", strings.Join(s.Broker.Brokers(), ","))
	}
	fmt.Printf("  data:      %s\n", abs)

	if s.DemoKeys != nil {
		fmt.Printf("\n  demo tenant %q, API keys (also in %s):\n", c.stack.DemoTenant, s.DemoKeysFile)
		for _, role := range []string{"checkout", "finance", "ops"} {
			fmt.Printf("    %-8s  %s\n", role, s.DemoKeys[role])
		}
		fmt.Printf("  try:  source %s && curl -s -H \"Authorization: Bearer $LIVECORE_CHECKOUT_KEY\" http://%s/v1/inventory/TSHIRT-RED-M\n", s.DemoKeysFile, ln.Addr())
	}

	var err2 error
	select {
	case <-ctx.Done():
		err2 = <-httpDone // graceful: in-flight requests finish
	case err2 = <-httpDone:
	case err2 = <-errc:
	}
	log.Info("shutting down")
	stopRun()
	if err2 != nil && !errors.Is(err2, http.ErrServerClosed) {
		return err2
	}
	return nil
}
