// Package embedded runs a real Temporal server (go.temporal.io/server) inside
// the livecore process, persisted to one SQLite file: the default for
// 'livecore dev' and for tests. Production points workers at a Temporal
// cluster instead and never starts this.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
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
}

// Start creates the schema on first use, registers the namespace and starts
// the frontend, history, matching and worker services. It returns when the
// frontend answers. Stop it with Stop.
func Start(ctx context.Context, c Config) (*Server, error) {
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	ports, err := freePorts(c.IP, 8)
	if err != nil {
		return nil, err
	}
	if c.FrontendPort != 0 {
		ports[0] = c.FrontendPort
	}
	sqlCfg := config.SQL{
		PluginName:        sqliteplugin.PluginName,
		ConnectAttributes: map[string]string{"journal_mode": "wal", "synchronous": "1"},
		DatabaseName:      c.DBPath,
		MaxConns:          envInt("LC_MAXCONNS", 4),
		MaxIdleConns:      envInt("LC_MAXCONNS", 4),
	}
	if c.Durable {
		sqlCfg.ConnectAttributes["synchronous"] = "2"
	}
	if c.Ephemeral {
		sqlCfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		sqlCfg.DatabaseName = fmt.Sprintf("livecore-%d", time.Now().UnixNano())
		sqlCfg.MaxConns, sqlCfg.MaxIdleConns = 1, 1
	} else {
		sqlCfg.ConnectAttributes["mode"] = "rwc"
		if _, err := os.Stat(c.DBPath); errors.Is(err, os.ErrNotExist) {
			if err := sqliteschema.SetupSchema(&sqlCfg); err != nil {
				return nil, fmt.Errorf("temporal: schema: %w", err)
			}
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
		DefaultStore:     sqliteplugin.PluginName,
		VisibilityStore:  sqliteplugin.PluginName,
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: &sqlCfg}},
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
	if p, err := freePorts(c.IP, 1); err == nil {
		w := cfg.Services["worker"]
		w.RPC.MembershipPort = p[0]
		cfg.Services["worker"] = w
	}
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

	logger := tlog.NewZapLogger(tlog.BuildZapLogger(tlog.Config{Level: c.LogLevel}))
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
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("temporal: new server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("temporal: start: %w", err)
	}
	s := &Server{srv: srv, hostPort: frontend, namespace: c.Namespace}
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
func (s *Server) Stop() error { return s.srv.Stop() }

func freePorts(ip string, n int) ([]int, error) {
	out := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("temporal: free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func envInt(k string, d int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return d
}
