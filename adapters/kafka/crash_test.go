package kafka

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/domain/event"
)

// The crash test re-executes the test binary as a child process that owns
// the Pebble store: it runs writer goroutines appending across thousands of
// streams and the bridge. The parent owns the broker (kfake listening on a
// port, or the real Kafka), SIGKILLs the child at random moments (and at
// the worst one: every record of a transaction acknowledged, EndTxn not
// sent), starts the next child, and at the end compares what read_committed
// consumers see with what the store holds.

const crashChildEnv = "LIVECORE_BRIDGE_CRASH_CHILD" // JSON crashSpec

type crashSpec struct {
	Dir     string   `json:"dir"`
	Brokers []string `json:"brokers"`
	Region  string   `json:"region"`
	Name    string   `json:"name"`
	TxnID   string   `json:"txn_id"`
	Topics  Topics   `json:"topics"`
	Seed    uint64   `json:"seed"`
	Streams int      `json:"streams"`
	Writers int      `json:"writers"`
	// PauseAt > 0: block in BeforeCommit of the PauseAt-th transaction.
	PauseAt int `json:"pause_at"`
	// Drain: no writers; exit 0 once everything is published.
	Drain bool `json:"drain"`
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		os.Exit(crashChild(spec))
	}
	os.Exit(m.Run())
}

// crashChild is the child process: it prints SESSION <checkpoint> when a
// bridge session starts, PAUSED <pid> <epoch> <first> <last> when it blocks
// before a commit, DRAINED when caught up in drain mode.
func crashChild(specJSON string) int {
	var spec crashSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child spec:", err)
		return 2
	}
	store, err := pebble.Open(pebble.Config{Dir: spec.Dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open store:", err)
		return 2
	}
	defer store.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	if !spec.Drain {
		for w := range spec.Writers {
			go crashWriter(ctx, store, spec, w)
		}
	}
	txns := 0
	cfg := Config{
		Source:          store,
		Brokers:         spec.Brokers,
		Region:          spec.Region,
		Name:            spec.Name,
		TransactionalID: spec.TxnID,
		Topics:          spec.Topics,
		MaxEvents:       1000,
		MaxDelay:        20 * time.Millisecond,
		RetryBackoff:    20 * time.Millisecond,
		MaxRetryBackoff: 200 * time.Millisecond,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Hooks: Hooks{
			SessionStart: func(_ context.Context, cp uint64) { say("SESSION %d", cp) },
			BeforeCommit: func(_ context.Context, ti TxnInfo) {
				txns++
				if txns == spec.PauseAt {
					say("PAUSED %d %d %d %d", ti.ProducerID, ti.ProducerEpoch, ti.FirstPosition, ti.LastPosition)
					select {} // until SIGKILL
				}
			},
		},
	}
	b, err := New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bridge:", err)
		return 2
	}
	if spec.Drain {
		go func() {
			h, err := store.Head(ctx)
			if err == nil {
				err = b.WaitPublished(ctx, h)
			}
			if err == nil {
				say("DRAINED %d", h)
			}
			cancel()
		}()
	}
	if err := b.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "bridge run:", err)
		return 1
	}
	return 0
}

// crashWriter appends 1-3 events at a time to random streams until killed.
func crashWriter(ctx context.Context, s event.Appender, spec crashSpec, w int) {
	rng := rand.New(rand.NewPCG(spec.Seed, uint64(w)))
	data := jsonData(300)
	for n := 0; ctx.Err() == nil; n++ {
		sid := rng.IntN(spec.Streams)
		stream := fmt.Sprintf("%s-%d", categories[sid%len(categories)], sid)
		k := 1 + rng.IntN(3)
		evs := make([]event.Proposed, k)
		for i := range evs {
			evs[i] = event.Proposed{
				ID:            event.DeriveID(fmt.Sprintf("crash-%d-%d-%d", spec.Seed, w, n), i),
				Type:          "test.happened.v1",
				SchemaVersion: 1,
				Data:          data,
				Metadata:      event.Metadata{Tenant: "t1", Actor: "crash-writer"},
			}
		}
		if _, err := s.Append(ctx, stream, event.Any, evs); err != nil {
			return
		}
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
	}
}

// child is a running child process and its stdout lines.
type child struct {
	cmd    *exec.Cmd
	lines  chan string
	done   chan struct{}
	err    error
	stderr string // unless killed
}

func startChild(t *testing.T, spec crashSpec) *child {
	t.Helper()
	js, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+string(js))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
		c.err = cmd.Wait()
		if stderr.Len() > 0 && (c.err == nil || !strings.Contains(c.err.Error(), "killed")) {
			c.stderr = stderr.String()
		}
		close(c.lines)
		close(c.done)
	}()
	return c
}

