// Package drill runs a disaster-recovery drill against real OS processes:
// a Kafka broker process, N region processes (regions/node) on loopback,
// a shared payment provider, a control plane; it drives checkout load,
// kills (SIGKILL) or pauses (SIGSTOP) the owning region, fails over
// (forced), keeps the load on, brings the old region back, fails back
// (planned), and checks what the promises say:
//
//   - acknowledged orders lost (sync mode: 0; async mode: measured, and
//     equal to what the old owner reported as not replicated),
//   - duplicates (orders placed or confirmed twice, orders charged twice),
//   - writes by fenced owners accepted anywhere (0), and, for a pause,
//     writes the paused owner acknowledged after it woke up (0),
//   - sagas resumed in the new owner and all completed,
//   - RTO (seconds without an accepted write for the failed homes),
//   - RPO (events and seconds not replicated),
//   - hash heads equal across regions (and every region's chains verify).
//
// The report is Markdown and JSON; Report.OK is false when a promise broke.
package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/regions"
	"github.com/livecore/livecore/regions/failover"
	"github.com/livecore/livecore/regions/node"
)

// Fault is what happens to the victim region.
type Fault string

const (
	// Kill: SIGKILL, then a forced failover; the region is restarted later.
	Kill Fault = "kill"
	// Pause: SIGSTOP (the process keeps its lease in memory and its
	// sockets open), a forced failover, then SIGCONT: the split-brain
	// test; the region is probed with direct writes, then restarted.
	Pause Fault = "pause"
)

