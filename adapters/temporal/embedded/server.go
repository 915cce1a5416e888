// Package embedded runs a real Temporal server (go.temporal.io/server) inside
// the livecore process, persisted to one SQLite file: the default for
// 'livecore dev' and for tests. Production points workers at a Temporal
// cluster instead and never starts this.
package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	freeports "github.com/livecore/livecore/internal/ports"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	tlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	_ "modernc.org/sqlite" // driver "sqlite" for forgetMembers
)

// Config configures the embedded server. Zero values get defaults.
type Config struct {
	// DBPath is the SQLite file; its directory must exist. Empty with
	// Ephemeral set keeps everything in memory (tests).
	DBPath    string
	Ephemeral bool
	// Namespace is created on start (default "livecore").
	Namespace string
	// IP to bind the frontend to (default 127.0.0.1).
	IP string
	// FrontendPort for clients (0: a free port). 'livecore dev' uses 7233,
	// Temporal's usual port, so the temporal CLI finds it.
	FrontendPort int
	// LogLevel of the server's own logs (default "warn": it is chatty).
	LogLevel string
	// Durable makes SQLite fsync every commit (synchronous=FULL). The
	// default (NORMAL, in WAL mode) can lose the last workflow-state
	// commits on power loss, never corrupt the file: acceptable because the
	// event store, not Temporal, is the record, and sagas are rebuilt from
	// aggregates' state.
	Durable bool
	// MaxConns is the number of SQLite connections per database file.
	// Default 1: SQLite has one writer per file, and with 4 connections the
	// server's writers queued on SQLite's file lock (busy-waiting) instead
	// of on the pool; one connection ran one-activity workflows about 3x
	// faster here (workflows.BenchSagas).
	MaxConns int
	// VisibilityInMemory keeps the visibility store (workflow listing and
	// counting) in memory even when DBPath is set: cheaper, but workflows
	// started before a restart are then only found by ID.
	VisibilityInMemory bool
	// DynamicConfig overrides server dynamic-config keys
	// ("matching.numTaskqueueReadPartitions": 1), on top of the defaults
	// set by Start.
	DynamicConfig map[string]any
}

// VisibilityPath is the SQLite file of the visibility store of the server
// persisted at dbPath: visibility (workflow listing) lives in its own file
// with its own connection, so its writes (one or more per workflow run)
// never wait behind workflow-state writes for SQLite's single writer lock.
func VisibilityPath(dbPath string) string {
	return strings.TrimSuffix(dbPath, filepath.Ext(dbPath)) + "-visibility" + filepath.Ext(dbPath)
}

func (c *Config) setDefaults() {
	if c.Namespace == "" {
		c.Namespace = "livecore"
	}
	if c.IP == "" {
		c.IP = "127.0.0.1"
	}
	if c.LogLevel == "" {
		c.LogLevel = "warn"
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 1
	}
}

// Validate reports a configuration that cannot start.
func (c *Config) Validate() error {
	if c.Ephemeral == (c.DBPath != "") {
		return errors.New("temporal: set exactly one of DBPath and Ephemeral")
	}
	if c.DBPath != "" {
		if _, err := os.Stat(filepath.Dir(c.DBPath)); err != nil {
			return fmt.Errorf("temporal: db dir: %w", err)
		}
	}
	return nil
}

// Server is a started embedded Temporal server.
type Server struct {
	srv       temporal.Server
	hostPort  string
	namespace string
	quiet     *atomic.Bool
}

