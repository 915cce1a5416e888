package main

import (
	"fmt"
	"os"

	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/livecore/livecore/adapters/eventstore/open"
	"github.com/livecore/livecore/adapters/eventstore/pebble/pebblebench"
	"github.com/livecore/livecore/adapters/eventstore/storebench"
	"github.com/livecore/livecore/adapters/kafka"

	"github.com/livecore/livecore/internal/fsyncbench"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure this machine and livecore's parts (prints figures)",
		Long: `bench runs livecore's benchmarks outside 'go test' and prints a table.
Figures on shared 2-core machines are noisy: compare numbers from one run, and
take medians over several runs.`,
	}
	cmd.AddCommand(newBenchFsyncCmd(), newBenchEventStoreCmd(), newBenchBridgeCmd(), newBenchProjectionsCmd(), newBenchAuditCmd())
	cmd.AddCommand(newBenchAPICmd())
	return cmd
}

func newBenchBridgeCmd() *cobra.Command {
	var c kafka.BenchConfig
	var brokers string
	cmd := &cobra.Command{
		Use:   "bridge",
		Short: "Kafka bridge: events/s exactly-once vs at-least-once, and end-to-end lag",
		Long: `bridge publishes a pre-filled in-memory store of 1 KiB events exactly-once and
at-least-once, side by side in alternating rounds, and reports the medians,
the overhead of transactions, and the append-to-visible lag at a steady rate.
Without --kafka-brokers it uses an in-process broker.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if brokers != "" {
				c.Brokers = strings.Split(brokers, ",")
			}
			_, err := kafka.RunBench(cmd.Context(), c, cmd.OutOrStdout())
			return err
		},
	}
	cmd.Flags().StringVar(&brokers, "kafka-brokers", "", "a real cluster to measure (default: in-process broker)")
	cmd.Flags().IntVar(&c.Events, "events", 200_000, "events per run")
	cmd.Flags().IntVar(&c.Rounds, "rounds", 5, "rounds (medians are reported)")
	cmd.Flags().IntVar(&c.MaxEvents, "max-events", 0, "events per transaction (0: the bridge's default)")
	return cmd
}

func newBenchFsyncCmd() *cobra.Command {
	var dir string
	var n int
	cmd := &cobra.Command{
		Use:   "fsync",
		Short: "Raw serial fsync rate of a directory's disk (the durability anchor)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			r, err := fsyncbench.Measure(dir, n)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "raw fsync (%s): %s\n", dir, r)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "./data", "directory on the disk to measure")
	cmd.Flags().IntVar(&n, "n", 2000, "number of 4 KiB write+fsync rounds")
	return cmd
}

func newBenchEventStoreCmd() *cobra.Command {
	var dir, pgDSN, kurrentURL string
	var compare bool
	var seconds int
	cmd := &cobra.Command{
		Use:   "eventstore",
		Short: "Event store: appends and reads against this disk's raw fsync rate",
		Long: `eventstore measures the embedded Pebble store on fresh directories under
--dir: raw fsync (the anchor), a single writer (ratio to raw fsync, measured
interleaved so both see the same disk), 64 writers (events per fsync), a
sequential $all read and 100-event stream loads (p50/p99).

With --compare it instead runs the same append and read workloads side by
side against every configured store: Pebble, PostgreSQL (--postgres-dsn, at
the server's own fsync settings, which the table prints) and
KurrentDB/EventStoreDB (--kurrentdb-url).`,
		Example: `  livecore bench eventstore
  livecore bench eventstore --compare --postgres-dsn postgres://user:pw@127.0.0.1:5432/db`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			tmp, err := os.MkdirTemp(dir, "bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			if !compare {
				return pebblebench.Run(cmd.Context(), tmp, cmd.OutOrStdout())
			}
			targets := open.BenchTargets(cmd.Context(), open.BenchConfig{Dir: tmp, PostgresDSN: pgDSN, KurrentURL: kurrentURL})
			_, err = storebench.Run(cmd.Context(), targets, storebench.Options{Duration: time.Duration(seconds) * time.Second}, cmd.OutOrStdout())
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "./data", "directory on the disk to measure (fresh subdirectories, removed afterwards)")
	cmd.Flags().BoolVar(&compare, "compare", false, "compare stores side by side instead of the Pebble table")
	cmd.Flags().StringVar(&pgDSN, "postgres-dsn", envOr("LIVECORE_EVENTSTORE_DSN", ""), "with --compare: PostgreSQL DSN for the SQL store (fresh schema per workload)")
	cmd.Flags().StringVar(&kurrentURL, "kurrentdb-url", envOr("LIVECORE_KURRENTDB_URL", ""), "with --compare: esdb:// URL of a KurrentDB/EventStoreDB")
	cmd.Flags().IntVar(&seconds, "seconds", 3, "with --compare: seconds per append workload")
	return cmd
}
