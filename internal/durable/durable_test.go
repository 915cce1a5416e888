package durable_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/livecore/livecore/internal/durable"
)

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "checkpoint")
	for _, want := range []string{"1\n", "22\n", ""} {
		if err := durable.WriteFile(name, []byte(want)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Fatalf("content %q, want %q", got, want)
		}
	}
	if _, err := os.Stat(name + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}

func TestWriteFileReportsErrors(t *testing.T) {
	if err := durable.WriteFile(filepath.Join(t.TempDir(), "missing", "file"), []byte("x")); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
	if err := durable.SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("syncing a missing directory succeeded")
	}
}
