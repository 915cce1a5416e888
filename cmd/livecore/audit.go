package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/livecore/livecore/adapters/eventstore/open"
	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/internal/stack"
	"github.com/livecore/livecore/projections"
	"github.com/livecore/livecore/projections/audit"
)

// storeFlags select the event store a command reads.
type storeFlags struct {
	dataDir, kind, dsn string
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", envOr("LIVECORE_DATA_DIR", "./data"), "data directory (Pebble store in <data-dir>/events, read models in <data-dir>/readmodels.db) (env LIVECORE_DATA_DIR)")
	cmd.Flags().StringVar(&f.kind, "event-store", "", "event store: "+strings.Join(open.Kinds(), ", ")+" (default pebble; env LIVECORE_EVENT_STORE)")
	cmd.Flags().StringVar(&f.dsn, "event-store-dsn", "", "PostgreSQL DSN or esdb:// URL for the sql and kurrentdb stores (env LIVECORE_EVENTSTORE_DSN)")
}

func (f *storeFlags) open(ctx context.Context) (event.Store, error) {
	// The audit commands read the log through once at most: a small block
	// cache (see pebble.ScanCacheBytes).
	cfg := open.FromEnv(open.Config{Kind: f.kind, Dir: filepath.Join(f.dataDir, "events"), DSN: f.dsn, SkipMigrate: true,
		CacheBytes: pebble.ScanCacheBytes}, os.Getenv)
	s, err := open.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open event store (the embedded store allows one process: stop 'livecore dev' first, or audit through the API): %w", err)
	}
	return s, nil
}

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Audit event histories: history, verify, as-of, export, reconcile",
		Long: `audit gives a finance team proof that the event history is complete and
unaltered, and the numbers built from it (runbook: docs/audit.md).

  history <stream>          every event of a stream: position, time, actor, hashes
  verify                    recompute the per-stream and global hash chains
  as-of <stream> <at>       a stream's state at a time (RFC 3339) or a position
  export events|journal     CSV for spreadsheets
  reconcile                 payment events vs the journal (and trial balance)

The commands open the store directly; with the embedded (Pebble) store stop
'livecore dev' first. The finance API endpoints (/v1/audit/...) serve the same
functions while the product runs.`,
	}
	cmd.AddCommand(newAuditHistoryCmd(), newAuditVerifyCmd(), newAuditAsOfCmd(), newAuditExportCmd(), newAuditReconcileCmd())
	return cmd
}

func newAuditHistoryCmd() *cobra.Command {
	var f storeFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "history <stream>",
		Short:   "Every event of one stream with positions, times, actors and hashes",
		Example: "  livecore audit history order-ord_7qhe27sa3bmyqnawzivpgwesc7",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			recs, err := audit.History(cmd.Context(), s, args[0], audit.HistoryOptions{})
			if errors.Is(err, projections.ErrNotFound) {
				return fmt.Errorf("stream %q: no events", args[0])
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(recs)
			}
			fmt.Fprintf(out, "%-9s %-4s %-30s %-30s %-16s %s\n", "position", "ver", "type", "recorded at", "actor", "hash")
			for _, r := range recs {
				fmt.Fprintf(out, "%-9d %-4d %-30s %-30s %-16s %s\n", r.Position, r.Version, r.Type, r.RecordedAt.Format(time.RFC3339Nano), r.Actor, r.Hash.String()[:16])
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (full hashes, correlation and causation IDs)")
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var f storeFlags
	var from, to uint64
	var trusted []string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the hash chains and name the first bad position",
		Long: `verify recomputes every event's stream hash and global hash over a range of
positions and reports the first position where the history was edited,
deleted, reordered or truncated.

Truncation of the tail can only be seen against a head recorded elsewhere:
pass the checkpoint printed by the previous run ("position:hash", kept in
the finance team's records) with --trusted. On success verify prints a new
checkpoint to keep. Exit status 2 means a problem was found.`,
		Example: `  livecore audit verify
  livecore audit verify --trusted 120345:9f2c...e1 --from 100000`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			opts := audit.VerifyOptions{From: from, To: to, Streams: s}
			for _, t := range trusted {
				cp, err := audit.ParseCheckpoint(t)
				if err != nil {
					return fmt.Errorf("--trusted %q: %w", t, err)
				}
				opts.Trusted = append(opts.Trusted, cp)
			}
			var bar *progressbar.ProgressBar
			if !quiet {
				opts.Progress = func(p audit.Progress) {
					if bar == nil {
						bar = progressbar.NewOptions64(int64(p.Total), progressbar.OptionSetDescription("verifying"),
							progressbar.OptionSetWriter(cmd.ErrOrStderr()), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
							progressbar.OptionSetItsString("events"), progressbar.OptionThrottle(100*time.Millisecond))
					}
					_ = bar.Set64(int64(p.Done))
				}
			}
			rep, err := audit.Verify(cmd.Context(), s, opts)
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(cmd.ErrOrStderr())
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "checked positions %d-%d (head %d): %d events in %d streams, %.0f events/s\n",
				rep.From, rep.To, rep.Head, rep.Events, rep.Streams, rep.EventsPerSecond())
			if !rep.OK() {
				fmt.Fprintf(out, "FAILED: first bad position %d: %s (%s)\n", rep.Problem.Position, rep.Problem.Reason, rep.Problem.Kind)
				os.Exit(2)
			}
			fmt.Fprintf(out, "OK. Keep this checkpoint for the next run: %s\n", rep.Last)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().Uint64Var(&from, "from", 0, "first position (default 1)")
	cmd.Flags().Uint64Var(&to, "to", 0, "last position (default the head)")
	cmd.Flags().StringSliceVar(&trusted, "trusted", nil, "trusted checkpoint position:hash from an earlier run (repeatable)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar")
	return cmd
}

