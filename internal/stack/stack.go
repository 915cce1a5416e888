// Package stack assembles the whole livecore product in one process: the
// event store, application service, read models, Kafka bridge, Temporal and
// the HTTP API. 'livecore dev' and the end-to-end tests use it.
package stack

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	sdkclient "go.temporal.io/sdk/client"

	"github.com/livecore/livecore/adapters/eventstore/open"
	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/adapters/kafka"
	kembedded "github.com/livecore/livecore/adapters/kafka/embedded"
	"github.com/livecore/livecore/adapters/psp/sandbox"
	tembedded "github.com/livecore/livecore/adapters/temporal/embedded"
	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/payment"
	"github.com/livecore/livecore/projections"
	"github.com/livecore/livecore/projections/journal"
	"github.com/livecore/livecore/projections/readmodels"
	"github.com/livecore/livecore/workflows/dispatcher"
)

// Config says which parts run embedded and where their data lives.
type Config struct {
	DataDir string
	Region  string
	// KafkaBrokers, if set, points the bridge at a real cluster instead of
	// the embedded broker; KafkaPort is the embedded broker's port (0: a
	// free one).
	KafkaBrokers []string
	KafkaPort    int
	NoKafka      bool
	// TemporalAddress, if set, points workers at a Temporal cluster
	// instead of the embedded server; TemporalPort is the embedded
	// frontend's port (0: a free one).
	TemporalAddress string
	TemporalPort    int
	// TemporalNamespace is the namespace at TemporalAddress (default
	// "default"); the embedded server has its own.
	TemporalNamespace string
	NoTemporal        bool
	// EventStore and EventStoreDSN choose the event store: pebble (the
	// default, in DataDir/events), sql (PostgreSQL/CockroachDB) or
	// kurrentdb, with its DSN (see adapters/eventstore/open).
	EventStore, EventStoreDSN string
	// DemoTenant is created on first start with a checkout, a finance and
	// an ops key (see DemoKeys) and stock of the demo SKUs (default
	// "demo"; NoDemo skips it).
	DemoTenant string
	NoDemo     bool
	// SyncReadModels fsyncs the SQLite read models (readmodels.db) as
	// SQLite normally does. By default they are written without fsync and
	// rebuilt from the event log after the operating system stops
	// uncleanly: a third of the disk writes (projections.SQLiteOptions).
	SyncReadModels bool
	// HTTP tunes the API server (Backend, Auth and Idempotency are set by
	// Build; Registerer/Gatherer default to the stack's Metrics).
	HTTP   httpapi.Config
	Logger *slog.Logger

	// Multi-region hooks (regions/node sets them; a single-region stack
	// leaves them zero).
	Regional RegionHooks
}

// RegionHooks let a region node run the product over its own parts: its
// event store, a write path that checks ownership, a database shared by
// every region, and sagas only for the homes it owns.
type RegionHooks struct {
	// Store, if set, is the event store to use (the caller opened it and
	// closes it after the stack); EventStore/EventStoreDSN are ignored.
	Store event.Store
	// AppStore, if set, is what the application service (the API and the
	// sagas) appends through and loads from: the fenced appender.
	AppStore app.Store
	// SharedDB, if set, holds what every region must see: API keys,
	// payment tokens, drop terms (the control plane's database). The
	// idempotency records stay in the region's api.db.
	SharedDB *sql.DB
	// Placement homes new orders (httpapi.Backend.Placement).
	Placement func(ctx context.Context, market string) (home string, err error)
	// Acknowledge holds an API write's answer until its position may be
	// acknowledged (httpapi.Backend.Acknowledge: sync durability).
	Acknowledge func(ctx context.Context, position uint64) error
	// PSP is the payment provider the sagas call (default: an in-process
	// sandbox, Stack.PSP).
	PSP payment.Provider
	// DispatchSource is what the saga dispatcher and the carrier relay
	// follow (default Store); DispatchFilter, if set, skips the events it
	// returns false for (another region's homes).
	DispatchSource event.Subscriber
	DispatchFilter func(event.Envelope) bool
}

// Stack is the whole product in one process. Build opens every part; Run
// runs the background loops; Close stops them in reverse order.
type Stack struct {
	cfg      Config
	log      *slog.Logger
	Metrics  *prometheus.Registry
	Registry *event.Registry
	Store    event.Store
	Service  *app.Service
	ReadDB   *projections.DB
	Runner   *projections.Runner
	Broker   *kembedded.Broker
	Bridge   *kafka.Bridge
	Temporal *tembedded.Server
	// API is the HTTP API; APIDB its SQLite database (api.db: API keys,
	// idempotency records, payment tokens, drop terms); Keys issues keys.
	API      *httpapi.Server
	APIDB    *sql.DB
	Keys     *httpapi.Keys
	Commerce *httpapi.SQLCommerceStore
	// Idempotency is the API's idempotency store.
	Idempotency *httpapi.LocalIdempotencyStore
	// DemoKeys are the demo tenant's keys by role ("checkout", "finance",
	// "ops"), also in DemoKeysFile.
	DemoKeys     map[string]string
	DemoKeysFile string
	// PSP is the payment provider the sagas call (the in-process sandbox);
	// Dispatcher starts the sagas (nil with NoTemporal).
	PSP        *sandbox.Sandbox
	Dispatcher *dispatcher.Dispatcher
	// TemporalClient is the sagas' Temporal client (nil with NoTemporal).
	TemporalClient sdkclient.Client

	positions *httpapi.PositionTracker
	// reads caches reads of $all for the projections and the Kafka
	// bridge (sharedReads).
	reads *event.AllCache

	closers []func() error
	loops   []namedLoop
}

