package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/regions"
	"github.com/livecore/livecore/regions/failover"
	"github.com/livecore/livecore/regions/node"
)

// ReportConfig is the drill's configuration as reported.
type ReportConfig struct {
	Regions         int     `json:"regions"`
	Durability      string  `json:"durability"`
	Fault           Fault   `json:"fault"`
	Victim          string  `json:"victim"`
	Target          string  `json:"target"`
	Rate            float64 `json:"rate_orders_per_second"`
	Workers         int     `json:"workers"`
	WarmupS         float64 `json:"warmup_seconds"`
	AfterFailoverS  float64 `json:"after_failover_seconds"`
	AfterFailbackS  float64 `json:"after_failback_seconds"`
	LeaseTTLSeconds float64 `json:"lease_ttl_seconds"`
}

func reportConfig(c Config) ReportConfig {
	return ReportConfig{Regions: c.Regions, Durability: c.Durability.String(), Fault: c.Fault, Victim: c.Victim, Target: c.Target,
		Rate: c.Rate, Workers: c.Workers, WarmupS: c.Warmup.Seconds(), AfterFailoverS: c.AfterFailover.Seconds(),
		AfterFailbackS: c.AfterFailback.Seconds(), LeaseTTLSeconds: c.LeaseTTL.Seconds()}
}

// RegionFinal is one region's log at the end.
type RegionFinal struct {
	Region     string `json:"region"`
	Events     int    `json:"events"`
	Streams    int    `json:"streams"`
	ChainsOK   bool   `json:"chains_ok"`
	ChainError string `json:"chain_error,omitempty"`
}

// Report is a drill's outcome.
type Report struct {
	Config   ReportConfig     `json:"config"`
	Topology regions.Topology `json:"topology"`
	Brokers  []string         `json:"brokers"`
	WorkDir  string           `json:"work_dir"`
	Started  time.Time        `json:"started"`
	Finished time.Time        `json:"finished"`
	Seconds  float64          `json:"seconds"`
	FaultAt  time.Time        `json:"fault_at"`
	Aborted  string           `json:"aborted,omitempty"`

	// Orders.
	AckedPlaces        int `json:"acked_places"`
	AckedCheckouts     int `json:"acked_checkouts"`
	Unacknowledged     int `json:"unacknowledged_orders"` // given up by the client (never acknowledged)
	LostAckedPlaces    int `json:"lost_acked_places"`
	LostAckedCheckouts int `json:"lost_acked_checkouts"`
	LostAcked          int `json:"lost_acked_writes"`
	Duplicates         int `json:"duplicate_orders"`
	Charges            int `json:"charges"`
	DuplicateCharges   int `json:"duplicate_charges"`
	// OrphanCharges: authorizations for checkouts the final history does
	// not have (async mode: driven before the checkout was replicated,
	// then lost; the hold expires or is voided by reconciliation).
	OrphanCharges int `json:"orphan_charges"`

	// Sagas (checkouts).
	SagasCompleted int `json:"sagas_completed"`
	SagasResumed   int `json:"sagas_resumed"` // started in one region, completed by another
	OpenSagas      int `json:"open_sagas"`

	// Fencing.
	FencedWritesAccepted int            `json:"fenced_writes_accepted"`
	RejectedStale        uint64         `json:"replicas_rejected"`
	ProbeWrites          int            `json:"probe_writes,omitempty"`
	ProbeAccepted        int            `json:"probe_writes_accepted,omitempty"`
	ProbeAnswers         map[string]int `json:"probe_answers,omitempty"`
	AcksByFencedOwner    int            `json:"acks_by_fenced_owner"`

	// Loss accounting (forced failover).
	UnreplicatedEvents int `json:"unreplicated_events"`
	UnreplicatedOrders int `json:"unreplicated_orders"`
	ReportedAcked      int `json:"unreplicated_acked_writes"`
	LostNotReported    int `json:"lost_not_reported"`

	// Objectives.
	RTOSeconds         float64   `json:"rto_seconds"`
	RTOFrom            time.Time `json:"rto_from"`
	RTOTo              time.Time `json:"rto_to"`
	FailbackGapSeconds float64   `json:"failback_gap_seconds"`
	// RPO: acknowledged writes lost, and the time from the old owner's
	// last replicated event (at the cut) to the last acknowledged write
	// lost. Unacknowledged writes beyond the cut are in
	// UnreplicatedEvents, not in the RPO.
	RPOEvents  int     `json:"rpo_events"`
	RPOSeconds float64 `json:"rpo_seconds"`

	// Consistency.
	Streams        int           `json:"streams"`
	HashHeadsEqual bool          `json:"hash_heads_equal"`
	HeadMismatches int           `json:"head_mismatches"`
	Regions        []RegionFinal `json:"regions"`

	Failovers []*failover.Report `json:"failovers"`
	Nodes     []node.Status      `json:"nodes"`
	Timeline  []string           `json:"timeline"`
	Failures  []string           `json:"failures"`
}

