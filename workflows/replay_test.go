package workflows_test

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"

	"github.com/livecore/livecore/workflows"
)

// TestReplayRecordedHistories replays every recorded history in testdata
// (written by the integration tests with LIVECORE_RECORD_HISTORIES=1)
// against the current workflow code: a change that would break running
// workflows fails here as a nondeterminism error.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata (record them with LIVECORE_RECORD_HISTORIES=1 go test -run 'OnRealTemporal' ./workflows/)")
	}
	failures := 0
	for _, f := range files {
		r := worker.NewWorkflowReplayer()
		workflows.RegisterWorkflows(r)
		if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
			failures++
			t.Errorf("%s: %v", f, err)
		}
	}
	t.Logf("replayed %d recorded histories: %d nondeterminism errors", len(files), failures)
}
