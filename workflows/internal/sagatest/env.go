package sagatest

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/livecore/livecore/workflows"
)

// Start is the workflow clock's start in testsuite tests. It lies in the
// future on purpose: the testsuite checks local-activity deadlines, computed
// on the workflow clock, against the wall clock.
var Start = time.Date(2090, 3, 2, 9, 0, 0, 0, time.UTC)

// NewEnv returns a testsuite environment with every workflow and the
// world's real activities registered, its clock at Start, and the world
// whose provider runs on that clock. Abandoned children (fulfillment, the
// installment schedule) do not keep a test waiting.
func NewEnv(t testing.TB) (*testsuite.TestWorkflowEnvironment, *World) {
	t.Helper()
	w := NewWorld(t, Options{})
	return Continue(t, w, Start), w
}

// Continue returns a new testsuite environment for world w with its clock
// at start, and moves w's clock to it: how a test follows a workflow that
// continued as new.
func Continue(t testing.TB, w *World, start time.Time) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	if os.Getenv("SAGATEST_LOG") != "" {
		s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	} else {
		s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	}
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(start)
	env.SetDetachedChildWait(false)
	w.Now = env.Now
	if err := workflows.Register(env, w.Deps()); err != nil {
		t.Fatal(err)
	}
	return env
}