func newAuditAsOfCmd() *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "as-of <stream> <time|position>",
		Short: "A stream's state as it was at a time or a global position",
		Example: `  livecore audit as-of order-ord_7qhe27sa3bmyqnawzivpgwesc7 2026-11-26T09:26:44Z
  livecore audit as-of plan-ord_x 1200`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var at audit.At
			if p, err := strconv.ParseUint(args[1], 10, 64); err == nil {
				at.Position = p
			} else if t, err := time.Parse(time.RFC3339Nano, args[1]); err == nil {
				at.Time = t
			} else {
				return fmt.Errorf("%q is neither a position nor an RFC 3339 time", args[1])
			}
			s, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			st, err := audit.AsOf(cmd.Context(), s, stack.NewRegistry(), args[0], at, audit.AsOfOptions{})
			if err != nil {
				return err
			}
			if st.Version == 0 {
				return fmt.Errorf("stream %s had no events yet at %s", args[0], args[1])
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"stream": st.Stream, "tenant": st.Tenant, "version": st.Version,
				"position": st.Position, "recorded_at": st.RecordedAt, "state": st.View})
		},
	}
	f.register(cmd)
	return cmd
}

func newAuditExportCmd() *cobra.Command {
	var f storeFlags
	var outPath, tenant string
	var bom bool
	cmd := &cobra.Command{
		Use:   "export events|journal",
		Short: "Export events or the double-entry journal as CSV",
		Long: `export writes UTF-8 CSV with a header row, ISO 8601 UTC times and amounts as
plain decimal strings with a currency column, ready for a spreadsheet
(--bom for Excel). The journal comes from the read-model database.`,
		Example: `  livecore audit export events --out events.csv
  livecore audit export journal --tenant demo --bom --out journal.csv`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"events", "journal"},
		RunE: func(cmd *cobra.Command, args []string) error {
			var w io.Writer = cmd.OutOrStdout()
			if outPath != "" && outPath != "-" {
				file, err := os.Create(outPath)
				if err != nil {
					return err
				}
				defer file.Close()
				w = file
			}
			opts := audit.ExportOptions{Tenant: tenant, BOM: bom}
			var n int
			switch args[0] {
			case "events":
				s, err := f.open(cmd.Context())
				if err != nil {
					return err
				}
				defer s.Close()
				if n, err = audit.ExportEvents(cmd.Context(), s, w, opts); err != nil {
					return err
				}
			case "journal":
				db, err := projections.OpenSQLite(filepath.Join(f.dataDir, "readmodels.db"))
				if err != nil {
					return err
				}
				defer db.Close()
				if n, err = audit.ExportJournal(cmd.Context(), db, w, opts); err != nil {
					return err
				}
			default:
				return fmt.Errorf("export %q: want events or journal", args[0])
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "exported %d rows\n", n)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&outPath, "out", "-", "output file (- for stdout)")
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's rows")
	cmd.Flags().BoolVar(&bom, "bom", false, "write a UTF-8 byte-order mark (Excel)")
	return cmd
}

func newAuditReconcileCmd() *cobra.Command {
	var f storeFlags
	var tenant string
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Compare payment events with the journal and check the trial balance",
		Long: `reconcile compares, per payment, what the payment events say (authorized,
captured, released, refunded) with what the journal posted, up to the
journal's projected position, lists every difference and checks that the
trial balance nets to zero per currency. Comparing with the payment
provider's own records needs the provider's ledger; the finance API and the
Go function audit.Reconcile take one. Exit status 2 on any difference.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			db, err := projections.OpenSQLite(filepath.Join(f.dataDir, "readmodels.db"))
			if err != nil {
				return err
			}
			defer db.Close()
			rep, err := audit.Reconcile(cmd.Context(), s, stack.NewRegistry(), db, nil, audit.ReconcileOptions{Tenant: tenant})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "compared %d payments up to position %d: %d differences; trial balance nets to zero: %v\n",
				rep.Payments, rep.Position, len(rep.Differences), rep.TrialBalance.Nets())
			for _, d := range rep.Differences {
				fmt.Fprintf(out, "  %+v\n", d)
			}
			if !rep.OK() {
				os.Exit(2)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's payments")
	return cmd
}