// Config configures a drill. Zero fields get the defaults noted.
type Config struct {
	// Regions is the number of region processes. Default 3 (minimum 2).
	Regions int
	// Durability of every region. Default async.
	Durability regions.Mode
	// Fault: Kill (default) or Pause.
	Fault Fault
	// Victim is the region that fails (default "r1"); Target the region
	// its homes fail over to (default "r2").
	Victim, Target string
	// Rate is the offered load in orders/s (each order is a placement and
	// a checkout). Default 40.
	Rate float64
	// Workers is the number of concurrent clients. Default 24.
	Workers int
	// Warmup is the load before the fault; AfterFailover the load on the
	// new owner before the victim comes back; AfterFailback the load after
	// the failback. Defaults 3 s, 3 s, 2 s.
	Warmup, AfterFailover, AfterFailback time.Duration
	// LeaseTTL of the regions' ownership leases. Default 3 s.
	LeaseTTL time.Duration
	// Brokers of an existing Kafka cluster; empty: the drill starts its
	// own broker process (embedded kfake persisted to the work dir).
	Brokers []string
	// ControlPlane DSN; empty: a SQLite file in the work dir.
	ControlPlane string
	// WorkDir holds data, logs, specs and the report. Default: a new
	// temporary directory (kept).
	WorkDir string
	// Exec starts children (see SelfExec). Required.
	Exec Exec
	// Settle bounds the wait for replication and sagas to finish after
	// the load stops. Default 60 s.
	Settle time.Duration
	// BridgeMaxDelay is the regions' bridge batching window (node
	// default 20 ms). In async mode it is the loss window a kill can land
	// in; widen it to make the loss visible.
	BridgeMaxDelay time.Duration
	// FaultWhenUnpublished aims the fault at a moment when the victim has
	// events its bridge has not committed to Kafka yet (polled every 5 ms,
	// up to 10 s after the warmup): the async worst case, so the loss path
	// (cut, reconcile, loss report) is exercised.
	FaultWhenUnpublished bool
	// PSPLatency is how long the payment provider takes to answer, so
	// checkouts are in flight when the fault hits. Default 200 ms.
	PSPLatency time.Duration
	// Out receives progress lines. Default io.Discard.
	Out    io.Writer
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Regions == 0 {
		c.Regions = 3
	}
	if c.Fault == "" {
		c.Fault = Kill
	}
	if c.Victim == "" {
		c.Victim = "r1"
	}
	if c.Target == "" {
		c.Target = "r2"
	}
	if c.Rate == 0 {
		c.Rate = 40
	}
	if c.Workers == 0 {
		c.Workers = 24
	}
	if c.Warmup == 0 {
		c.Warmup = 3 * time.Second
	}
	if c.AfterFailover == 0 {
		c.AfterFailover = 3 * time.Second
	}
	if c.AfterFailback == 0 {
		c.AfterFailback = 2 * time.Second
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 3 * time.Second
	}
	if c.Settle == 0 {
		c.Settle = 60 * time.Second
	}
	if c.PSPLatency == 0 {
		c.PSPLatency = 200 * time.Millisecond
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.WorkDir == "" {
		d, err := os.MkdirTemp("", "livecore-drill-")
		if err != nil {
			return err
		}
		c.WorkDir = d
		return nil
	}
	// A drill starts from nothing: old region data or an old control
	// plane in the directory would be another history.
	if err := os.MkdirAll(c.WorkDir, 0o755); err != nil {
		return err
	}
	if ents, err := os.ReadDir(c.WorkDir); err != nil || len(ents) > 0 {
		return fmt.Errorf("drill: work dir %s must be empty or new (%d entries, %v)", c.WorkDir, len(ents), err)
	}
	return nil
}

// Validate reports a drill that cannot run.
func (c Config) Validate() error {
	switch {
	case c.Regions < 2 || c.Regions > 9:
		return fmt.Errorf("drill: %d regions: want 2-9", c.Regions)
	case c.Exec == nil:
		return errors.New("drill: Exec is required")
	case c.Fault != Kill && c.Fault != Pause:
		return fmt.Errorf("drill: fault %q: want kill or pause", c.Fault)
	case c.Victim == c.Target:
		return errors.New("drill: victim and target are the same region")
	case c.Rate <= 0 || c.Workers <= 0:
		return errors.New("drill: rate and workers must be positive")
	}
	return nil
}

type drill struct {
	cfg    Config
	topo   regions.Topology
	hc     *http.Client
	cp     *regions.ControlPlane
	ctl    *failover.Controller
	load   *load
	pspURL string
	nodes  map[string]*proc
	broker *proc
	ns     string

	unreplicated []*node.Unreplicated
	cutAt        time.Time // RecordedAt of the old owner's event at the cut
	rep          *Report
	start        time.Time
}

// Run runs the drill and returns its report (also written to
// WorkDir/report.md and report.json). err is set when the drill could not
// be carried out; a broken promise is a report that is not OK.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &drill{cfg: cfg, hc: &http.Client{Timeout: 30 * time.Second}, nodes: map[string]*proc{}, start: time.Now()}
	d.ns = fmt.Sprintf("drill-%d.", time.Now().UnixNano())
	d.rep = &Report{Config: reportConfig(cfg), WorkDir: cfg.WorkDir, Started: d.start}
	defer d.stopAll()
	err := d.run(ctx)
	if err != nil {
		d.rep.fail("drill aborted: %v", err)
		d.rep.Aborted = err.Error()
	}
	d.rep.Finished = time.Now()
	d.rep.Seconds = d.rep.Finished.Sub(d.start).Seconds()
	if werr := d.rep.write(cfg.WorkDir); werr != nil && err == nil {
		err = werr
	}
	return d.rep, err
}

func (d *drill) say(format string, args ...any) {
	line := fmt.Sprintf("[%6.2fs] ", time.Since(d.start).Seconds()) + fmt.Sprintf(format, args...)
	fmt.Fprintln(d.cfg.Out, line)
	d.rep.Timeline = append(d.rep.Timeline, line)
}