func (r *Report) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// OK reports whether every promise held.
func (r *Report) OK() bool { return len(r.Failures) == 0 && r.Aborted == "" }

// Verdict is a one-line summary.
func (r *Report) Verdict() string {
	if r.OK() {
		return fmt.Sprintf("PASS: %d acked writes lost, %d duplicates, %d fenced writes accepted, RTO %.2fs, RPO %d events / %.3fs",
			r.LostAcked, r.Duplicates+r.DuplicateCharges, r.FencedWritesAccepted, r.RTOSeconds, r.RPOEvents, r.RPOSeconds)
	}
	return fmt.Sprintf("FAIL (%d): %s", len(r.Failures), strings.Join(r.Failures[:min(3, len(r.Failures))], "; "))
}

// cutTime records when the last event of the old owner that made it (the
// one at the cut) was written: RPO seconds are measured from it.
func (d *drill) cutTime(ctx context.Context, u *node.Unreplicated) {
	if len(u.Events) > 0 {
		d.cutAt = u.Events[0].RecordedAt
	}
	if u.Cut > 0 {
		var evs []event.Envelope
		if err := getJSON(ctx, d.hc, fmt.Sprintf("%s/v1/dr/events?from=%d&max=1", d.url(u.Region), u.Cut), &evs); err == nil && len(evs) == 1 {
			d.cutAt = evs[0].RecordedAt
		}
	}
}