type namedLoop struct {
	name string
	run  func(ctx context.Context) error
}

// Build opens every part of the product. Close it when done.
func Build(ctx context.Context, cfg Config) (s *Stack, err error) {
	if cfg.Region == "" {
		cfg.Region = "local"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.KafkaPort == 0 && len(cfg.KafkaBrokers) == 0 && !cfg.NoKafka {
		if cfg.KafkaPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	s = &Stack{cfg: cfg, log: log, Metrics: prometheus.NewRegistry(), Registry: NewRegistry()}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}

	if cfg.Regional.Store != nil {
		s.Store = cfg.Regional.Store
	} else {
		if s.Store, err = open.Open(ctx, open.Config{Kind: cfg.EventStore, Dir: filepath.Join(cfg.DataDir, "events"), DSN: cfg.EventStoreDSN}); err != nil {
			return nil, fmt.Errorf("event store: %w", err)
		}
		s.closers = append(s.closers, s.Store.Close)
	}
	s.reads = event.NewAllCache(s.Store, sharedReadEvents)
	s.positions = httpapi.NewPositionTracker()
	var appStore app.Store = s.Store
	if cfg.Regional.AppStore != nil {
		appStore = cfg.Regional.AppStore
	}
	if s.Service, err = app.New(app.Config{Store: s.positions.Wrap(appStore), Registry: s.Registry, CacheSize: appCacheSize}); err != nil {
		return nil, err
	}

	if s.ReadDB, err = projections.OpenSQLiteWith(filepath.Join(cfg.DataDir, "readmodels.db"), projections.SQLiteOptions{Unsynced: !cfg.SyncReadModels, Logger: log}); err != nil {
		return nil, fmt.Errorf("read models: %w", err)
	}
	s.closers = append(s.closers, s.ReadDB.Close)
	if s.Runner, err = projections.NewRunner(projections.Config{
		DB: s.ReadDB, Source: lingerSource{store: s.Store, reads: s.reads, linger: projectionLinger}, Projections: append(readmodels.All(s.Registry), journal.Projection{Registry: s.Registry}), Registerer: s.Metrics, Logger: log,
	}); err != nil {
		return nil, err
	}
	s.loops = append(s.loops, namedLoop{"projections", s.Runner.Run})

	if !cfg.NoKafka {
		brokers := cfg.KafkaBrokers
		if len(brokers) == 0 {
			if s.Broker, err = kembedded.Start(ctx, kembedded.Config{Dir: filepath.Join(cfg.DataDir, "kafka"), Port: cfg.KafkaPort, Logger: log}); err != nil {
				return nil, fmt.Errorf("embedded kafka: %w", err)
			}
			s.closers = append(s.closers, s.Broker.Close)
			brokers = s.Broker.Brokers()
		}
		if s.Bridge, err = kafka.New(kafka.Config{Source: sharedReads{s.Store, s.reads}, Brokers: brokers, Region: cfg.Region, Registerer: s.Metrics, Logger: log}); err != nil {
			return nil, fmt.Errorf("kafka bridge: %w", err)
		}
		s.loops = append(s.loops, namedLoop{"kafka-bridge", s.Bridge.Run})
	}

	if err := s.buildAPI(ctx); err != nil {
		return nil, err
	}

	if !cfg.NoTemporal && cfg.TemporalAddress == "" {
		if s.Temporal, err = tembedded.Start(ctx, tembedded.Config{DBPath: filepath.Join(cfg.DataDir, "temporal.db"), FrontendPort: cfg.TemporalPort, LogLevel: "error"}); err != nil {
			return nil, fmt.Errorf("embedded temporal: %w", err)
		}
		s.closers = append(s.closers, s.Temporal.Stop)
	}
	if !cfg.NoTemporal {
		if err := s.buildSagas(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Run runs every background loop until ctx is done or one fails.
func (s *Stack) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, l := range s.loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.run(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Error("component stopped", "component", l.name, "err", err)
				cancel(fmt.Errorf("%s: %w", l.name, err))
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Close stops the parts in reverse order of opening.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			s.log.Warn("close", "err", err)
		}
	}
	s.closers = nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// SagasWired reports whether the stack runs the saga worker and
// dispatcher (workflows/), without which orders stop at checkout_started.
func (s *Stack) SagasWired() bool { return s.Dispatcher != nil }

// DataDir is the directory holding every part's data.
func (s *Stack) DataDir() string { return s.cfg.DataDir }

// WaitCaughtUp waits until every read model has applied, and the Kafka
// bridge has published, the log up to its head as of the call, for at most
// timeout.
func (s *Stack) WaitCaughtUp(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	head, err := s.Store.Head(ctx)
	if err != nil {
		return err
	}
	for _, p := range append(readmodels.All(s.Registry), journal.Projection{Registry: s.Registry}) {
		if err := s.Runner.WaitFor(ctx, p.Name(), head); err != nil {
			return fmt.Errorf("%s: %w", p.Name(), err)
		}
	}
	if s.Bridge != nil {
		if err := s.Bridge.WaitPublished(ctx, head); err != nil {
			return fmt.Errorf("kafka bridge: %w", err)
		}
	}
	return nil
}

// appCacheSize is how many folded aggregates the application service
// keeps (its default is 10,000): a folded order with its decimals is ~2.5
// KiB of Go heap that every GC cycle marks, and a miss refolds a stream
// of a few events from the store.
const appCacheSize = 4096
