// Package node runs one region's whole stack as a process: the durable
// event store, the exactly-once Kafka bridge, the replicator, the ownership
// lease keeper with the fenced appender, and the product itself
// (internal/stack): the HTTP API (adapters/httpapi), the read models, and
// the embedded Temporal server with the saga worker and dispatcher. The DR
// drill (regions/drill) spawns it as `livecore dr node --region X ...`.
//
// HTTP surface: the product's API (docs/api.md), plus
//
//	GET  /v1/route?stream=S          which region writes S
//	GET  /healthz                    200 while serving; state starting|ok|fenced
//	GET  /v1/dr/status               store head, bridge, leases, ownership, replication, fence, sagas
//	GET  /v1/dr/events?from=P&max=N  the local $all (for drill checks)
//	POST /v1/dr/drain   {"home"}     planned handover, old owner's side: drain, publish, release
//	POST /v1/dr/catchup {"peer"}     new owner's side: wait until everything peer published is applied
//	GET  /metrics                    Prometheus (the node's and the product's)
//
// In region mode the API differs from a single-region one in four ways:
//
//   - New orders are homed: POST /v1/orders takes "market" (a market of
//     the topology; default: the first home this region prefers) and the
//     order ID begins with the home ("h1.ord_...").
//   - A write for a stream this region does not own is answered 421
//     Misdirected (code "misdirected") with the owner's URL in Location,
//     and nothing is written; reads are served from the local replicas.
//   - A write whose outcome is unknown (lease lost during the append, or
//     in sync mode not committed to Kafka in time) is answered 503: retry
//     with the same Idempotency-Key at the owner.
//   - API keys, payment tokens and drop terms live in the control-plane
//     database, shared by every region; Idempotency-Key records stay in the
//     region (a retry at another region after a failover is recognised by
//     its command ID instead: it appends nothing twice).
//
// Sagas run only for the homes this region holds: the dispatcher skips
// other homes' events (replicas), and the saga keeper (sagas.go) re-drives
// the open checkouts of a home this region takes and terminates its sagas
// of a home it does not hold. Provider calls go through a guard that
// refuses orders of homes not held.
package node

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
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/adapters/kafka"
	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/adapters/psp/sandboxhttp"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/internal/stack"
	"github.com/livecore/livecore/projections/readmodels"
	"github.com/livecore/livecore/regions"
	"github.com/livecore/livecore/regions/replicate"
	"github.com/livecore/livecore/workflows/dispatcher"
)

const offsetsFile = "replicator-offsets.json"

// Config configures a region node.
type Config struct {
	// Region is this node's region; it must be in Topology.
	Region   string
	Topology regions.Topology
	// DataDir holds the event store (events/), the replicator's offsets
	// and loss reports. Required.
	DataDir string
	// Listen is the HTTP address. Default: the host:port of this region's
	// URL in the topology.
	Listen string
	// ControlPlane is the control plane's DSN (regions.OpenControlPlane).
	ControlPlane string
	// Brokers are Kafka's seed brokers.
	Brokers []string
	// KafkaNamespace prefixes every topic, transactional ID and
	// checkpoint key (isolates drills sharing a broker). Default "".
	KafkaNamespace string
	// Durability: regions.Async (default) or regions.Sync.
	Durability regions.Mode
	// LeaseTTL is the ownership lease's TTL. Default 3 s.
	LeaseTTL time.Duration
	// BridgeMaxDelay bounds a bridge transaction. Default 20 ms.
	BridgeMaxDelay time.Duration
	// Partitions of new topics. Default 4.
	Partitions int32
	// PSPURL is the payment provider (PSPHandler: the sandbox over HTTP,
	// shared by every region); "" runs an in-process sandbox (single-region
	// development only: charges are then not shared across regions).
	PSPURL string
	// SyncTimeout bounds a sync-mode acknowledgement. Default 10 s.
	SyncTimeout time.Duration
	Logger      *slog.Logger
	// Ready is called with the bound HTTP address once the node serves.
	Ready func(addr string)
}

func (c *Config) setDefaults() error {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 3 * time.Second
	}
	if c.BridgeMaxDelay == 0 {
		c.BridgeMaxDelay = 20 * time.Millisecond
	}
	if c.Partitions == 0 {
		c.Partitions = 4
	}
	if c.SyncTimeout == 0 {
		c.SyncTimeout = 10 * time.Second
	}
	if c.Listen == "" {
		r, err := c.Topology.Region(c.Region)
		if err != nil {
			return err
		}
		u := strings.TrimPrefix(strings.TrimPrefix(r.URL, "http://"), "https://")
		c.Listen = strings.TrimRight(u, "/")
	}
	return nil
}

