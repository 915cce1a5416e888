package storebench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/domain/event"
)

// TestRunPrintsEveryWorkload checks the harness (not any speed): every
// workload runs against every target and lands in the table.
func TestRunPrintsEveryWorkload(t *testing.T) {
	open := func(context.Context) (event.Store, error) { return memory.New(memory.Config{}), nil }
	targets := []Target{{Name: "a", Open: open, Note: "note a"}, {Name: "b", Open: open}}
	var out strings.Builder
	res, err := Run(t.Context(), targets, Options{Duration: 50 * time.Millisecond, Writers: 4, ReadEvents: 2500}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 6 {
		t.Fatalf("%d results, want 6", len(res))
	}
	for _, r := range res {
		if r.Events == 0 || r.PerSecond() <= 0 {
			t.Fatalf("%+v: nothing measured", r)
		}
		if r.Workload == "read-all" && r.Events != 2500 {
			t.Fatalf("read-all read %d events, want 2500", r.Events)
		}
	}
	for _, want := range []string{"append-1w", "append-64w", "read-all", "a / b", "note a"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

func TestRunReportsFailures(t *testing.T) {
	bad := Target{Name: "bad", Open: func(context.Context) (event.Store, error) { return nil, context.Canceled }}
	good := Target{Name: "good", Open: func(context.Context) (event.Store, error) { return memory.New(memory.Config{}), nil }}
	var out strings.Builder
	_, err := Run(t.Context(), []Target{good, bad}, Options{Duration: 20 * time.Millisecond, Workloads: []string{"append-1w"}}, &out)
	if err == nil || !strings.Contains(out.String(), "failed") {
		t.Fatalf("err %v, table:\n%s", err, out.String())
	}
}
