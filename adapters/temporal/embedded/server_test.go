package embedded_test

import (
	"context"
	"database/sql"
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

// TestRestartForgetsDeadMembers: a process killed with SIGKILL leaves its
// cluster membership records behind; a restart must not route work to
// those dead hosts (sagas stalled ~50 s after a SIGKILL before the fix:
// the DR drill shows it). The test plants a live-looking record of a dead
// matching host and checks that Start removes it and still runs a
// workflow.
func TestRestartForgetsDeadMembers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "temporal.db")
	srv, err := embedded.Start(ctx, embedded.Config{DBPath: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	future := time.Now().Add(time.Hour).UTC().Format("2006-01-02 15:04:05")
	if _, err := db.Exec(`INSERT INTO cluster_membership (membership_partition, host_id, rpc_address, rpc_port, role, session_start, last_heartbeat, record_expiry)
		VALUES (0, X'00112233445566778899aabbccddeeff', '127.0.0.1', 1, 3, ?, ?, ?)`, future, future, future); err != nil {
		t.Fatal(err)
	}
	srv2, err := embedded.Start(ctx, embedded.Config{DBPath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Stop()
	var dead int
	if err := db.QueryRow(`SELECT COUNT(*) FROM cluster_membership WHERE host_id = X'00112233445566778899aabbccddeeff'`).Scan(&dead); err != nil {
		t.Fatal(err)
	}
	if dead != 0 {
		t.Fatalf("%d records of the dead host left after restart", dead)
	}
	cl, err := srv2.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	w := worker.New(cl, "q", worker.Options{})
	w.RegisterWorkflow(echo)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "wf-after-restart", TaskQueue: "q"}, echo, "again")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "echo:again" {
		t.Fatalf("result %q, %v", got, err)
	}
}
