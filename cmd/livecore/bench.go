package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

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
	cmd.AddCommand(newBenchFsyncCmd())
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
