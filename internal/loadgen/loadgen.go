// Package loadgen is an open-loop HTTP load generator for the livecore
// API: requests leave at a fixed arrival rate whatever the server does, and
// each latency is measured from the request's intended send time, so a
// stalled server shows as latency instead of silently lowering the rate
// (no coordinated omission).
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request builds the i-th request of a run.
type Request func(ctx context.Context, i int) (*http.Request, error)

// Config is one run at a fixed rate.
type Config struct {
	// Rate is the arrival rate, requests per second (required).
	Rate float64
	// Duration of the run (required).
	Duration time.Duration
	// MaxInFlight bounds outstanding requests; an arrival past it is
	// counted as Dropped, not sent (default 4096).
	MaxInFlight int
	// Request builds each request (required unless Raw is set). A 2xx
	// answer counts as accepted.
	Request Request
	// Client sends them (default NewClient()).
	Client *http.Client
	// Raw, if set, sends pre-rendered requests instead of Request, over
	// connections of its own (see Raw).
	Raw *Raw
}

// MaxConns bounds the connections NewClient's client opens. Requests past
// it wait for a connection; their wait counts in their latency (measured
// from the intended send time), so the bound hides nothing, and it keeps
// client and server (often one process) within their file descriptors.
const MaxConns = 1024

// NewClient is an HTTP client for load: at most MaxConns keep-alive
// connections.
func NewClient() *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxConnsPerHost:     MaxConns,
		MaxIdleConns:        MaxConns,
		MaxIdleConnsPerHost: MaxConns,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Result is what a run measured.
type Result struct {
	Rate     float64
	Elapsed  time.Duration // first intended send to last answer
	Offered  int           // arrivals scheduled
	Accepted int           // 2xx
	Failed   int           // non-2xx or transport error
	Dropped  int           // over MaxInFlight, never sent
	Status   map[int]int   // by status code (0: transport error)
	// Latencies of accepted requests from their intended send time,
	// sorted.
	Latencies []time.Duration
	FirstErr  string
}

// AcceptedPerSec is accepted requests per second of the run's schedule.
func (r Result) AcceptedPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Accepted) / r.Elapsed.Seconds()
}

// Quantile is the q-quantile (0..1) of accepted latencies.
func (r Result) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q * float64(len(r.Latencies)-1))
	return r.Latencies[i]
}

// Run sends requests at cfg.Rate for cfg.Duration and waits for every
// answer.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.Request == nil && cfg.Raw == nil {
		return Result{}, errors.New("loadgen: Rate, Duration and Request (or Raw) are required")
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 4096
	}
	var send func(ctx context.Context, i int) (int, error)
	if cfg.Raw != nil {
		pool := newRawPool(*cfg.Raw)
		defer pool.close()
		send = pool.do
	} else if cfg.Client == nil {
		// A client of its own: its connections go with the run (runs
		// that each left 1,024 idle connections behind would run the
		// process out of file descriptors).
		cfg.Client = NewClient()
		defer cfg.Client.CloseIdleConnections()
	}
	if send == nil {
		send = func(ctx context.Context, i int) (int, error) {
			req, err := cfg.Request(ctx, i)
			if err != nil {
				return 0, err
			}
			resp, err := cfg.Client.Do(req)
			if err != nil {
				return 0, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode, nil
		}
	}
	n := int(cfg.Rate * cfg.Duration.Seconds())
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	res := Result{Rate: cfg.Rate, Offered: n, Status: map[int]int{}}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		inFlight atomic.Int64
		lat      = make([]time.Duration, 0, n)
		lastDone time.Time
	)
	record := func(intended time.Time, status int, err error) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		res.Status[status]++
		if now.After(lastDone) {
			lastDone = now
		}
		if err == nil && status >= 200 && status < 300 {
			res.Accepted++
			lat = append(lat, now.Sub(intended))
			return
		}
		res.Failed++
		if res.FirstErr == "" {
			if err != nil {
				res.FirstErr = err.Error()
			} else {
				res.FirstErr = "status " + strconv.Itoa(status)
			}
		}
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		intended := start.Add(time.Duration(i) * interval)
		if d := time.Until(intended); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				wg.Wait()
				return res, ctx.Err()
			case <-t.C:
			}
		}
		if inFlight.Load() >= int64(cfg.MaxInFlight) {
			mu.Lock()
			res.Dropped++
			mu.Unlock()
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		go func(i int, intended time.Time) {
			defer wg.Done()
			defer inFlight.Add(-1)
			status, err := send(ctx, i)
			record(intended, status, err)
		}(i, intended)
	}
	wg.Wait()
	res.Elapsed = max(lastDone.Sub(start), cfg.Duration)
	slices.Sort(lat)
	res.Latencies = lat
	return res, nil
}