func (d *drill) run(ctx context.Context) error {
	cfg := d.cfg
	if slices.Index(regionNames(cfg.Regions), cfg.Victim) < 0 || slices.Index(regionNames(cfg.Regions), cfg.Target) < 0 {
		return fmt.Errorf("victim %s and target %s must be among %v", cfg.Victim, cfg.Target, regionNames(cfg.Regions))
	}
	ports, err := freePorts(cfg.Regions + 2)
	if err != nil {
		return err
	}
	for i, name := range regionNames(cfg.Regions) {
		d.topo.Regions = append(d.topo.Regions, regions.Region{Name: name, URL: "http://" + hostPort(ports[i])})
		d.topo.Homes = append(d.topo.Homes, regions.Home{Name: "h" + name[1:], Region: name})
	}
	d.rep.Topology = d.topo

	// The payment provider every region charges through.
	sb := sandbox.New(sandbox.Config{})
	ln, err := net.Listen("tcp", hostPort(ports[cfg.Regions]))
	if err != nil {
		return err
	}
	pspH := node.PSPHandler(sb)
	psp := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(cfg.PSPLatency)
		pspH.ServeHTTP(w, r)
	})}
	go psp.Serve(ln)
	defer psp.Close()
	d.pspURL = "http://" + ln.Addr().String()

	// Kafka.
	brokers := cfg.Brokers
	if len(brokers) == 0 {
		bport := ports[cfg.Regions+1]
		spec, err := writeSpec(cfg.WorkDir, "broker", BrokerSpec{Port: bport, Dir: filepath.Join(cfg.WorkDir, "kafka")})
		if err != nil {
			return err
		}
		d.broker = &proc{name: "broker", role: "broker", spec: spec, logPath: filepath.Join(cfg.WorkDir, "broker.log"), exec: cfg.Exec}
		if err := d.broker.start(); err != nil {
			return err
		}
		brokers = []string{hostPort(bport)}
		if err := waitTCP(ctx, brokers[0], 30*time.Second); err != nil {
			return fmt.Errorf("broker: %w (see %s)", err, d.broker.logPath)
		}
		d.say("kafka broker process started (pid %d) on %s", d.broker.pid(), brokers[0])
	} else {
		d.say("using kafka brokers %v", brokers)
	}
	d.rep.Brokers = brokers

	// Control plane.
	dsn := cfg.ControlPlane
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(cfg.WorkDir, "controlplane.db")
	}
	if d.cp, err = regions.OpenControlPlane(ctx, dsn); err != nil {
		return err
	}
	defer d.cp.Close()
	if err := d.cp.Bootstrap(ctx, d.topo); err != nil {
		return err
	}
	if d.ctl, err = failover.New(failover.Config{ControlPlane: d.cp, Topology: d.topo, Brokers: brokers, KafkaNamespace: d.ns, Logger: cfg.Logger}); err != nil {
		return err
	}

	// Regions.
	for _, r := range d.topo.Regions {
		spec, err := writeSpec(cfg.WorkDir, "node-"+r.Name, NodeSpec{
			Region: r.Name, Topology: d.topo, DataDir: filepath.Join(cfg.WorkDir, r.Name), ControlPlane: dsn,
			Brokers: brokers, KafkaNamespace: d.ns, Durability: cfg.Durability, LeaseTTL: cfg.LeaseTTL, PSPURL: d.pspURL,
			BridgeMaxDelay: cfg.BridgeMaxDelay,
		})
		if err != nil {
			return err
		}
		p := &proc{name: r.Name, role: "node", spec: spec, logPath: filepath.Join(cfg.WorkDir, r.Name+".log"), exec: cfg.Exec}
		if err := p.start(); err != nil {
			return err
		}
		d.nodes[r.Name] = p
	}
	for _, r := range d.topo.RegionNames() {
		if err := d.waitServing(ctx, r, 60*time.Second); err != nil {
			return err
		}
	}
	d.say("%d regions serving (%s), durability %s, each owning its home", cfg.Regions, strings.Join(d.topo.RegionNames(), ", "), cfg.Durability)

	// The drill's tenant: keys in the shared database (every region
	// authenticates them), one SKU per home, stocked at its owner.
	runID := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	d.load = newLoad(d.topo, cfg.Rate, cfg.Workers, runID)
	if err := d.provision(ctx); err != nil {
		return fmt.Errorf("provision the drill tenant: %w", err)
	}

	// Load.
	lctx, stopLoad := context.WithCancel(ctx)
	var lwg sync.WaitGroup
	lwg.Go(func() { d.load.run(lctx) })
	defer func() { stopLoad(); lwg.Wait() }()
	d.say("load on: %.0f orders/s offered by %d clients", cfg.Rate, cfg.Workers)
	if err := sleep(ctx, cfg.Warmup); err != nil {
		return err
	}

	victimHomes := d.topo.HomesPreferring(cfg.Victim)
	if cfg.FaultWhenUnpublished {
		hc := &http.Client{Timeout: time.Second}
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			var st node.Status
			if err := getJSON(ctx, hc, d.url(cfg.Victim)+"/v1/dr/status", &st); err == nil && st.Head > st.Published {
				d.say("%s has %d events not yet in Kafka (head %d, published %d)", cfg.Victim, st.Head-st.Published, st.Head, st.Published)
				break
			}
			if err := sleep(ctx, 5*time.Millisecond); err != nil {
				return err
			}
		}
	}
	// Fault.
	faultAt := time.Now()
	victim := d.nodes[cfg.Victim]
	if cfg.Fault == Kill {
		if err := victim.signal(syscall.SIGKILL); err != nil {
			return err
		}
		d.say("SIGKILL %s (pid %d), owner of %v", cfg.Victim, victim.pid(), victimHomes)
	} else {
		if err := victim.signal(syscall.SIGSTOP); err != nil {
			return err
		}
		d.say("SIGSTOP %s (pid %d), owner of %v: it keeps its lease in memory and its sockets open", cfg.Victim, victim.pid(), victimHomes)
	}
	d.rep.FaultAt = faultAt

	// Detection: the victim stops answering its health check.
	if err := d.waitDown(ctx, cfg.Victim, 30*time.Second); err != nil {
		return err
	}
	d.say("%s detected down after %.2fs", cfg.Victim, time.Since(faultAt).Seconds())
	fo, err := d.ctl.Forced(ctx, cfg.Victim, cfg.Target, nil)
	d.rep.Failovers = append(d.rep.Failovers, fo)
	if err != nil {
		return fmt.Errorf("forced failover: %w", err)
	}
	d.say("forced failover %s -> %s done in %.2fs (cut at %s's position %d)", cfg.Victim, cfg.Target, fo.Seconds, cfg.Victim, fo.Checkpoint)

	if err := sleep(ctx, cfg.AfterFailover); err != nil {
		return err
	}

	// Split brain probe: wake the old owner and write to it directly.
	if cfg.Fault == Pause {
		resumedAt := time.Now()
		if err := victim.signal(syscall.SIGCONT); err != nil {
			return err
		}
		d.say("SIGCONT %s: it wakes up believing it owns %v", cfg.Victim, victimHomes)
		time.Sleep(200 * time.Millisecond)
		var probes []directWrite
		for _, h := range victimHomes {
			probes = append(probes, d.load.probe(ctx, cfg.Victim, h, 20)...)
		}
		for _, p := range probes {
			d.rep.ProbeWrites++
			if p.Status/100 == 2 {
				d.rep.ProbeAccepted++
			}
		}
		d.rep.ProbeAnswers = countAnswers(probes)
		d.load.mu.Lock()
		for _, a := range d.load.acks {
			if a.Region == cfg.Victim && a.At.After(resumedAt) {
				for _, h := range victimHomes {
					if a.Home == h {
						d.rep.AcksByFencedOwner++
					}
				}
			}
		}
		d.load.mu.Unlock()
		d.say("direct writes to the woken old owner: %d sent, %d accepted (%v)", d.rep.ProbeWrites, d.rep.ProbeAccepted, d.rep.ProbeAnswers)
		if d.rep.ProbeAccepted > 0 || d.rep.AcksByFencedOwner > 0 {
			d.rep.fail("the fenced old owner accepted %d direct writes and acknowledged %d client writes after waking up", d.rep.ProbeAccepted, d.rep.AcksByFencedOwner)
		}
		victim.stop(10 * time.Second)
		d.say("%s stopped (SIGTERM) to restart it", cfg.Victim)
	}

	// The old region comes back: it reconciles its log with the cut.
	restartAt := time.Now()
	if err := victim.start(); err != nil {
		return err
	}
	if err := d.waitServing(ctx, cfg.Victim, 60*time.Second); err != nil {
		return err
	}
	st, err := d.status(ctx, cfg.Victim)
	if err != nil {
		return err
	}
	if st.Unreplicated != nil && st.Unreplicated.At.After(d.start) {
		d.unreplicated = append(d.unreplicated, st.Unreplicated)
		d.say("%s back after %.2fs: %d of its events were beyond the cut (not replicated), moved to %s",
			cfg.Victim, time.Since(restartAt).Seconds(), len(st.Unreplicated.Events), st.Unreplicated.Quarantine)
		d.cutTime(ctx, st.Unreplicated)
	} else {
		d.say("%s back after %.2fs: nothing beyond the cut (no loss)", cfg.Victim, time.Since(restartAt).Seconds())
	}
	// Let it catch up with everyone before it takes its homes back.
	for _, r := range d.topo.RegionNames() {
		if r == cfg.Victim {
			continue
		}
		var cu node.CatchUpResponse
		if err := postJSON(ctx, d.hc, d.url(cfg.Victim)+"/v1/dr/catchup", node.CatchUpRequest{Peer: r, Timeout: 60}, &cu); err != nil {
			return fmt.Errorf("%s catch up with %s: %w", cfg.Victim, r, err)
		}
	}
	d.say("%s caught up with every region", cfg.Victim)

	// Failback, planned.
	fbs, err := d.ctl.Failback(ctx)
	d.rep.Failovers = append(d.rep.Failovers, fbs...)
	if err != nil {
		return fmt.Errorf("failback: %w", err)
	}
	failbackAt := time.Now()
	for _, fb := range fbs {
		d.say("planned failback %s -> %s done in %.2fs", fb.From, fb.To, fb.Seconds)
	}
	if err := sleep(ctx, cfg.AfterFailback); err != nil {
		return err
	}
	stopLoad()
	lwg.Wait()
	loadEnd := time.Now()
	d.say("load off: %d requests sent, %d retried", d.load.sent.Load(), d.load.retries.Load())

	// RTO: forced failover and planned failback outages of the victim's homes.
	rto, from, to := d.gap(victimHomes, faultAt, loadEnd)
	d.rep.RTOSeconds = rto.Seconds()
	d.rep.RTOFrom, d.rep.RTOTo = from, to
	if len(fbs) > 0 {
		fbStart := fbs[0].Started
		g, _, _ := d.gap(victimHomes, fbStart, loadEnd)
		d.rep.FailbackGapSeconds = g.Seconds()
		_ = failbackAt
	}

	// Settle: replication drained and sagas done everywhere.
	if err := d.settle(ctx); err != nil {
		d.rep.fail("not settled: %v", err)
	}
	for _, r := range d.topo.RegionNames() {
		st, err := d.status(ctx, r)
		if err != nil {
			return err
		}
		d.rep.Nodes = append(d.rep.Nodes, st)
		for _, p := range st.Peers {
			d.rep.RejectedStale += p.Rejected
		}
	}
	if err := d.check(ctx, d.rep); err != nil {
		return fmt.Errorf("checks: %w", err)
	}
	d.rep.finish(d.cfg)
	d.say("checks done: %s", d.rep.Verdict())
	return nil
}