// wait waits for the child to exit; if it does not within d, it is sent
// SIGQUIT (its goroutines go to stderr) and the test fails.
func (c *child) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(d):
		_ = c.cmd.Process.Signal(syscall.SIGQUIT)
		<-c.done
		t.Fatalf("child did not exit within %v; stderr:\n%s", d, c.stderr)
	}
	if c.stderr != "" {
		t.Logf("child stderr:\n%s", c.stderr)
	}
}

func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// waitLine returns the next line starting with prefix, or "" if the child
// exited or within passed.
func (c *child) waitLine(prefix string, within time.Duration) string {
	timeout := time.After(within)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return ""
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			return ""
		}
	}
}

// TestBridgeCrash: see the comment at the top of this file.
func TestBridgeCrash(t *testing.T) {
	kills := 50
	if testing.Short() {
		kills = 10
	}
	forEachTarget(t, func(t *testing.T, tg target) { testCrash(t, tg, kills) })
}

func testCrash(t *testing.T, tg target, kills int) {
	base := testConfig(t, tg, nil)
	base.setDefaults()
	spec := crashSpec{
		Dir:     t.TempDir(),
		Brokers: tg.brokers,
		Region:  base.Region,
		Name:    base.Name,
		TxnID:   base.TransactionalID,
		Topics:  base.Topics,
		Streams: 2000,
		Writers: 4,
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	start := time.Now()
	var (
		randomKills, pauseKills, startupKills int
		paused                                [][2]int64 // producer id, epoch of killed-before-commit transactions
	)
	for i := range kills {
		spec.Seed = uint64(i + 1)
		spec.PauseAt = 0
		pause, startup := i%4 == 1, i%10 == 3
		if pause {
			spec.PauseAt = 1 + rng.IntN(3)
		}
		c := startChild(t, spec)
		switch {
		case pause: // between the last produce's ack and EndTxn
			l := c.waitLine("PAUSED", 30*time.Second)
			if l == "" {
				c.kill()
				t.Fatalf("kill %d: child never paused before a commit (exit: %v)", i, c.err)
			}
			var pid, epoch, first, last int64
			fmt.Sscanf(l, "PAUSED %d %d %d %d", &pid, &epoch, &first, &last)
			paused = append(paused, [2]int64{pid, epoch})
			pauseKills++
		case startup: // during startup: store open, fencing, checkpoint read
			time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
			startupKills++
		default: // anywhere once it runs
			if c.waitLine("SESSION", 30*time.Second) == "" {
				c.kill()
				t.Fatalf("kill %d: child never started a session (exit: %v)", i, c.err)
			}
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
			randomKills++
		}
		c.kill()
	}
	killing := time.Since(start)

	// Drain: a last child publishes what the store has, then exits.
	spec.Drain, spec.PauseAt = true, 0
	c := startChild(t, spec)
	l := c.waitLine("DRAINED", 2*time.Minute)
	c.wait(t, 30*time.Second)
	if l == "" {
		t.Fatalf("drain child: no DRAINED line (exit: %v)", c.err)
	}

	store, err := pebble.Open(pebble.Config{Dir: spec.Dir})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cfg := base
	cfg.Source = store
	h := head(t, store)
	r := verify(t, cfg)
	cons := consumeCommitted(t, cfg)
	pausedVisible := 0
	for _, p := range paused {
		pausedVisible += cons.producers[p]
	}
	all := countAll(t, cfg)
	t.Logf("%s: kills %d (random %d, at startup %d, between produce and commit %d) in %v; events %d in %d streams; records %d, missing %d, duplicates %d, order violations %d; records of killed-before-commit transactions visible %d; aborted records in the log (read_uncommitted - read_committed) %d",
		tg.name, kills, randomKills, startupKills, pauseKills, killing.Round(time.Millisecond), h, r.Streams,
		cons.records, cons.missing(t, store, h), cons.duplicates(), cons.outOfOrder, pausedVisible, all-cons.records)
	t.Logf("verifier:\n%s", r)
	if !r.OK() || r.Published != h || cons.records != int(h) || cons.duplicates() != 0 || cons.outOfOrder != 0 || pausedVisible != 0 {
		t.Errorf("not exactly once after %d kills", kills)
	}
	if pauseKills == 0 {
		t.Errorf("no kill between produce and commit")
	}
}

// countAll counts event records read_uncommitted: aborted ones included.
func countAll(t testing.TB, cfg Config) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	md, err := metadata(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]topicMeta{}
	for n, tm := range md {
		if strings.HasPrefix(n, cfg.Topics.Prefix) && n != cfg.Topics.Checkpoint {
			want[n] = tm
		}
	}
	ends, err := listOffsets(ctx, cl, want, offsetEnd)
	if err != nil {
		t.Fatal(err)
	}
	var ranges []partRange
	for k, e := range ends {
		ranges = append(ranges, partRange{topic: k.topic, partition: k.partition, end: e})
	}
	n := 0
	if _, err := readRanges(ctx, cl, ranges, false, func(r *kgo.Record) error {
		if !r.Attrs.IsControl() {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}
