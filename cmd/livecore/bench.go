package main

import (
	"fmt"
	"os"

	"strings"

	"github.com/spf13/cobra"

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
	cmd.AddCommand(newBenchFsyncCmd(), newBenchBridgeCmd())
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
