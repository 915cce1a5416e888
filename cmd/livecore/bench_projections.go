package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/livecore/livecore/projections"
	"github.com/livecore/livecore/projections/projbench"
)

func newBenchProjectionsCmd() *cobra.Command {
	var dir, pgDSN string
	var events int
	cmd := &cobra.Command{
		Use:   "projections",
		Short: "Projection catch-up: events/s into SQLite (and PostgreSQL) for every read model and the journal",
		Long: `projections simulates a realistic history (orders, payments, BNPL plans,
shipments, refunds) in memory and projects it from position 1 into a fresh
database: SQLite under --dir, and PostgreSQL when --postgres-dsn is set.
Every read model and the finance journal run together, each batch committed
with its checkpoint in one transaction, as in production.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			tmp, err := os.MkdirTemp(dir, "bench-projections-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			src, err := projbench.History(cmd.Context(), events, 1)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "projection catch-up of %d simulated events, all read models + journal:\n", events)
			db, err := projections.OpenSQLite(filepath.Join(tmp, "rm.db"))
			if err != nil {
				return err
			}
			defer db.Close()
			r, err := projbench.Projections(cmd.Context(), projbench.ProjectionsConfig{DB: db, Source: src})
			if err != nil {
				return err
			}
			fmt.Fprintln(out, " ", r)
			if pgDSN != "" {
				pg, err := projections.OpenPostgres(cmd.Context(), pgDSN)
				if err != nil {
					return err
				}
				defer pg.Close()
				r, err := projbench.Projections(cmd.Context(), projbench.ProjectionsConfig{DB: pg, Source: src})
				if err != nil {
					return fmt.Errorf("postgres (the DSN's schema must be empty): %w", err)
				}
				fmt.Fprintln(out, " ", r)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "./data", "directory for the temporary SQLite file")
	cmd.Flags().StringVar(&pgDSN, "postgres-dsn", "", "also measure PostgreSQL (an empty schema)")
	cmd.Flags().IntVar(&events, "events", 200_000, "events in the simulated history")
	return cmd
}

func newBenchAuditCmd() *cobra.Command {
	var events int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Hash-chain verification: events/s over the Pebble store and of the verifier alone",
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := projbench.Audit(cmd.Context(), projbench.AuditConfig{Events: events})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), r)
			return nil
		},
	}
	cmd.Flags().IntVar(&events, "events", 1_000_000, "events in the verified store")
	return cmd
}
