package pebble_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/domain/event"
)

// The crash test re-executes this test binary as a child that appends to
// the store in LIVECORE_CRASH_CHILD (a directory) and reports each
// acknowledged append on stdout; the parent SIGKILLs it at random moments
// and checks the store after every kill.
const (
	crashChildEnv = "LIVECORE_CRASH_CHILD"
	crashRunEnv   = "LIVECORE_CRASH_RUN"
	crashSeedEnv  = "LIVECORE_CRASH_SEED" // set it to replay a parent run
)

// ackLine is what the child prints for each event of an acknowledged
// append, in one write per append (a pipe write of < 4 KiB is atomic, so a
// kill never leaves half a line that parses):
//
//	ACK <stream> <version> <event ID> <sha256 of data>
type ackRec struct {
	stream  string
	version uint64
	data    string // hex SHA-256
}

// TestCrashChild is the child. It does nothing unless started by
// TestCrashRecovery.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("child of TestCrashRecovery")
	}
	run, _ := strconv.ParseUint(os.Getenv(crashRunEnv), 10, 64)
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	s, err := pebble.Open(pebble.Config{Dir: dir})
	if err != nil {
		fmt.Printf("BAD open: %v\n", err)
		os.Exit(2)
	}
	os.Stdout.WriteString("READY\n")
	var outMu sync.Mutex
	say := func(b []byte) {
		outMu.Lock()
		defer outMu.Unlock()
		if _, err := os.Stdout.Write(b); err != nil {
			os.Exit(3) // the parent is gone
		}
	}
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second) // never outlive a vanished parent for long
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, run<<8|uint64(g)))
			for i := 0; time.Now().Before(deadline); i++ {
				stream := fmt.Sprintf("crash-%d", rng.IntN(40))
				expected := event.Any
				if rng.IntN(4) == 0 { // read-then-append with an exact version
					cur, err := s.ReadStream(ctx, stream, 1, 0)
					if err != nil {
						say(fmt.Appendf(nil, "BAD read %s: %v\n", stream, err))
						return
					}
					expected = event.Exact(uint64(len(cur)))
				}
				evs := make([]event.Proposed, 1+rng.IntN(3))
				for j := range evs {
					data := make([]byte, 16+rng.IntN(400))
					for k := range data {
						data[k] = 'a' + byte(rng.IntN(26))
					}
					evs[j] = event.Proposed{
						ID:            event.DeriveID(fmt.Sprintf("run%d-g%d-%d", run, g, i), j),
						Type:          "crash.appended.v1",
						SchemaVersion: 1,
						Data:          fmt.Appendf(nil, `{"run":%d,"pad":%q}`, run, data),
					}
				}
				res, err := s.Append(ctx, stream, expected, evs)
				if err != nil {
					continue // a conflict, most likely; not acknowledged, not reported
				}
				var line []byte
				for j, e := range evs {
					sum := sha256.Sum256(e.Data)
					line = fmt.Appendf(line, "ACK %s %d %s %s\n", stream, res.FirstVersion+uint64(j), e.ID, hex.EncodeToString(sum[:]))
				}
				say(line)
				if rng.IntN(8) == 0 { // a retry after a "lost response" must return the same result
					again, err := s.Append(ctx, stream, event.NoStream, evs)
					if err != nil || again != res {
						say(fmt.Appendf(nil, "BAD retry of %s: %+v %v, original %+v\n", evs[0].ID, again, err, res))
					}
				}
			}
		})
	}
	wg.Wait()
	s.Close()
}

