// Command livecore is the event-sourced commerce core: one binary whose
// subcommands run the whole product (dev), its parts, and its tools.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// procsPerCPU is how many Ps main runs per CPU the runtime would use.
const procsPerCPU = 2

func main() {
	// Pebble keeps its caches off the Go heap, so the heap is small and a
	// default GOGC collects every few milliseconds; that, not IO, drives the
	// read tail (stream-load p99 halves at 400). GOGC in the environment
	// still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// Two Ps per CPU: requests share the process with CPU-bound background
	// work (read models, Pebble compactions, the Kafka bridge). With one P
	// per CPU a request that wakes up waits for a running goroutine's time
	// slice (up to 10 ms); with more threads than CPUs the kernel's
	// scheduler interleaves them sooner. `bench api` at half load: p99
	// 13-14 ms instead of 16-41 ms, for 1-4% more CPU per order.
	// GOMAXPROCS in the environment still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(procsPerCPU * runtime.GOMAXPROCS(0))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "livecore:", err)
		os.Exit(1)
	}
}

type globalFlags struct {
	logLevel  string
	logFormat string
}

func newRootCmd() *cobra.Command {
	var g globalFlags
	root := &cobra.Command{
		Use:   "livecore",
		Short: "Event-sourced transactional commerce core",
		Long: `livecore is the transactional core for live commerce: orders, inventory,
payments, BNPL financing and fulfillment as event-sourced aggregates, driven by
Temporal sagas, published to Kafka exactly once, replicated across regions.

Start everything on embedded defaults with 'livecore dev' (data in ./data).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return setupLogging(g.logLevel, g.logFormat)
		},
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", envOr("LIVECORE_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env LIVECORE_LOG_LEVEL)")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", envOr("LIVECORE_LOG_FORMAT", "text"), "log format: text or json (env LIVECORE_LOG_FORMAT)")
	root.AddCommand(newDevCmd(), newBridgeCmd(), newBenchCmd())
	root.AddCommand(newKeysCmd(), newDRCmd(), newAuditCmd(), newWorkerCmd())
	return root
}

func setupLogging(level, format string) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	default:
		return fmt.Errorf("--log-format %q: want text or json", format)
	}
	slog.SetDefault(slog.New(h))
	return nil
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}
