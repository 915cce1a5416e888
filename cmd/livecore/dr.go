package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/livecore/livecore/regions"
	"github.com/livecore/livecore/regions/drill"
	"github.com/livecore/livecore/regions/failover"
	"github.com/livecore/livecore/regions/node"
)

// newDRCmd is `livecore dr`: regions, failover and DR drills.
func newDRCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dr",
		Short: "Regions, failover and disaster-recovery drills",
		Long: `Regions, failover and disaster-recovery drills (runbook: docs/dr.md).

  livecore dr drill      run a DR drill on this machine: N regions as OS processes,
                         load, SIGKILL/SIGSTOP of the owner, forced failover,
                         failback, checks; Markdown + JSON report
  livecore dr failover   move homes between regions: planned (default), --forced
                         (owner unreachable) or --failback
  livecore dr status     ownership, epochs and each region's replication state
  livecore dr node       run one region's stack (what the drill spawns)`,
	}
	cmd.AddCommand(newDRDrillCmd(), newDRFailoverCmd(), newDRStatusCmd(), newDRNodeCmd(), newDRBrokerCmd())
	return cmd
}

func newDRDrillCmd() *cobra.Command {
	var (
		c          drill.Config
		durability string
		fault      string
		brokers    string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Run a DR drill: kill or pause the owning region under load, fail over, fail back, check",
		Long: `Run a disaster-recovery drill on this machine and report.

The drill starts a Kafka broker as a process of its own (the embedded kfake
broker persisted to the work dir; or uses --brokers, e.g. the real Kafka from
scripts/testenv/kafka.sh), a control plane (a SQLite file in the work dir, or
--control-plane postgres://...), a shared payment-provider sandbox, and
--regions region processes ("livecore dr node": each the whole product, with
its API, read models, Temporal and sagas) on loopback, r1..rN, each the
preferred owner of one home h1..hN. It creates a "drill" tenant (API keys in
the control plane, one SKU per home, stocked). Then:

  1. checkout load through the HTTP API (--rate orders/s from --workers
     clients: place, then card checkout, with Idempotency-Keys; clients follow
     421 redirects and re-route around dead regions) for --warmup;
  2. --fault kill: SIGKILL the --victim's process; --fault pause: SIGSTOP it
     (it keeps its lease in memory: the split-brain test);
  3. detect it down (3 failed health checks), forced failover of its homes to
     --target: wait out its lease, fence its Kafka bridge, cut at its final
     checkpoint, catch the target up, promote it;
  4. keep the load on for --after-failover; with --fault pause, SIGCONT the
     victim and send it direct writes (all must be refused), then stop it;
  5. restart the victim: it truncates its log to the cut and writes the loss
     report (what was not replicated); it catches up;
  6. planned failback of every home to its preferred region; load for
     --after-failback; stop the load; wait for replication and sagas (--settle);
  7. check and report: acknowledged orders lost (sync: 0; async: equal to the
     acknowledged writes in the loss report), duplicate orders and charges,
     writes by fenced owners accepted (0), sagas resumed/completed, RTO, RPO,
     hash heads equal across regions, every region's hash chains.

The report is printed (Markdown, or JSON with --json) and written to
<work-dir>/report.md and report.json; process logs are in the work dir. The
exit status is non-zero if any promise broke.`,
		Example: `  livecore dr drill
  livecore dr drill --durability sync --fault pause
  livecore dr drill --durability async --bridge-max-delay 300ms --rate 100 --warmup 20s --after-failover 20s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if c.Durability, err = regions.ParseMode(durability); err != nil {
				return err
			}
			c.Fault = drill.Fault(fault)
			if brokers != "" {
				c.Brokers = strings.Split(brokers, ",")
			}
			if c.Exec, err = drill.SelfExec(); err != nil {
				return err
			}
			c.Out = cmd.ErrOrStderr()
			c.Logger = slog.Default()
			rep, err := drill.Run(cmd.Context(), c)
			if rep != nil {
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					enc.Encode(rep)
				} else {
					fmt.Fprint(cmd.OutOrStdout(), rep.Markdown())
				}
			}
			if err != nil {
				return err
			}
			if !rep.OK() {
				return fmt.Errorf("drill: promises broken: %s", rep.Verdict())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.Regions, "regions", 3, "number of region processes (r1..rN, each preferring home h1..hN), 2-9")
	f.StringVar(&durability, "durability", "async", "durability mode of every region: async (ack after local fsync) or sync (ack after the Kafka commit)")
	f.StringVar(&fault, "fault", "kill", "what happens to the victim: kill (SIGKILL) or pause (SIGSTOP, then SIGCONT: split brain)")
	f.StringVar(&c.Victim, "victim", "r1", "region that fails")
	f.StringVar(&c.Target, "target", "r2", "region the victim's homes fail over to")
	f.Float64Var(&c.Rate, "rate", 40, "offered load in orders/s (each order: a placement and a checkout)")
	f.IntVar(&c.Workers, "workers", 24, "concurrent clients")
	f.DurationVar(&c.Warmup, "warmup", 3*time.Second, "load before the fault")
	f.DurationVar(&c.AfterFailover, "after-failover", 3*time.Second, "load on the new owner before the victim comes back")
	f.DurationVar(&c.AfterFailback, "after-failback", 2*time.Second, "load after the failback")
	f.DurationVar(&c.LeaseTTL, "lease-ttl", 3*time.Second, "ownership lease TTL (a forced failover waits it out: the RTO's largest part)")
	f.DurationVar(&c.BridgeMaxDelay, "bridge-max-delay", 20*time.Millisecond, "regions' Kafka bridge batching window (async mode: the loss window)")
	f.BoolVar(&c.FaultWhenUnpublished, "fault-when-unpublished", false, "aim the fault at a moment when the victim has events not yet committed to Kafka (async worst case)")
	f.DurationVar(&c.PSPLatency, "psp-latency", 200*time.Millisecond, "payment provider answer time (keeps checkouts in flight at the fault)")
	f.DurationVar(&c.Settle, "settle", time.Minute, "how long to wait for replication and sagas to finish after the load")
	f.StringVar(&brokers, "brokers", "", "Kafka seed brokers host:port,... (default: start an embedded broker process)")
	f.StringVar(&c.ControlPlane, "control-plane", "", "control-plane DSN: postgres://... or sqlite:PATH (default: SQLite in the work dir)")
	f.StringVar(&c.WorkDir, "work-dir", "", "data, logs and report (default: a new temporary directory, kept)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON instead of Markdown")
	return cmd
}

// drTarget is how the failover and status commands reach the regions.
type drTarget struct {
	controlPlane string
	topology     string
	brokers      string
	namespace    string
}

func (t *drTarget) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&t.controlPlane, "control-plane", os.Getenv("LIVECORE_CONTROL_PLANE"), "control-plane DSN: postgres://... or sqlite:PATH (env LIVECORE_CONTROL_PLANE)")
	f.StringVar(&t.topology, "topology", os.Getenv("LIVECORE_TOPOLOGY"), "topology JSON file: {regions:[{name,url}], homes:[{name,region,markets}]} (env LIVECORE_TOPOLOGY)")
	f.StringVar(&t.brokers, "brokers", os.Getenv("LIVECORE_KAFKA_BROKERS"), "Kafka seed brokers host:port,... (env LIVECORE_KAFKA_BROKERS)")
	f.StringVar(&t.namespace, "kafka-namespace", "", "prefix of the regions' topics and transactional IDs (as given to the nodes)")
}

func (t *drTarget) open(ctx context.Context) (*regions.ControlPlane, regions.Topology, error) {
	var topo regions.Topology
	if t.controlPlane == "" || t.topology == "" {
		return nil, topo, errors.New("--control-plane and --topology are required")
	}
	if err := drill.ReadSpec(t.topology, &topo); err != nil {
		return nil, topo, fmt.Errorf("topology %s: %w", t.topology, err)
	}
	if err := topo.Validate(); err != nil {
		return nil, topo, err
	}
	cp, err := regions.OpenControlPlane(ctx, t.controlPlane)
	return cp, topo, err
}

func newDRFailoverCmd() *cobra.Command {
	var (
		t        drTarget
		from, to string
		homes    []string
		forced   bool
		failback bool
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Move homes to another region: planned, --forced, or --failback",
		Long: `Move the ownership of homes between regions (runbook: docs/dr.md).

Planned (default; both regions up): the old owner drains the homes (new writes
refused, writes in flight finish), waits until its bridge has committed its
head to Kafka, releases the homes at that head (the cut); the epoch moves to
--to, which applies everything the old owner published and takes the leases.
Nothing is lost in either durability mode.

--forced (the old owner is unreachable): wait until its lease has expired in
the control plane, move the epoch (its renewals fail from then on), fence its
Kafka bridge (its open transaction is settled, it can never commit again),
cut at its final Kafka checkpoint, let --to apply everything up to the cut,
promote it. Events the old owner wrote after the cut are reported by it as
not replicated when it comes back (it truncates them from its log); in sync
mode none of them was acknowledged.

--failback: planned moves of every home that is not on its preferred region
back to it.`,
		Example: `  livecore dr failover --from eu-west --to us-east --control-plane postgres://... --topology topo.json --brokers k1:9092
  livecore dr failover --forced --from eu-west --to us-east ...
  livecore dr failover --failback ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cp, topo, err := t.open(ctx)
			if err != nil {
				return err
			}
			defer cp.Close()
			if t.brokers == "" {
				return errors.New("--brokers is required")
			}
			ctl, err := failover.New(failover.Config{ControlPlane: cp, Topology: topo, Brokers: strings.Split(t.brokers, ","), KafkaNamespace: t.namespace})
			if err != nil {
				return err
			}
			var reps []*failover.Report
			switch {
			case failback:
				reps, err = ctl.Failback(ctx)
			case from == "" || to == "":
				return errors.New("--from and --to are required (or --failback)")
			case forced:
				var r *failover.Report
				r, err = ctl.Forced(ctx, from, to, homes)
				reps = append(reps, r)
			default:
				var r *failover.Report
				r, err = ctl.Planned(ctx, from, to, homes)
				reps = append(reps, r)
			}
			drPrintFailovers(cmd.OutOrStdout(), reps, asJSON)
			return err
		},
	}
	t.register(cmd)
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "region that owns the homes now")
	f.StringVar(&to, "to", "", "region that takes them")
	f.StringSliceVar(&homes, "home", nil, "homes to move (default: every home --from owns)")
	f.BoolVar(&forced, "forced", false, "the old owner is unreachable: wait out its lease, fence it, cut at its Kafka checkpoint")
	f.BoolVar(&failback, "failback", false, "move every home back to its preferred region (planned)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func drPrintFailovers(w io.Writer, reps []*failover.Report, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(reps)
		return
	}
	for _, r := range reps {
		if r == nil {
			continue
		}
		fmt.Fprintf(w, "%s failover %s -> %s: %.3fs\n", r.Kind, r.From, r.To, r.Seconds)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, s := range r.Steps {
			fmt.Fprintf(tw, "  %s\t%.3fs\t%s\n", s.Name, s.Seconds, s.Detail)
		}
		tw.Flush()
		for _, m := range r.Moves {
			fmt.Fprintf(w, "  home %s: epoch %d -> %d, cut at %d\n", m.Home, m.FromEpoch, m.ToEpoch, m.Cut)
		}
		if r.Unreplicated != "" {
			fmt.Fprintf(w, "  not replicated: %s\n", r.Unreplicated)
		}
	}
}

