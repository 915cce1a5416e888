package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/internal/fsyncbench"
	"github.com/livecore/livecore/internal/loadgen"
	"github.com/livecore/livecore/internal/stack"
)

type benchAPIConfig struct {
	url, key        string
	dataDir         string
	sagas, kafka    bool
	payment         bool
	start, limit    float64
	trial, duration time.Duration
	maxP99          time.Duration
	rate            float64
	cpuProfile      string
	memProfile      string
}

func newBenchAPICmd() *cobra.Command {
	var c benchAPIConfig
	cmd := &cobra.Command{
		Use:   "api",
		Short: "HTTP API: maximum sustained orders/s, then p50/p99 at half of it, and peak RSS",
		Long: `api boots the product in this process (or targets --url) and places orders
over HTTP with an open-loop load generator: requests leave at a fixed rate and
each latency counts from its intended send time, so a stalled server shows as
latency (no coordinated omission). Each 201 is an order durably appended
(fsynced) to the event store.

It first searches the highest sustained rate (every request accepted, none
dropped, p99 <= --max-p99), growing by 1.5x from --start-rate and then
bisecting, and then runs --duration at half of it and reports p50/p99 and
the peak RSS (VmHWM) of this process (server and load generator together
when the product runs in-process). Orders carry no payment choice by
default, so no saga work is asked of Temporal; --with-sagas runs the saga
worker and dispatcher too, and --with-payment makes every order a card
checkout.`,
		Example: `  livecore bench api
  livecore bench api --with-sagas --duration 30s
  livecore bench api --url http://127.0.0.1:8080 --key $LIVECORE_CHECKOUT_KEY`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchAPI(cmd.Context(), c, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.url, "url", "", "target a running livecore (default: boot one in this process)")
	f.StringVar(&c.key, "key", envOr("LIVECORE_CHECKOUT_KEY", ""), "checkout API key for --url (env LIVECORE_CHECKOUT_KEY)")
	f.StringVar(&c.dataDir, "data-dir", "", "data dir of the in-process product (default: a fresh temp dir, removed after)")
	f.BoolVar(&c.sagas, "with-sagas", false, "run the embedded Temporal server, saga worker and dispatcher")
	f.BoolVar(&c.kafka, "with-kafka", true, "run the embedded Kafka broker and exactly-once bridge")
	f.BoolVar(&c.payment, "with-payment", false, "every order is a card checkout (placed and checked out in one request)")
	f.Float64Var(&c.start, "start-rate", 1000, "first rate of the search, orders/s")
	f.Float64Var(&c.limit, "max-rate", 50000, "highest rate the search tries")
	f.DurationVar(&c.trial, "trial", 5*time.Second, "duration of each search trial")
	f.DurationVar(&c.maxP99, "max-p99", 100*time.Millisecond, "p99 above which a rate counts as not sustained")
	f.DurationVar(&c.duration, "duration", 20*time.Second, "duration of the run at half the maximum")
	f.Float64Var(&c.rate, "rate", 0, "skip the search: run --duration at this rate")
	f.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the run at half load to this file")
	f.StringVar(&c.memProfile, "memprofile", "", "write an allocation profile (pprof allocs: what the process allocated since it started, and what is live) to this file after the run at half load")
	return cmd
}

func runBenchAPI(ctx context.Context, c benchAPIConfig, out io.Writer) error {
	base, key := strings.TrimRight(c.url, "/"), c.key
	var s *stack.Stack
	if base == "" {
		softMemoryLimit()
		dir := c.dataDir
		if dir == "" {
			d, err := os.MkdirTemp("", "livecore-bench-api-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(d)
			dir = d
		}
		// Warnings and errors only: one line per request would cost more
		// than the request.
		quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		var err error
		s, err = stack.Build(ctx, stack.Config{DataDir: dir, NoTemporal: !c.sagas, NoKafka: !c.kafka, Logger: quiet, KafkaPort: 0})
		if err != nil {
			return err
		}
		defer s.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { _ = s.Run(rctx) })
		wg.Go(func() { _ = s.ServeHTTP(rctx, ln) })
		defer func() { cancel(); wg.Wait() }()
		base, key = "http://"+ln.Addr().String(), s.DemoKeys["checkout"]
	}
	if key == "" {
		return fmt.Errorf("--key is required with --url")
	}
	run := time.Now().UnixNano()
	payment := ""
	if c.payment {
		payment = `,"payment":{"method":"card","card_token":"tok_visa_approve"}`
	}
	body := []byte(`{"customer_id":"cus_bench","currency":"USD","items":[{"sku":"TSHIRT-RED-M","quantity":1,"unit_price":{"amount":"19.99","currency":"USD"}},{"sku":"MUG-01","quantity":2,"unit_price":{"amount":"12.50","currency":"USD"}}]` + payment + `}`)
	var seq atomic.Int64
	client := loadgen.NewClient() // one pool of connections for every run (https targets)
	defer client.CloseIdleConnections()
	cfg := loadgen.Config{Client: client, Request: func(ctx context.Context, _ int) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/orders", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d-%d", run, seq.Add(1)))
		return req, nil
	}}
	if addr, ok := strings.CutPrefix(base, "http://"); ok && !strings.Contains(addr, "/") {
		// Plain HTTP: pre-rendered requests over the generator's own
		// keep-alive connections (loadgen.Raw), so that the generator
		// leaves the server under test more of the machine.
		head := fmt.Appendf(nil, "POST /v1/orders HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nIdempotency-Key: bench-%d-", addr, key, len(body), run)
		cfg.Raw = &loadgen.Raw{Addr: addr, Build: func(_ int, dst []byte) []byte {
			dst = append(dst, head...)
			dst = strconv.AppendInt(dst, seq.Add(1), 10)
			dst = append(dst, "\r\n\r\n"...)
			return append(dst, body...)
		}}
	}

	fmt.Fprintf(out, "livecore bench api: POST /v1/orders, open loop, %d CPUs (GOMAXPROCS %d), target %s (sagas %v, kafka %v, payment %v)\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), base, c.sagas || c.url != "", c.kafka || c.url != "", c.payment)
	maxRate := c.rate * 2
	if c.rate == 0 {
		fmt.Fprintln(out, "search (sustained: all accepted, none dropped, p99 <= "+c.maxP99.String()+"):")
		best, _, err := loadgen.FindMax(ctx, cfg, loadgen.SearchConfig{Start: c.start, Limit: c.limit, Trial: c.trial, MaxP99: c.maxP99},
			func(t loadgen.Trial) {
				mark := "no"
				if t.Sustained {
					mark = "yes"
				}
				fmt.Fprintf(out, "  %s  sustained %s\n", t.Summary(), mark)
			})
		if err != nil {
			return err
		}
		if best == 0 {
			return fmt.Errorf("not even %.0f orders/s was sustained", c.start)
		}
		maxRate = best
		fmt.Fprintf(out, "maximum sustained: %.0f orders/s\n", maxRate)
	}
	half := maxRate / 2
	peakAll := loadgen.PeakRSS()
	if s != nil {
		// Steady state: let the read models and the Kafka bridge work off
		// the search's backlog before measuring.
		t0 := time.Now()
		if err := s.WaitCaughtUp(ctx, 2*time.Minute); err != nil {
			fmt.Fprintf(out, "read models and Kafka bridge did not catch up: %v\n", err)
		} else {
			fmt.Fprintf(out, "read models and Kafka bridge caught up with the log in %s\n", time.Since(t0).Round(time.Millisecond))
		}
		debug.FreeOSMemory() // start the measured run without the search's garbage, and give its memory back
	}
	resetPeakRSS()
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fsyncDir := ""
	if s != nil {
		fsyncDir = filepath.Join(s.DataDir(), "fsync-probe")
		_ = os.MkdirAll(fsyncDir, 0o755)
		if fr, err := fsyncbench.Measure(fsyncDir, 200); err == nil {
			fmt.Fprintf(out, "raw fsync of the data dir's disk before: %s\n", fr)
		}
	}
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	sched0, gc0 := readSchedLatency(), readGC()
	res, err := loadgen.Run(ctx, loadgen.Config{Rate: half, Duration: c.duration, Request: cfg.Request, Client: client, Raw: cfg.Raw})
	if err != nil {
		return err
	}
	if err := writeAllocProfile(c.memProfile); err != nil {
		return err
	}
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	defer func() {
		per := cpu / time.Duration(max(res.Accepted, 1))
		fmt.Fprintf(out, "CPU of this process at half load: %s for %d orders = %s per order (capacity of %d idle cores at this cost: ~%.0f orders/s)\n",
			cpu.Round(time.Millisecond), res.Accepted, per.Round(time.Microsecond), runtime.NumCPU(), float64(runtime.NumCPU())*float64(time.Second)/float64(max(per, 1)))
	}()
	fmt.Fprintf(out, "at half (%.0f orders/s for %s):\n  %s\n", half, c.duration, res.Summary())
	gc := readGC().since(gc0)
	fmt.Fprintf(out, "  Go GC: %s; %.1f KiB allocated per order\n", gc, gc.alloc/1024/float64(max(res.Accepted, 1)))
	fmt.Fprintf(out, "  Go scheduler: runnable goroutines waited for a P %s\n", readSchedLatency().since(sched0))
	if fsyncDir != "" {
		if fr, err := fsyncbench.Measure(fsyncDir, 200); err == nil {
			fmt.Fprintf(out, "raw fsync of the data dir's disk after: %s\n", fr)
		}
	}
	rss := loadgen.PeakRSS()
	who := "this process (load generator only)"
	if s != nil {
		who = "this process (product + load generator)"
		fmt.Fprintf(out, "peak RSS over the whole bench, search included: %.0f MiB\n", float64(max(peakAll, rss))/(1<<20))
		if s.Dispatcher != nil {
			// The sagas drain behind the API: how far they got by now.
			confirmed, placed := 0, 0
			for pos := uint64(1); ; {
				envs, err := s.Store.ReadAll(ctx, pos, 10_000)
				if err != nil || len(envs) == 0 {
					break
				}
				for _, e := range envs {
					switch e.Type {
					case "order.confirmed.v1":
						confirmed++
					case "order.placed.v2":
						placed++
					}
				}
				pos = envs[len(envs)-1].Position + 1
			}
			ds := s.Dispatcher.Stats()
			fmt.Fprintf(out, "  sagas: %d started by the dispatcher, %d of %d orders confirmed by the end of the run\n", ds.Started, confirmed, placed)
		}
		if pst, ok := s.Store.(*pebble.Store); ok {
			ps := pst.Stats()
			fmt.Fprintf(out, "  event store (whole run): %d appends, %d events, %d group commits (fsyncs): %.1f appends per fsync\n",
				ps.Appends, ps.Events, ps.Commits, float64(ps.Appends)/float64(max(ps.Commits, 1)))
		}
	}
	fmt.Fprintf(out, "peak RSS (VmHWM) during the run at half load, %s: %.0f MiB\n", who, float64(rss)/(1<<20))
	return nil
}