// Start creates the schema on first use, registers the namespace and starts
// the frontend, history, matching and worker services. It returns when the
// frontend answers. Stop it with Stop.
func Start(ctx context.Context, c Config) (*Server, error) {
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	// The free ports are found by binding and releasing them: another
	// process starting at the same moment (the DR drill starts three
	// regions at once) may take one first. Try again with new ones.
	for attempt := 1; ; attempt++ {
		s, err := start(ctx, c)
		if err == nil || attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(err.Error(), "address already in use") {
			return s, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

func start(ctx context.Context, c Config) (*Server, error) {
	// Nine ports of a block below the ephemeral range (internal/ports): a
	// port some outgoing connection took meanwhile would make a service's
	// listener fail, and Temporal's services exit the process on that.
	ports, err := freeports.Block(c.IP, 9)
	if err != nil {
		return nil, err
	}
	if c.FrontendPort != 0 {
		ports[0] = c.FrontendPort
	}
	// Both stores tuned for the one-writer-per-file SQLite: WAL, one
	// connection each (see MaxConns), a 32 MiB page cache so hot history
	// pages are not re-read from the OS, temporary tables in memory.
	pragmas := map[string]string{
		"journal_mode": "wal", "synchronous": "1", "busy_timeout": "10000", "cache_size": "-32768", "temp_store": "2",
	}
	if c.Durable {
		pragmas["synchronous"] = "2"
	}
	store := func(name string) config.SQL {
		attrs := map[string]string{"mode": "rwc"}
		for k, v := range pragmas {
			attrs[k] = v
		}
		return config.SQL{PluginName: sqliteplugin.PluginName, ConnectAttributes: attrs, DatabaseName: name, MaxConns: c.MaxConns, MaxIdleConns: c.MaxConns}
	}
	var sqlCfg, visCfg config.SQL
	if c.Ephemeral {
		name := fmt.Sprintf("livecore-%d", time.Now().UnixNano())
		sqlCfg = config.SQL{PluginName: sqliteplugin.PluginName, ConnectAttributes: map[string]string{"mode": "memory", "cache": "shared"}, DatabaseName: name, MaxConns: 1, MaxIdleConns: 1}
		visCfg = sqlCfg
		visCfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		visCfg.DatabaseName = name + "-visibility"
	} else {
		sqlCfg, visCfg = store(c.DBPath), store(VisibilityPath(c.DBPath))
		if c.VisibilityInMemory {
			visCfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
			visCfg.DatabaseName = fmt.Sprintf("livecore-%d-visibility", time.Now().UnixNano())
		}
		for _, sc := range []*config.SQL{&sqlCfg, &visCfg} {
			if sc.ConnectAttributes["mode"] == "memory" {
				continue
			}
			if _, err := os.Stat(sc.DatabaseName); errors.Is(err, os.ErrNotExist) {
				if err := sqliteschema.SetupSchema(sc); err != nil {
					return nil, fmt.Errorf("temporal: schema of %s: %w", sc.DatabaseName, err)
				}
			}
		}
		if err := forgetMembers(c.DBPath); err != nil {
			return nil, err
		}
	}

	cfg := &config.Config{}
	frontend := net.JoinHostPort(c.IP, strconv.Itoa(ports[0]))
	svc := func(grpc, membership int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: grpc, MembershipPort: membership, BindOnIP: c.IP}}
	}
	cfg.Global.Membership = config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: c.IP}
	cfg.Global.Metrics = &metrics.Config{Prometheus: &metrics.PrometheusConfig{
		ListenAddress: net.JoinHostPort(c.IP, strconv.Itoa(ports[1])), HandlerPath: "/metrics",
	}}
	cfg.Persistence = config.Persistence{
		DefaultStore:     "sqlite-default",
		VisibilityStore:  "sqlite-visibility",
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{"sqlite-default": {SQL: &sqlCfg}, "sqlite-visibility": {SQL: &visCfg}},
	}
	cfg.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        "active",
		CurrentClusterName:       "active",
		ClusterInformation: map[string]cluster.ClusterInformation{
			"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
		},
	}
	cfg.DCRedirectionPolicy = config.DCRedirectionPolicy{Policy: "noop"}
	cfg.Services = map[string]config.Service{
		"frontend": svc(ports[0], ports[2]),
		"history":  svc(ports[3], ports[4]),
		"matching": svc(ports[5], ports[6]),
		"worker":   svc(ports[7], 0),
	}
	w := cfg.Services["worker"]
	w.RPC.MembershipPort = ports[8]
	cfg.Services["worker"] = w
	cfg.Archival = config.Archival{History: config.HistoryArchival{State: "disabled"}, Visibility: config.VisibilityArchival{State: "disabled"}}
	cfg.NamespaceDefaults = config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
		History: config.HistoryArchivalNamespaceDefaults{State: "disabled"}, Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
	}}
	cfg.PublicClient = config.PublicClient{HostPort: frontend}

	ns, err := sqliteschema.NewNamespaceConfig("active", c.Namespace, false, nil)
	if err != nil {
		return nil, fmt.Errorf("temporal: namespace: %w", err)
	}
	if err := sqliteschema.CreateNamespaces(&sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("temporal: namespace: %w", err)
	}

	// The services log errors while they stop one another ("not enough
	// hosts"); Stop silences the server's own log first (quiet).
	quiet := new(atomic.Bool)
	logger := tlog.NewZapLogger(tlog.BuildZapLogger(tlog.Config{Level: c.LogLevel}).WithOptions(
		zap.WrapCore(func(core zapcore.Core) zapcore.Core { return quietCore{core, quiet} })))
	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("temporal: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("temporal: claim mapper: %w", err)
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamicConfig(c.DynamicConfig)),
	)
	if err != nil {
		return nil, fmt.Errorf("temporal: new server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("temporal: start: %w", err)
	}
	s := &Server{srv: srv, hostPort: frontend, namespace: c.Namespace, quiet: quiet}
	if err := s.waitReady(ctx); err != nil {
		_ = srv.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady dials the frontend until the namespace is visible.
func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		cl, err := s.NewClient(ctx)
		if err == nil {
			_, err = cl.CheckHealth(ctx, &sdkclient.CheckHealthRequest{})
			if err == nil {
				_, err = cl.WorkflowService().DescribeNamespace(ctx, describeNS(s.namespace))
			}
			cl.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("temporal: frontend %s not ready: %w", s.hostPort, last)
}

// HostPort is the frontend address for clients.
func (s *Server) HostPort() string { return s.hostPort }

// Namespace is the namespace created on start.
func (s *Server) Namespace() string { return s.namespace }

// NewClient dials the server in its namespace. The caller closes it.
func (s *Server) NewClient(ctx context.Context, opts ...func(*sdkclient.Options)) (sdkclient.Client, error) {
	o := sdkclient.Options{HostPort: s.hostPort, Namespace: s.namespace}
	for _, f := range opts {
		f(&o)
	}
	return sdkclient.DialContext(ctx, o)
}

// Stop stops every service. It is safe to call once.
func (s *Server) Stop() error {
	s.quiet.Store(true)
	return s.srv.Stop()
}

// quietCore drops every entry once quiet is set.
type quietCore struct {
	zapcore.Core
	quiet *atomic.Bool
}

func (q quietCore) Enabled(l zapcore.Level) bool { return !q.quiet.Load() && q.Core.Enabled(l) }

func (q quietCore) With(fields []zapcore.Field) zapcore.Core {
	return quietCore{q.Core.With(fields), q.quiet}
}

func (q quietCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if q.quiet.Load() {
		return ce
	}
	return q.Core.Check(e, ce)
}

// dynamicConfig is the server's dynamic configuration: Start's defaults,
// then the caller's overrides.
func dynamicConfig(overrides map[string]any) dynamicconfig.StaticClient {
	m := dynamicconfig.StaticClient{
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
		// One partition per task queue: a single-node server gains
		// nothing from four, and tasks and polls then always meet.
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  []dynamicconfig.ConstrainedValue{{Value: 1}},
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): []dynamicconfig.ConstrainedValue{{Value: 1}},
	}
	for k, v := range overrides {
		m[dynamicconfig.MakeKey(k)] = []dynamicconfig.ConstrainedValue{{Value: v}}
	}
	return m
}

// forgetMembers deletes the cluster membership records of earlier runs.
// The embedded server is a cluster of one process: every record already in
// the file belongs to a dead incarnation (a process killed with SIGKILL
// never removes its own). Left in place, the dead hosts stay in the
// membership ring until their records expire, and work routed to them (the
// matching service's task queues) waits: sagas stalled for ~50 s after a
// SIGKILL and restart before this.
func forgetMembers(path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("temporal: open %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.Exec("DELETE FROM cluster_membership"); err != nil {
		return fmt.Errorf("temporal: forget old cluster members in %s: %w", path, err)
	}
	return nil
}