// Trial is one step of FindMax.
type Trial struct {
	Result
	Sustained bool
}

// SearchConfig bounds FindMax.
type SearchConfig struct {
	// Start is the first rate tried; the rate grows by Factor while
	// trials are sustained, then bisects Steps times.
	Start, Limit float64
	Factor       float64 // default 1.5
	Steps        int     // default 3
	// Trial is each trial's duration (default 5s); Pause between trials
	// lets the server drain (default 1s).
	Trial, Pause time.Duration
	// MaxP99 is the p99 a sustained rate may have (default 100ms): past
	// its capacity a server's queue, and so latency, grows without bound.
	MaxP99 time.Duration
}

// Sustained is the rule: every arrival sent and accepted (>= 99.9%), none
// dropped, p99 within bound.
func (c SearchConfig) sustained(r Result) bool {
	return r.Dropped == 0 && float64(r.Accepted) >= 0.999*float64(r.Offered) && r.Quantile(0.99) <= c.MaxP99
}

// FindMax finds the highest sustained rate: geometric growth from Start,
// then bisection between the last sustained and the first failed rate.
// It returns that rate (0 if even Start failed) and every trial.
func FindMax(ctx context.Context, cfg Config, sc SearchConfig, progress func(Trial)) (float64, []Trial, error) {
	if sc.Factor <= 1 {
		sc.Factor = 1.5
	}
	if sc.Steps <= 0 {
		sc.Steps = 3
	}
	if sc.Trial <= 0 {
		sc.Trial = 5 * time.Second
	}
	if sc.Pause <= 0 {
		sc.Pause = time.Second
	}
	if sc.MaxP99 <= 0 {
		sc.MaxP99 = 100 * time.Millisecond
	}
	if sc.Limit <= 0 {
		sc.Limit = 1e6
	}
	var trials []Trial
	try := func(rate float64) (bool, error) {
		c := cfg
		c.Rate, c.Duration = rate, sc.Trial
		r, err := Run(ctx, c)
		if err != nil {
			return false, err
		}
		t := Trial{Result: r, Sustained: sc.sustained(r)}
		trials = append(trials, t)
		if progress != nil {
			progress(t)
		}
		time.Sleep(sc.Pause)
		return t.Sustained, nil
	}
	good, bad := 0.0, 0.0
	for rate := sc.Start; rate <= sc.Limit; rate *= sc.Factor {
		ok, err := try(rate)
		if err != nil {
			return good, trials, err
		}
		if !ok {
			bad = rate
			break
		}
		good = rate
	}
	if bad == 0 {
		return good, trials, nil
	}
	for range sc.Steps {
		mid := (good + bad) / 2
		if good == 0 {
			mid = bad / 2
		}
		ok, err := try(mid)
		if err != nil {
			return good, trials, err
		}
		if ok {
			good = mid
		} else {
			bad = mid
		}
	}
	return good, trials, nil
}

// PeakRSS returns this process's peak resident set size (VmHWM from
// /proc/self/status), or 0 where that is not available.
func PeakRSS() int64 { return procStatusKB("/proc/self/status", "VmHWM:") * 1024 }

// PeakRSSOf returns process pid's peak RSS, or 0.
func PeakRSSOf(pid int) int64 {
	return procStatusKB("/proc/"+strconv.Itoa(pid)+"/status", "VmHWM:") * 1024
}

func procStatusKB(path, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// Summary is a one-line description of r.
func (r Result) Summary() string {
	first := ""
	if r.FirstErr != "" {
		first = "; first failure: " + r.FirstErr
	}
	return fmt.Sprintf("offered %6.0f/s  accepted %7.0f/s  (%d/%d, failed %d, dropped %d)  p50 %7s  p99 %7s  p99.9 %7s  max %7s",
		r.Rate, r.AcceptedPerSec(), r.Accepted, r.Offered, r.Failed, r.Dropped,
		round(r.Quantile(0.5)), round(r.Quantile(0.99)), round(r.Quantile(0.999)), round(r.Quantile(1))) + first
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