// TestCrashRecovery kills an appending child process with SIGKILL at
// random moments (>= 200 times; 20 with -short), reopening the store after
// each kill and restarting the child on the same directory. After every
// restart: every acknowledged append is present and byte-identical (same
// stream, version, ID, data hash), $all reads without ErrCorrupt, and both
// hash chains verify over the whole log. LIVECORE_CRASH_SEED replays a run.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("in the child")
	}
	kills := 200
	if testing.Short() {
		kills = 20
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashSeedEnv); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (%s=%d to replay)", seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))
	dir := t.TempDir()
	ctx := t.Context()

	acked := map[string]ackRec{}
	var lost, corrupt, duringOpen int
	start := time.Now()
	for run := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			crashChildEnv+"="+dir, fmt.Sprintf("%s=%d", crashRunEnv, run), fmt.Sprintf("%s=%d", crashSeedEnv, seed))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan struct{})
		lines := make(chan []string, 1)
		go func() { lines <- readChild(out, ready) }()

		// One kill in ten lands at a random moment of start-up or recovery;
		// the others after the child has appended for 0-40 ms.
		if rng.IntN(10) == 0 {
			time.Sleep(time.Duration(rng.IntN(30_000)) * time.Microsecond)
			duringOpen++
		} else {
			select {
			case <-ready:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("run %d: child not ready after 60 s", run)
			}
			time.Sleep(time.Duration(rng.IntN(40_000)) * time.Microsecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("run %d: kill: %v", run, err)
		}
		got := <-lines
		if err := cmd.Wait(); err == nil {
			t.Fatalf("run %d: child exited normally before the kill", run)
		}
		for _, l := range got {
			f := strings.Fields(l)
			if f[0] == "BAD" {
				t.Fatalf("run %d: child reports: %s", run, l)
			}
			if f[0] != "ACK" || len(f) != 5 {
				continue
			}
			v, _ := strconv.ParseUint(f[2], 10, 64)
			acked[f[3]] = ackRec{stream: f[1], version: v, data: f[4]}
		}

		// Reopen and check everything acknowledged so far.
		s, err := pebble.Open(pebble.Config{Dir: dir})
		if err != nil {
			t.Fatalf("run %d: reopen after kill: %v", run, err)
		}
		all, err := s.ReadAll(ctx, 1, 0)
		if err != nil {
			s.Close()
			t.Fatalf("run %d: read $all after kill: %v", run, err)
		}
		corrupt += chainErrors(all)
		byID := make(map[string]*event.Envelope, len(all))
		for i := range all {
			byID[all[i].ID] = &all[i]
		}
		for id, a := range acked {
			e, ok := byID[id]
			if !ok || e.StreamID != a.stream || e.Version != a.version {
				lost++
				t.Errorf("run %d: acknowledged %s (%s v%d) missing or moved", run, id, a.stream, a.version)
				continue
			}
			if sum := sha256.Sum256(e.Data); hex.EncodeToString(sum[:]) != a.data {
				corrupt++
				t.Errorf("run %d: %s served with different data", run, id)
			}
		}
		// The stream index agrees with $all for a sample stream.
		sample := fmt.Sprintf("crash-%d", rng.IntN(40))
		st, err := s.ReadStream(ctx, sample, 1, 0)
		if err != nil {
			t.Fatalf("run %d: read %s: %v", run, sample, err)
		}
		for _, e := range st {
			if e.Position > uint64(len(all)) || all[e.Position-1].ID != e.ID {
				corrupt++
				t.Errorf("run %d: %s v%d at %d disagrees with $all", run, sample, e.Version, e.Position)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatalf("run %d: close: %v", run, err)
		}
		if lost > 0 || corrupt > 0 {
			t.Fatalf("after %d kills: %d acknowledged events, %d lost, %d corrupt served", run+1, len(acked), lost, corrupt)
		}
		if (run+1)%50 == 0 {
			t.Logf("%d kills, %d acknowledged events, %d stored, %s", run+1, len(acked), len(all), time.Since(start).Round(time.Second))
		}
	}
	t.Logf("kills %d (%d during start-up/recovery), acknowledged events %d, lost %d, corrupt served %d, %s",
		kills, duringOpen, len(acked), lost, corrupt, time.Since(start).Round(time.Millisecond))
	if len(acked) == 0 {
		t.Fatal("the child never acknowledged an append")
	}
}

// readChild collects the child's complete lines until EOF, closing ready
// at "READY". A line cut by the kill (no newline) is dropped.
func readChild(r io.Reader, ready chan struct{}) []string {
	var out []string
	br := bufio.NewReaderSize(r, 64<<10)
	isReady := false
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			if !isReady {
				close(ready)
			}
			return out
		}
		l = strings.TrimSuffix(l, "\n")
		if l == "READY" && !isReady {
			isReady = true
			close(ready)
			continue
		}
		if l != "" {
			out = append(out, l)
		}
	}
}

// chainErrors counts the events of all (the whole log) whose hashes do not
// link.
func chainErrors(all []event.Envelope) int {
	type link struct {
		v uint64
		h event.Hash
	}
	streams := map[string]link{}
	var prev event.Hash
	bad := 0
	for i := range all {
		e := &all[i]
		if event.VerifyGlobalLink(prev, uint64(i), e) != nil {
			bad++
		}
		prev = e.GlobalHash
		l := streams[e.StreamID]
		if event.VerifyStreamLink(l.h, l.v, e) != nil {
			bad++
		}
		streams[e.StreamID] = link{e.Version, e.Hash}
	}
	return bad
}