// Validate reports missing parts.
func (c Config) Validate() error {
	var errs []error
	if err := c.Topology.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.Topology.Region(c.Region); err != nil {
		errs = append(errs, err)
	}
	if c.DataDir == "" || c.ControlPlane == "" || len(c.Brokers) == 0 {
		errs = append(errs, errors.New("DataDir, ControlPlane and Brokers are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node config: %w", err)
	}
	return nil
}

// Names of a region's Kafka resources.
func BridgeName(ns, region string) string { return ns + "livecore-bridge-" + region }

// TopicPrefix is the prefix of region's event topics.
func TopicPrefix(ns, region string) string { return ns + region + ".livecore." }

// CheckpointTopic is the bridges' checkpoint topic.
func CheckpointTopic(ns string) string { return ns + "livecore.checkpoints.v1" }

// BridgeConfig is the bridge configuration of region (also what a failover
// uses to fence it and read its checkpoint).
func BridgeConfig(ns, region string, brokers []string, partitions int32) kafka.Config {
	return kafka.Config{
		Brokers: brokers, Region: region,
		Name: BridgeName(ns, region), TransactionalID: BridgeName(ns, region),
		Topics: kafka.Topics{Prefix: TopicPrefix(ns, region), Checkpoint: CheckpointTopic(ns), Partitions: partitions},
	}
}

// Node is a running region.
type Node struct {
	cfg    Config
	log    *slog.Logger
	store  *pebble.Store
	cp     *regions.ControlPlane
	val    *regions.Validator
	bridge *kafka.Bridge
	rep    *replicate.Replicator
	leases *regions.Leases
	fence  *regions.FencedAppender
	router *regions.Router
	acker  regions.Acker
	sagas  *sagaKeeper
	// product is the product (API, read models, sagas), published once
	// built: the HTTP handlers serve it from then on.
	product atomic.Pointer[stack.Stack]
	prom    *prometheus.Registry
	lost    *Unreplicated

	state     atomic.Value // string
	bridgeErr atomic.Value // string
	started   time.Time
	drainMu   sync.Mutex
}

// Run starts the region and serves until ctx ends. It returns ctx's error
// after a clean shutdown, or the first error that stops the node.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger.With("region", cfg.Region)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return err
	}
	n := &Node{cfg: cfg, log: log, prom: prometheus.NewRegistry(), started: time.Now()}
	n.state.Store("starting")
	n.bridgeErr.Store("")

	// Listen first: the drill and the load find the node, and health says
	// "starting" while it reconciles.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: n.routes(), ReadHeaderTimeout: 10 * time.Second}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		srv.Shutdown(sctx)
		cancel()
	}()
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}

	n.cp, err = regions.OpenControlPlane(ctx, cfg.ControlPlane)
	if err != nil {
		return err
	}
	defer n.cp.Close()
	if err := n.cp.Bootstrap(ctx, cfg.Topology); err != nil {
		return err
	}
	n.val = regions.NewValidator(n.cp, cfg.Topology)
	n.store, n.lost, err = reconcile(ctx, &n.cfg, n.val, log)
	if err != nil {
		return err
	}
	defer n.store.Close()

	bc := BridgeConfig(cfg.KafkaNamespace, cfg.Region, cfg.Brokers, cfg.Partitions)
	bc.Source, bc.MaxDelay, bc.Registerer, bc.Logger = n.store, cfg.BridgeMaxDelay, n.prom, log
	bc.RetryBackoff, bc.MaxRetryBackoff = 50*time.Millisecond, time.Second
	if n.bridge, err = kafka.New(bc); err != nil {
		return err
	}
	var peers []string
	for _, r := range cfg.Topology.Regions {
		if r.Name != cfg.Region {
			peers = append(peers, r.Name)
		}
	}
	n.rep, err = replicate.New(replicate.Config{
		Store: n.store, Brokers: cfg.Brokers, Region: cfg.Region, Peers: peers,
		TopicPrefix: func(r string) string { return TopicPrefix(cfg.KafkaNamespace, r) },
		Checker:     n.val, OffsetsFile: filepath.Join(cfg.DataDir, offsetsFile),
		Registerer: n.prom, Logger: log,
	})
	if err != nil {
		return err
	}
	n.leases, err = regions.NewLeases(regions.LeasesConfig{
		Store: n.cp, Region: cfg.Region, Head: n.store.Head, TTL: cfg.LeaseTTL, Logger: log,
		OnLost: func(home string, epoch uint64, now regions.Ownership) { n.state.Store("fenced") },
	})
	if err != nil {
		return err
	}
	n.fence = regions.NewFencedAppender(n.store, cfg.Topology, cfg.Region, n.leases)
	n.router = regions.NewRouter(cfg.Topology, cfg.Region, n.leases)
	n.acker = regions.Acker{Mode: cfg.Durability, Published: n.bridge, Timeout: cfg.SyncTimeout}
	var psp payment.Provider = sandbox.New(sandbox.Config{})
	if cfg.PSPURL != "" {
		psp = sandboxhttp.NewClient(strings.TrimRight(cfg.PSPURL, "/"), nil)
	}
	var source event.Subscriber = n.store
	if cfg.Durability == regions.Sync {
		source = publishedSource{n.store, n.bridge}
	}
	st, err := stack.Build(ctx, stack.Config{
		DataDir: cfg.DataDir, Region: cfg.Region, NoKafka: true, NoDemo: true, Logger: log,
		HTTP: httpapi.Config{MapError: n.mapError},
		Regional: stack.RegionHooks{
			Store: n.store, AppStore: fencedStore{n.fence, n.store}, SharedDB: n.cp.DB(),
			Placement: n.place, Acknowledge: n.acknowledge,
			PSP:            guardedPSP{Provider: psp, topo: cfg.Topology, leases: n.leases},
			DispatchSource: source,
			DispatchFilter: func(env event.Envelope) bool { return n.leases.Holds(cfg.Topology.HomeOf(env.StreamID)) },
		},
	})
	if err != nil {
		return err
	}
	defer st.Close()
	n.sagas = newSagaKeeper(cfg.Topology, n.leases, n.store, st.Dispatcher, st.TemporalClient, log)
	n.sagas.plans = n.openPlans
	n.product.Store(st)

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	fail := make(chan error, 8)
	wg.Go(func() {
		err := n.bridge.Run(rctx)
		if rctx.Err() == nil {
			n.bridgeErr.Store(err.Error())
			if errors.Is(err, kafka.ErrFenced) {
				// Another instance (or a failover) took the bridge's
				// transactional ID: this process no longer publishes.
				log.Error("bridge fenced: this region's process is fenced; restart it to rejoin", "err", err)
				n.state.Store("fenced")
				return
			}
			fail <- fmt.Errorf("bridge: %w", err)
		}
	})
	wg.Go(func() {
		if err := n.rep.Run(rctx); rctx.Err() == nil {
			fail <- fmt.Errorf("replicator: %w", err)
		}
	})
	wg.Go(func() { n.leases.Run(rctx) })
	wg.Go(func() {
		if err := st.Run(rctx); rctx.Err() == nil {
			fail <- fmt.Errorf("product: %w", err)
		}
	})
	wg.Go(func() {
		if err := n.sagas.follow(rctx); rctx.Err() == nil {
			fail <- fmt.Errorf("saga keeper: %w", err)
		}
	})
	wg.Go(func() {
		if err := n.sagas.run(rctx); rctx.Err() == nil {
			fail <- fmt.Errorf("saga keeper: %w", err)
		}
	})
	n.state.Store("ok")
	log.Info("region node serving", "addr", ln.Addr().String(), "durability", cfg.Durability.String(), "kafka_namespace", cfg.KafkaNamespace)

	select {
	case <-ctx.Done():
		err = ctx.Err()
	case err = <-fail:
		log.Error("region node stopping", "err", err)
	case err = <-srvDone:
	}
	cancel()
	wg.Wait()
	return err
}

