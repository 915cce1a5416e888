package embedded_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/livecore/livecore/adapters/temporal/embedded"
)

func echo(ctx workflow.Context, s string) (string, error) { return "echo:" + s, nil }

// TestPersistentServerSurvivesRestart runs a workflow on a file-backed
// server, restarts the server on the same file and reads the result back.
func TestPersistentServerSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "temporal.db")

	start := time.Now()
	srv, err := embedded.Start(ctx, embedded.Config{DBPath: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embedded Temporal started in %v at %s", time.Since(start).Round(time.Millisecond), srv.HostPort())
	cl, err := srv.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(cl, "q", worker.Options{})
	w.RegisterWorkflow(echo)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "wf-1", TaskQueue: "q"}, echo, "hi")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "echo:hi" {
		t.Fatalf("result %q, %v", got, err)
	}
	w.Stop()
	cl.Close()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	srv2, err := embedded.Start(ctx, embedded.Config{DBPath: db})
	if err != nil {
		t.Fatalf("restart on the same file: %v", err)
	}
	defer srv2.Stop()
	cl2, err := srv2.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	got = ""
	if err := cl2.GetWorkflow(ctx, "wf-1", "").Get(ctx, &got); err != nil || got != "echo:hi" {
		t.Fatalf("after restart: result %q, %v", got, err)
	}
}
