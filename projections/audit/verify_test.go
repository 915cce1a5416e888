package audit_test

import (
	"context"
	"testing"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/projections/audit"
)

// TestRewrittenHistoryDivergesFromTrustedCheckpoint: an attacker who
// rewrites an event and re-hashes every chain after it leaves a log that
// verifies on its own; the trusted checkpoint catches it.
func TestRewrittenHistoryDivergesFromTrustedCheckpoint(t *testing.T) {
	_, all := simulated(t, 31, 30)
	ctx := context.Background()
	rewrite := memory.New(memory.Config{})
	p := len(all) / 2
	for i, e := range all {
		data := e.Data
		if i == p {
			data = append([]byte(nil), data...)
			data[len(data)/2] ^= 1
		}
		if _, err := rewrite.Append(ctx, e.StreamID, event.Any, []event.Proposed{{ID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion, Data: data, Metadata: e.Metadata}}); err != nil {
			t.Fatal(err)
		}
	}
	trusted := audit.Checkpoint{Position: uint64(len(all)), GlobalHash: all[len(all)-1].GlobalHash}
	parsed, err := audit.ParseCheckpoint(trusted.String())
	if err != nil || parsed != trusted {
		t.Fatalf("checkpoint round trip: %v %v", parsed, err)
	}
	if rep, err := audit.Verify(ctx, rewrite, audit.VerifyOptions{}); err != nil || !rep.OK() {
		t.Fatalf("the re-hashed log should verify on its own: %+v %v", rep.Problem, err)
	}
	rep, err := audit.Verify(ctx, rewrite, audit.VerifyOptions{Trusted: []audit.Checkpoint{trusted}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Problem == nil || rep.Problem.Kind != audit.KindDiverged || rep.Problem.Position != trusted.Position {
		t.Fatalf("rewritten history against the trusted checkpoint: %+v", rep.Problem)
	}
	t.Logf("re-hashed rewrite of position %d: %v", p+1, rep.Problem)
}

// TestVerifyProgressAndRanges: progress reaches the total; a range from
// the middle anchors streams through the stream reader.
func TestVerifyProgressAndRanges(t *testing.T) {
	store, all := simulated(t, 32, 40)
	ctx := context.Background()
	var last audit.Progress
	calls := 0
	rep, err := audit.Verify(ctx, store, audit.VerifyOptions{BatchSize: 100, Progress: func(p audit.Progress) { last = p; calls++ }})
	if err != nil || !rep.OK() {
		t.Fatal(rep.Problem, err)
	}
	if last.Done != uint64(len(all)) || last.Total != uint64(len(all)) || calls < len(all)/100 {
		t.Fatalf("progress: %+v after %d calls", last, calls)
	}
	mid := uint64(len(all) / 3)
	rep, err = audit.Verify(ctx, store, audit.VerifyOptions{From: mid, To: 2 * mid, Streams: store})
	if err != nil || !rep.OK() || rep.Events != mid+1 || rep.Unanchored != 0 {
		t.Fatalf("range %d-%d: %+v %v", mid, 2*mid, rep, err)
	}
	if rep.Last.GlobalHash != all[2*mid-1].GlobalHash {
		t.Fatal("last checkpoint of the range is not the event's global hash")
	}
	rep, err = audit.Verify(ctx, store, audit.VerifyOptions{To: uint64(len(all)) + 5})
	if err != nil || rep.Problem == nil || rep.Problem.Kind != audit.KindTruncated || rep.Problem.Position != uint64(len(all))+1 {
		t.Fatalf("range beyond the head: %+v %v", rep.Problem, err)
	}
	t.Logf("%d events in %d progress calls; range %d-%d verified with %d streams anchored", len(all), calls, mid, 2*mid, rep.Streams)
}
