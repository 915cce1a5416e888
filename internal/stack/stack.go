package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/adapters/kafka"
	kembedded "github.com/livecore/livecore/adapters/kafka/embedded"
	tembedded "github.com/livecore/livecore/adapters/temporal/embedded"
	"github.com/livecore/livecore/domain"
	"github.com/livecore/livecore/domain/app"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/projections"
)

// stackConfig says which parts run embedded and where their data lives.
type stackConfig struct {
	dataDir string
	region  string
	// kafkaBrokers, if set, points the bridge at a real cluster instead of
	// the embedded broker; kafkaPort is the embedded broker's port.
	kafkaBrokers []string
	kafkaPort    int
	noKafka      bool
	// temporalAddress, if set, points workers at a Temporal cluster
	// instead of the embedded server; temporalPort is the embedded
	// frontend's port.
	temporalAddress string
	temporalPort    int
	noTemporal      bool
}

// stack is the whole product in one process. build opens every part; run
// runs the background loops; close stops them in reverse order.
type stack struct {
	cfg      stackConfig
	log      *slog.Logger
	metrics  *prometheus.Registry
	registry *event.Registry
	store    *pebble.Store
	service  *app.Service
	readDB   *projections.DB
	runner   *projections.Runner
	broker   *kembedded.Broker
	bridge   *kafka.Bridge
	temporal *tembedded.Server

	closers []func() error
	loops   []namedLoop
}

type namedLoop struct {
	name string
	run  func(ctx context.Context) error
}

func buildStack(ctx context.Context, cfg stackConfig, log *slog.Logger) (s *stack, err error) {
	s = &stack{cfg: cfg, log: log, metrics: prometheus.NewRegistry(), registry: domain.NewRegistry()}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := os.MkdirAll(cfg.dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}

	if s.store, err = pebble.Open(pebble.Config{Dir: filepath.Join(cfg.dataDir, "events"), Logger: log}); err != nil {
		return nil, fmt.Errorf("event store: %w", err)
	}
	s.closers = append(s.closers, s.store.Close)
	if s.service, err = app.New(app.Config{Store: s.store, Registry: s.registry}); err != nil {
		return nil, err
	}

	if s.readDB, err = projections.OpenSQLite(filepath.Join(cfg.dataDir, "readmodels.db")); err != nil {
		return nil, fmt.Errorf("read models: %w", err)
	}
	s.closers = append(s.closers, s.readDB.Close)
	if s.runner, err = projections.NewRunner(projections.Config{
		DB: s.readDB, Source: s.store, Projections: readModels(), Registerer: s.metrics, Logger: log,
	}); err != nil {
		return nil, err
	}
	s.loops = append(s.loops, namedLoop{"projections", s.runner.Run})

	if !cfg.noKafka {
		brokers := cfg.kafkaBrokers
		if len(brokers) == 0 {
			if s.broker, err = kembedded.Start(ctx, kembedded.Config{Dir: filepath.Join(cfg.dataDir, "kafka"), Port: cfg.kafkaPort, Logger: log}); err != nil {
				return nil, fmt.Errorf("embedded kafka: %w", err)
			}
			s.closers = append(s.closers, s.broker.Close)
			brokers = s.broker.Brokers()
		}
		if s.bridge, err = kafka.New(kafka.Config{Source: s.store, Brokers: brokers, Region: cfg.region, Registerer: s.metrics, Logger: log}); err != nil {
			return nil, fmt.Errorf("kafka bridge: %w", err)
		}
		s.loops = append(s.loops, namedLoop{"kafka-bridge", s.bridge.Run})
	}

	if !cfg.noTemporal && cfg.temporalAddress == "" {
		if s.temporal, err = tembedded.Start(ctx, tembedded.Config{DBPath: filepath.Join(cfg.dataDir, "temporal.db"), FrontendPort: cfg.temporalPort, LogLevel: "error"}); err != nil {
			return nil, fmt.Errorf("embedded temporal: %w", err)
		}
		s.closers = append(s.closers, s.temporal.Stop)
	}
	return s, nil
}

// run runs every background loop until ctx is done or one fails.
func (s *stack) run(ctx context.Context) error {
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

// close stops the parts in reverse order of opening.
func (s *stack) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			s.log.Warn("close", "err", err)
		}
	}
	s.closers = nil
}

// readModels lists the projections the product runs.
func readModels() []projections.Projection { return nil }