func countAnswers(ps []directWrite) map[string]int {
	out := map[string]int{}
	for _, p := range ps {
		k := fmt.Sprint(p.Status)
		if p.Status == 0 {
			k = "no answer"
		}
		out[k]++
	}
	return out
}

func regionNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("r%d", i+1)
	}
	return out
}

func (d *drill) url(region string) string {
	r, _ := d.topo.Region(region)
	return strings.TrimRight(r.URL, "/")
}

func (d *drill) status(ctx context.Context, region string) (node.Status, error) {
	var st node.Status
	err := getJSON(ctx, d.hc, d.url(region)+"/v1/dr/status", &st)
	return st, err
}

// waitServing waits until region answers, is not starting, and holds a
// valid lease on every home the control plane says it owns.
func (d *drill) waitServing(ctx context.Context, region string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if p := d.nodes[region]; p != nil && p.exited() {
			return fmt.Errorf("%s exited while starting (see %s)", region, p.logPath)
		}
		st, err := d.status(ctx, region)
		if err == nil && st.State == "ok" {
			valid := map[string]bool{}
			for _, l := range st.Leases {
				valid[l.Home] = l.Valid
			}
			ready := true
			for _, o := range st.Owners {
				if o.Owner == region && o.State == regions.StateActive && !valid[o.Home] {
					ready, last = false, "lease of "+o.Home+" not taken yet"
				}
			}
			if ready && len(st.Owners) > 0 {
				return nil
			}
		} else if err != nil {
			last = err.Error()
		} else {
			last = "state " + st.State
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not serving after %v: %s (see %s)", region, timeout, last, d.nodes[region].logPath)
}

// waitDown waits until region's health check fails (connection refused or
// no answer within 300 ms) three times in a row.
func (d *drill) waitDown(ctx context.Context, region string, timeout time.Duration) error {
	hc := &http.Client{Timeout: 300 * time.Millisecond}
	deadline := time.Now().Add(timeout)
	fails := 0
	for time.Now().Before(deadline) {
		var h node.Health
		if err := getJSON(ctx, hc, d.url(region)+"/healthz", &h); err != nil {
			fails++
			if fails >= 3 {
				return nil
			}
		} else {
			fails = 0
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s still answers after %v", region, timeout)
}

// settle waits until no region lags, holds events, or has open checkouts.
func (d *drill) settle(ctx context.Context) error {
	deadline := time.Now().Add(d.cfg.Settle)
	start := time.Now()
	var last string
	for time.Now().Before(deadline) {
		busy := ""
		heads := map[uint64]bool{}
		for _, r := range d.topo.RegionNames() {
			st, err := d.status(ctx, r)
			if err != nil {
				busy = err.Error()
				break
			}
			if st.Published < st.Head {
				busy = fmt.Sprintf("%s's bridge at %d of %d", r, st.Published, st.Head)
			}
			for _, p := range st.Peers {
				if p.LagEvents > 0 {
					busy = fmt.Sprintf("%s lags %d events behind %s", r, p.LagEvents, p.Peer)
				}
			}
			if st.Sagas.Checkouts > 0 {
				busy = fmt.Sprintf("%s has %d checkouts in flight", r, st.Sagas.Checkouts)
			}
			heads[st.Head] = true
		}
		if busy == "" && len(heads) == 1 {
			d.say("settled in %.2fs: every region at the same head, no lag, no open checkout", time.Since(start).Seconds())
			return nil
		}
		if busy == "" {
			busy = fmt.Sprintf("heads differ: %v", heads)
		}
		last = busy
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("after %v: %s", d.cfg.Settle, last)
}

func (d *drill) stopAll() {
	var wg sync.WaitGroup
	for _, p := range d.nodes {
		wg.Go(func() { p.stop(10 * time.Second) })
	}
	wg.Wait()
	if d.broker != nil {
		d.broker.stop(10 * time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not listening after %v", addr, timeout)
}