// fencedStore is the app service's store: writes through the fence, reads
// from the store.
type fencedStore struct {
	*regions.FencedAppender
	r event.StreamReader
}

func (f fencedStore) ReadStream(ctx context.Context, stream string, from uint64, max int) ([]event.Envelope, error) {
	return f.r.ReadStream(ctx, stream, from, max)
}

// openPlans lists the BNPL plans of home still collecting, from the plans
// read model once it has caught up with the log's head.
func (n *Node) openPlans(ctx context.Context, home string) ([]dispatcher.RedrivePlan, error) {
	head, err := n.store.Head(ctx)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st := n.product.Load()
	if err := st.Runner.WaitFor(wctx, readmodels.Plans{}.Name(), head); err != nil {
		return nil, fmt.Errorf("plans read model at %d: %w", head, err)
	}
	plans, err := readmodels.OpenPlans(ctx, st.ReadDB, func(planID string) bool {
		return n.cfg.Topology.HomeOf(financing.StreamID(planID)) == home
	})
	if err != nil {
		return nil, err
	}
	out := make([]dispatcher.RedrivePlan, len(plans))
	for i, p := range plans {
		out[i] = dispatcher.RedrivePlan{PlanID: p.PlanID, OrderID: p.OrderID, Tenant: p.Tenant}
	}
	return out, nil
}
