package main

import (
	"context"
	"testing"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
)

// TestAuditOpensWithScanCache: the audit commands open the embedded store
// with the small block cache of a process that scans the log once.
func TestAuditOpensWithScanCache(t *testing.T) {
	t.Setenv("LIVECORE_EVENT_STORE", "")
	f := storeFlags{dataDir: t.TempDir()}
	s, err := f.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ps, ok := s.(*pebble.Store)
	if !ok {
		t.Fatalf("audit opened a %T, want the Pebble store", s)
	}
	if got := ps.Stats().CacheBytes; got != pebble.ScanCacheBytes {
		t.Fatalf("block cache %d bytes, want pebble.ScanCacheBytes (%d)", got, pebble.ScanCacheBytes)
	}
}