func newDRStatusCmd() *cobra.Command {
	var (
		t      drTarget
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show ownership, epochs and every region's replication state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cp, topo, err := t.open(ctx)
			if err != nil {
				return err
			}
			defer cp.Close()
			owners, err := cp.Owners(ctx)
			if err != nil {
				return err
			}
			epochs, err := cp.Epochs(ctx)
			if err != nil {
				return err
			}
			hc := &http.Client{Timeout: 3 * time.Second}
			nodes := map[string]*node.Status{}
			for _, r := range topo.Regions {
				var st node.Status
				if err := drGetJSON(ctx, hc, strings.TrimRight(r.URL, "/")+"/v1/dr/status", &st); err == nil {
					nodes[r.Name] = &st
				}
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"owners": owners, "epochs": epochs, "regions": nodes})
			}
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "HOME\tEPOCH\tOWNER\tSTATE\tLEASE")
			for _, o := range owners {
				lease := "not held"
				if o.Holder != "" {
					lease = fmt.Sprintf("%s, %+dms", o.Holder, o.LeaseExpiresMs-o.NowMs)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", o.Home, o.Epoch, o.Owner, o.State, lease)
			}
			fmt.Fprintln(tw, "\nHOME\tEPOCH\tOWNER\tINTERVAL\tREASON")
			for _, e := range epochs {
				iv := "never started"
				if e.StartPos != nil {
					iv = fmt.Sprintf("(%d, ", *e.StartPos)
					if e.EndPos != nil {
						iv += fmt.Sprintf("%d]", *e.EndPos)
					} else {
						iv += "open)"
					}
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", e.Home, e.Epoch, e.Owner, iv, e.Reason)
			}
			fmt.Fprintln(tw, "\nREGION\tSTATE\tHEAD\tPUBLISHED\tREPLICATION (peer: lag events/seconds, rejected)")
			for _, r := range topo.Regions {
				st := nodes[r.Name]
				if st == nil {
					fmt.Fprintf(tw, "%s\tunreachable\t\t\t\n", r.Name)
					continue
				}
				var reps []string
				for _, p := range st.Peers {
					reps = append(reps, fmt.Sprintf("%s: %d/%.2fs, %d", p.Peer, p.LagEvents, p.LagSeconds, p.Rejected))
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", r.Name, st.State, st.Head, st.Published, strings.Join(reps, "; "))
			}
			return tw.Flush()
		},
	}
	t.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func drGetJSON(ctx context.Context, hc *http.Client, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func newDRNodeCmd() *cobra.Command {
	var (
		spec       string
		s          drill.NodeSpec
		topology   string
		brokers    string
		durability string
	)
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run one region's whole stack: event store, Kafka bridge, replicator, ownership lease, API, read models, Temporal and sagas",
		Long: `Run one region: the Pebble event store (<data-dir>/events), the exactly-once
Kafka bridge (topics <kafka-namespace><region>.livecore.<category>.v1), the
replicator of every other region's topics, the ownership lease keeper and the
fenced appender, and the product over them: the HTTP API (docs/api.md), the
read models, the embedded Temporal server with the saga worker and dispatcher
(sagas only for the homes this region holds). Extra routes: /healthz,
/v1/route, /v1/dr/* and /metrics (see regions/node).

API keys, payment tokens and drop terms are kept in the control-plane
database (every region authenticates the same keys); create keys there with
'livecore keys create --db <control-plane DSN>' or the drill's provisioning.

On start it reconciles its log with the control plane: events it wrote beyond
a cut (a forced failover happened while it was down) are moved to
<data-dir>/quarantine-*/ and listed in unreplicated.json (the loss report).

Configure with --spec FILE (JSON, what the drill writes) or with flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if spec != "" {
				if err := drill.ReadSpec(spec, &s); err != nil {
					return err
				}
			} else {
				if topology == "" {
					return errors.New("--spec or --topology is required")
				}
				if err := drill.ReadSpec(topology, &s.Topology); err != nil {
					return fmt.Errorf("topology %s: %w", topology, err)
				}
				if brokers != "" {
					s.Brokers = strings.Split(brokers, ",")
				}
				var err error
				if s.Durability, err = regions.ParseMode(durability); err != nil {
					return err
				}
			}
			err := drill.RunNode(cmd.Context(), s, slog.Default())
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec, "spec", "", "JSON spec file (drill.NodeSpec); overrides the other flags")
	f.StringVar(&s.Region, "region", "", "this region's name (in the topology)")
	f.StringVar(&topology, "topology", os.Getenv("LIVECORE_TOPOLOGY"), "topology JSON file (env LIVECORE_TOPOLOGY)")
	f.StringVar(&s.DataDir, "data-dir", "data/region", "data directory")
	f.StringVar(&s.Listen, "listen", "", "HTTP address (default: host:port of this region's URL in the topology)")
	f.StringVar(&s.ControlPlane, "control-plane", os.Getenv("LIVECORE_CONTROL_PLANE"), "control-plane DSN (env LIVECORE_CONTROL_PLANE)")
	f.StringVar(&brokers, "brokers", os.Getenv("LIVECORE_KAFKA_BROKERS"), "Kafka seed brokers (env LIVECORE_KAFKA_BROKERS)")
	f.StringVar(&s.KafkaNamespace, "kafka-namespace", "", "prefix of topics and transactional IDs")
	f.StringVar(&durability, "durability", "async", "async or sync")
	f.DurationVar(&s.LeaseTTL, "lease-ttl", 3*time.Second, "ownership lease TTL")
	f.DurationVar(&s.BridgeMaxDelay, "bridge-max-delay", 20*time.Millisecond, "Kafka bridge batching window")
	f.StringVar(&s.PSPURL, "psp-url", "", "payment provider URL (default: an in-process sandbox)")
	return cmd
}

// newDRBrokerCmd is the drill's Kafka broker process (hidden).
func newDRBrokerCmd() *cobra.Command {
	var spec string
	cmd := &cobra.Command{
		Use:    "broker",
		Short:  "Run the drill's embedded Kafka broker as a process of its own",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var s drill.BrokerSpec
			if err := drill.ReadSpec(spec, &s); err != nil {
				return err
			}
			err := drill.RunBroker(cmd.Context(), s, slog.Default())
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&spec, "spec", "", "JSON spec file (drill.BrokerSpec)")
	return cmd
}
