package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/regions"
)

// TestKeysInControlPlane: a key created with --control-plane lands in the
// control plane's database, where every region node authenticates it, and
// revoking it there takes effect.
func TestKeysInControlPlane(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "cp.db")
	run := func(args ...string) string {
		t.Helper()
		cmd := newRootCmd()
		var out, errOut bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		cmd.SetArgs(args)
		if err := cmd.ExecuteContext(ctx); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	key := run("keys", "create", "--control-plane", dsn, "--tenant", "acme", "--role", "checkout", "--data-dir", filepath.Join(t.TempDir(), "unused"))
	cp, err := regions.OpenControlPlane(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	keys := &httpapi.Keys{Store: httpapi.NewSQLKeyStore(cp.DB())}
	p, err := keys.Authenticate(ctx, key)
	if err != nil || p.Tenant != "acme" || p.Role != httpapi.RoleCheckout {
		t.Fatalf("authenticate the new key in the control plane: %+v, %v", p, err)
	}
	run("keys", "revoke", "--control-plane", dsn, "--id", httpapi.KeyID(key))
	if _, err := keys.Authenticate(ctx, key); err == nil {
		t.Fatal("a revoked key still authenticates")
	}
}