// finish applies the thresholds that depend on the mode.
func (r *Report) finish(cfg Config) {
	r.RPOEvents = r.LostAcked
	if r.FencedWritesAccepted > 0 {
		r.fail("%d writes by fenced owners accepted", r.FencedWritesAccepted)
	}
	if !r.HashHeadsEqual {
		r.fail("hash heads differ across regions (%d streams)", r.HeadMismatches)
	}
	if r.Duplicates > 0 || r.DuplicateCharges > 0 {
		r.fail("%d duplicate orders, %d duplicate charges", r.Duplicates, r.DuplicateCharges)
	}
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "# DR drill: %s\n\n", verdict)
	fmt.Fprintf(&b, "%d regions as OS processes, durability **%s**, fault **%s** of `%s` (homes %v), failover to `%s`, failback to `%s`. %.0f orders/s offered by %d clients; lease TTL %.1fs. Took %.1fs. Work dir `%s`.\n\n",
		r.Config.Regions, r.Config.Durability, r.Config.Fault, r.Config.Victim, r.Topology.HomesPreferring(r.Config.Victim), r.Config.Target, r.Config.Victim,
		r.Config.Rate, r.Config.Workers, r.Config.LeaseTTLSeconds, r.Seconds, r.WorkDir)
	b.WriteString("| promise / measure | value | must hold |\n|---|---|---|\n")
	row := func(k string, v any, must string) { fmt.Fprintf(&b, "| %s | %v | %s |\n", k, v, must) }
	lostMust := "= acknowledged writes in the loss report"
	if r.Config.Durability == "sync" {
		lostMust = "0"
	}
	row("acknowledged orders placed / checked out", fmt.Sprintf("%d / %d", r.AckedPlaces, r.AckedCheckouts), "")
	row("acknowledged writes lost", r.LostAcked, lostMust)
	row("acknowledged writes in the loss report", r.ReportedAcked, "")
	row("lost but not reported", r.LostNotReported, "0")
	row("duplicate orders", r.Duplicates, "0")
	row("charges / duplicate charges / charges for lost checkouts", fmt.Sprintf("%d / %d / %d", r.Charges, r.DuplicateCharges, r.OrphanCharges),
		map[bool]string{true: "0 duplicates, 0 for lost checkouts", false: "0 duplicates"}[r.Config.Durability == "sync"])
	row("writes by fenced owners accepted", r.FencedWritesAccepted, "0")
	if r.Config.Fault == Pause {
		row("direct writes to the woken old owner accepted", fmt.Sprintf("%d of %d %v", r.ProbeAccepted, r.ProbeWrites, r.ProbeAnswers), "0")
		row("client writes acknowledged by the woken old owner", r.AcksByFencedOwner, "0")
	}
	row("replicas rejected (stale epoch, conflict)", r.RejectedStale, "")
	row("sagas completed / resumed in another region / open", fmt.Sprintf("%d / %d / %d", r.SagasCompleted, r.SagasResumed, r.OpenSagas), "0 open")
	row("RTO (forced failover: no accepted write for the failed homes)", fmt.Sprintf("%.2fs", r.RTOSeconds), "<= 10s target")
	row("failback gap (planned)", fmt.Sprintf("%.2fs", r.FailbackGapSeconds), "")
	row("RPO: acknowledged writes lost / seconds", fmt.Sprintf("%d / %.3fs", r.RPOEvents, r.RPOSeconds), map[bool]string{true: "0", false: "measured"}[r.Config.Durability == "sync"])
	row("unreplicated events, acknowledged or not (old owner's loss report)", fmt.Sprintf("%d (%d orders)", r.UnreplicatedEvents, r.UnreplicatedOrders), "")
	row("streams; hash heads equal across regions", fmt.Sprintf("%d; %v", r.Streams, r.HashHeadsEqual), "true")
	b.WriteString("\n| region | events | streams | hash chains |\n|---|---|---|---|\n")
	for _, rg := range r.Regions {
		ok := "verified"
		if !rg.ChainsOK {
			ok = "BROKEN: " + rg.ChainError
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", rg.Region, rg.Events, rg.Streams, ok)
	}
	for _, f := range r.Failovers {
		if f == nil {
			continue
		}
		fmt.Fprintf(&b, "\n### %s failover %s -> %s: %.2fs\n\n| step | seconds | detail |\n|---|---|---|\n", f.Kind, f.From, f.To, f.Seconds)
		for _, s := range f.Steps {
			fmt.Fprintf(&b, "| %s | %.3f | %s |\n", s.Name, s.Seconds, s.Detail)
		}
	}
	if len(r.Nodes) > 0 {
		b.WriteString("\n| region | head | published | rejected replicas | sagas started / re-driven / terminated | fence refused / lost |\n|---|---|---|---|---|---|\n")
		for _, n := range r.Nodes {
			var rej uint64
			for _, p := range n.Peers {
				rej += p.Rejected
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d / %d / %d | %d / %d |\n", n.Region, n.Head, n.Published, rej, n.Sagas.Started, n.Sagas.Redriven, n.Sagas.Terminated, n.Fence.Refused, n.Fence.Lost)
		}
	}
	b.WriteString("\n### Timeline\n\n```\n")
	for _, l := range r.Timeline {
		b.WriteString(l + "\n")
	}
	b.WriteString("```\n")
	if len(r.Failures) > 0 {
		b.WriteString("\n### Broken promises\n\n")
		sort.Strings(r.Failures)
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	return b.String()
}

func (r *Report) write(dir string) error {
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), j, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644)
}

func postJSON(ctx context.Context, hc *http.Client, url string, in, out any) error {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %d: %s", url, resp.StatusCode, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}
