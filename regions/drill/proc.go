package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/livecore/livecore/internal/ports"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/livecore/livecore/adapters/kafka/embedded"
	"github.com/livecore/livecore/regions"
	"github.com/livecore/livecore/regions/node"
)

// NodeSpec is what a region process needs; the drill writes it as JSON
// and starts `livecore dr node --spec FILE`.
type NodeSpec struct {
	Region         string           `json:"region"`
	Topology       regions.Topology `json:"topology"`
	DataDir        string           `json:"data_dir"`
	Listen         string           `json:"listen,omitempty"`
	ControlPlane   string           `json:"control_plane"`
	Brokers        []string         `json:"brokers"`
	KafkaNamespace string           `json:"kafka_namespace,omitempty"`
	Durability     regions.Mode     `json:"durability"`
	LeaseTTL       time.Duration    `json:"lease_ttl_ns,omitempty"`
	PSPURL         string           `json:"psp_url,omitempty"`
	BridgeMaxDelay time.Duration    `json:"bridge_max_delay_ns,omitempty"`
}

// RunNode runs a region process from its spec until ctx ends.
func RunNode(ctx context.Context, spec NodeSpec, log *slog.Logger) error {
	return node.Run(ctx, node.Config{
		Region: spec.Region, Topology: spec.Topology, DataDir: spec.DataDir, Listen: spec.Listen,
		ControlPlane: spec.ControlPlane, Brokers: spec.Brokers, KafkaNamespace: spec.KafkaNamespace,
		Durability: spec.Durability, LeaseTTL: spec.LeaseTTL, PSPURL: spec.PSPURL, BridgeMaxDelay: spec.BridgeMaxDelay, Logger: log,
	})
}

// BrokerSpec is the drill's Kafka broker process: the embedded kfake
// broker persisted to Dir on Port (`livecore dr broker --spec FILE`). It
// is a process of its own so it does not die with a region.
type BrokerSpec struct {
	Port int    `json:"port"`
	Dir  string `json:"dir"`
}

// RunBroker runs the broker until ctx ends.
func RunBroker(ctx context.Context, spec BrokerSpec, log *slog.Logger) error {
	b, err := embedded.Start(ctx, embedded.Config{Dir: spec.Dir, Port: spec.Port, Logger: log})
	if err != nil {
		return err
	}
	log.Info("drill broker serving", "brokers", b.Brokers())
	<-ctx.Done()
	return b.Close()
}

// ReadSpec decodes a spec file.
func ReadSpec(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// Exec builds the command that runs a drill child: role is "node" or
// "broker", spec the path of its JSON spec.
type Exec func(role, spec string) *exec.Cmd

// SelfExec runs children as `<this executable> dr <role> --spec <file>`.
func SelfExec() (Exec, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return func(role, spec string) *exec.Cmd { return exec.Command(exe, "dr", role, "--spec", spec) }, nil
}

// proc is a child process.
type proc struct {
	name    string
	role    string
	spec    string
	logPath string
	exec    Exec

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := p.exec(p.role, p.spec)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	fmt.Fprintf(f, "\n==== drill: start %s %v at %s\n", p.name, cmd.Args, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return errors.New("not started")
	}
	return p.cmd.Process.Signal(sig)
}

// stop asks the process to exit (SIGTERM, after SIGCONT in case it is
// stopped) and kills it if it has not after grace.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil || p.pid() == 0 {
		return
	}
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		p.signal(syscall.SIGKILL)
		<-done
	}
}

func (p *proc) exited() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

func writeSpec(dir, name string, v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+".json")
	return path, os.WriteFile(path, b, 0o644)
}

// freePorts returns n distinct free loopback ports below the ephemeral
// range: a region's port must stay free while the region is down (killed,
// then restarted on the same URL), which an ephemeral port is not (any
// outgoing connection may take it).
func freePorts(n int) ([]int, error) { return ports.Block("127.0.0.1", n) }

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
