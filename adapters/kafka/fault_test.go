package kafka

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// faultCounts tallies injected faults by kind.
type faultCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *faultCounts) add(kind string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	f.n[kind]++
}

func (f *faultCounts) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.n {
		n += v
	}
	return n
}

func (f *faultCounts) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var parts []string
	total := 0
	for k, v := range f.n {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		total += v
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

// TestFaultsKfake injects faults with kfake while a writer appends and the
// bridge publishes: EndTxn requests dropped (connection closed before the
// broker acts), EndTxn responses dropped after the broker committed, EndTxn,
// Produce and AddPartitionsToTxn errors (retriable, ambiguous and fatal).
// After every commit the bridge reports, an independent reader checks that
// the checkpoint is visible (no false commits); at the end a read_committed
// consumer checks that every committed checkpoint covers exactly its
// events (no torn transaction) and the verifier checks exactly-once.
//
// It runs twice: with KIP-890 transactions (Kafka 4 protocol, no
// AddPartitionsToTxn) and with the Kafka 3.7 protocol (AddPartitionsToTxn,
// EndTxn without epoch bumps).
func TestFaultsKfake(t *testing.T) {
	for _, v := range []struct {
		name     string
		versions *kversion.Versions
	}{{"kip890", nil}, {"kafka3.7", kversion.V3_7_0()}} {
		t.Run(v.name, func(t *testing.T) { testFaults(t, v.versions) })
	}
}

func testFaults(t *testing.T, versions *kversion.Versions) {
	var kopts []kfake.Opt
	if versions != nil {
		kopts = append(kopts, kfake.MaxVersions(versions))
	}
	kf, brokers := startKfake(t, kopts...)
	tg := target{name: "kfake", brokers: brokers, kf: kf}
	store := newMemStore(t)
	cfg := testConfig(t, tg, store)
	cfg.MaxEvents = 500
	cfg.MaxDelay = 20 * time.Millisecond
	cfg.TransactionTimeout = 10 * time.Second
	cfg.MaxRetryBackoff = 200 * time.Millisecond
	cfg.ClientOpts = []kgo.Opt{
		kgo.RequestTimeoutOverhead(2 * time.Second),
		kgo.RetryTimeout(5 * time.Second),
	}
	if versions != nil {
		cfg.ClientOpts = append(cfg.ClientOpts, kgo.MaxVersions(versions))
	}

	// A side client: it reads checkpoints and replays EndTxn requests whose
	// responses we drop.
	side, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, cfg.ClientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer side.Close()

	var (
		faults      faultCounts
		active      atomic.Bool
		passthrough atomic.Bool
		rngMu       sync.Mutex
		rng         = rand.New(rand.NewPCG(42, 1))
	)
	roll := func(p float64) bool {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.Float64() < p
	}
	pick := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}
	active.Store(true)

	kf.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		if passthrough.Load() || !active.Load() || !roll(0.5) {
			return nil, nil, false
		}
		end := req.(*kmsg.EndTxnRequest)
		switch k := pick(6); k {
		case 0: // the request is lost: close the connection, do nothing
			faults.add("endtxn-request-dropped")
			return nil, errors.New("injected: connection lost before EndTxn"), true
		case 1, 2: // the broker commits; the response is lost, or replaced by an error
			replay := *end
			kf.SleepControl(func() {
				passthrough.Store(true)
				defer passthrough.Store(false)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, err := replay.RequestWith(ctx, side); err != nil {
					t.Logf("replay EndTxn: %v", err)
				}
			})
			if k == 1 {
				faults.add("endtxn-applied-response-dropped")
				return nil, errors.New("injected: connection lost after EndTxn"), true
			}
			faults.add("endtxn-applied-answered-unknown_server_error")
			resp := end.ResponseKind().(*kmsg.EndTxnResponse)
			resp.ErrorCode = kerr.UnknownServerError.Code
			return resp, nil, true
		default: // an error answer, the broker does nothing
			codes := []*kerr.Error{kerr.UnknownServerError, kerr.CoordinatorNotAvailable, kerr.ConcurrentTransactions, kerr.NotCoordinator, kerr.RequestTimedOut}
			code := codes[pick(len(codes))]
			faults.add("endtxn-" + strings.ToLower(code.Message))
			resp := end.ResponseKind().(*kmsg.EndTxnResponse)
			resp.ErrorCode = code.Code
			return resp, nil, true
		}
	})
	var handles []*kfake.FaultHandle
	for _, f := range []struct {
		key  kmsg.Key
		errs []*kerr.Error
		p    float64
	}{
		{kmsg.Produce, []*kerr.Error{kerr.NotLeaderForPartition, kerr.RequestTimedOut, kerr.NotEnoughReplicas, kerr.UnknownServerError}, 0.03},
		{kmsg.AddPartitionsToTxn, []*kerr.Error{kerr.ConcurrentTransactions, kerr.CoordinatorNotAvailable, kerr.UnknownServerError}, 0.1},
		{kmsg.InitProducerID, []*kerr.Error{kerr.CoordinatorLoadInProgress}, 0.1},
	} {
		for _, e := range f.errs {
			kind := fmt.Sprintf("%s-%s", strings.ToLower(f.key.Name()), strings.ToLower(e.Message))
			handles = append(handles, kf.Fault(kfake.Fault{
				Keys:  []kmsg.Key{f.key},
				Err:   e,
				Count: -1,
				When: func(kmsg.Request) bool {
					if active.Load() && roll(f.p/float64(len(f.errs))) {
						faults.add(kind)
						return true
					}
					return false
				},
			}))
		}
	}

	// Every commit the bridge believes in must be visible right away.
	var believed, falseCommits atomic.Int64
	var lastBelieved atomic.Uint64
	cfg.Hooks.AfterCommit = func(ctx context.Context, ti TxnInfo) {
		believed.Add(1)
		lastBelieved.Store(ti.LastPosition)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		cp, _, err := readCheckpoint(rctx, side, cfg.Topics.Checkpoint, cfg.Name)
		if err != nil || cp.Position < ti.LastPosition {
			falseCommits.Add(1)
			t.Errorf("bridge committed up to %d but the visible checkpoint is %d (%v)", ti.LastPosition, cp.Position, err)
		}
	}
	// A session that starts beyond the last commit the bridge believed in
	// found a commit it had given up on (ambiguous, but it had landed).
	var sessions, landedAnyway atomic.Int64
	cfg.Hooks.SessionStart = func(_ context.Context, cp uint64) {
		sessions.Add(1)
		if cp > lastBelieved.Load() {
			landedAnyway.Add(1)
			lastBelieved.Store(cp)
		}
	}

	// Run the bridge; restart it if it stops (an injected fault may look
	// like fencing).
	ctx, cancel := context.WithCancel(context.Background())
	var (
		runs    atomic.Int64
		stopped = make(chan struct{})
		runErrs []string
	)
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			runs.Add(1)
			if err := b.Run(ctx); err != nil && ctx.Err() == nil {
				runErrs = append(runErrs, err.Error())
			}
		}
	}()

	// Write for a while with faults on.
	const streams = 1000
	wctx, wcancel := context.WithTimeout(ctx, 6*time.Second)
	var written int
	for seed := uint64(1); wctx.Err() == nil; seed++ {
		appendEvents(t, store, streams, 100, 100, seed)
		written += 100
		time.Sleep(20 * time.Millisecond)
	}
	wcancel()
	active.Store(false)
	for _, h := range handles {
		h.Remove()
	}
	h := head(t, store)
	waitPublished(t, b, h, time.Minute)
	cancel()
	<-stopped

	c := consumeCommitted(t, cfg)
	r := verify(t, cfg)
	torn := tornTransactions(t, cfg, c)
	t.Logf("faults injected: %s", &faults)
	t.Logf("events %d, commits believed %d, ambiguous commits found committed on restart %d, sessions %d, runs %d (stops: %v); false commits %d, torn transactions %d; records %d, missing %d, duplicates %d, out of order %d",
		h, believed.Load(), landedAnyway.Load(), sessions.Load(), runs.Load(), runErrs, falseCommits.Load(), torn, c.records, c.missing(t, store, h), c.duplicates(), c.outOfOrder)
	if faults.total() < 10 {
		t.Errorf("only %d faults injected; the run proves little", faults.total())
	}
	if falseCommits.Load() != 0 || torn != 0 {
		t.Errorf("false commits %d, torn transactions %d; want 0, 0", falseCommits.Load(), torn)
	}
	if !r.OK() || c.records != int(h) || c.duplicates() != 0 || c.outOfOrder != 0 {
		t.Errorf("not exactly once after recovery:\n%s", r)
	}
}

// tornTransactions checks each committed transaction as read_committed sees
// it: the events between two consecutive checkpoints must be exactly the
// positions the later checkpoint covers, each once. It returns how many
// transactions are not whole.
func tornTransactions(t testing.TB, cfg Config, c *consumed) int {
	t.Helper()
	if len(c.checkpoints) == 0 {
		t.Fatal("no checkpoints")
	}
	seen := c.positions
	torn := 0
	prev := uint64(0)
	for _, cp := range c.checkpoints {
		if cp <= prev {
			torn++ // a checkpoint that does not move forward republished something
			continue
		}
		for p := prev + 1; p <= cp; p++ {
			if seen[p] != 1 {
				torn++
				break
			}
		}
		prev = cp
	}
	return torn
}