// softMemoryLimit sets the Go runtime's soft memory limit to
// devMemoryLimit unless GOMEMLIMIT is set: the GC then works harder as the
// heap nears it instead of letting it double (GOGC) under a backlog of
// requests. With the limit in place GOGC need not bound the heap too, so
// it goes up to devGCPercent (unless GOGC is set).
func softMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(devMemoryLimit)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(devGCPercent)
	}
}

// devGCPercent is GOGC under devMemoryLimit. Every GC cycle's mark phase
// takes most of the two CPUs for 20-50 ms (its idle-priority workers run
// on the Ps that have nothing queued, and there are twice as many Ps as
// CPUs), and the requests due then make the API's tail; fewer cycles make
// fewer such windows. bench api at 4,200/s, alternating: 9 cycles in 20 s
// and p99 19.2 / 12.8 ms at 800, against 14 cycles and 22.5 / 15.7 ms at
// 400; RSS at that load 786 MiB against 657 (the peak under overload is
// set by the limit, not by GOGC).
const devGCPercent = 800

// devMemoryLimit keeps the one-process product (Go heap, plus Pebble's and
// SQLite's memory outside it) under 1 GiB through bench api's overload
// trials. With 768 MiB two whole benches peaked at 1,007 and 1,025 MiB;
// with 640 MiB at 880 and 881 MiB, for ~2% more CPU in GC at half load.
// Once the projections let go of decoded events the live heap
// was ~65 MiB instead of ~110, and 640 MiB let the peak reach 962-983 MiB
// when the search got far; with 576 MiB, 808-910 MiB for the same GC
// headroom above the live heap as before.
const devMemoryLimit = 576 << 20

// resetPeakRSS resets this process's VmHWM to its current RSS (Linux:
// "5" to /proc/self/clear_refs), so the half-load run reports its own peak.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// writeAllocProfile writes pprof's allocs profile to file (nothing if
// file is empty): its alloc_space samples are what the process allocated
// since it started (with --rate, mostly the run's), inuse_space what is
// live now.
func writeAllocProfile(file string) error {
	if file == "" {
		return nil
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("allocation profile: %w", err)
	}
	return f.Close()
}
