package dispatcher_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/livecore/livecore/workflows/dispatcher"
)

func TestCheckpointFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dispatcher.checkpoint")
	if pos, err := dispatcher.ReadCheckpoint(file); err != nil || pos != 0 {
		t.Fatalf("missing file: %d, %v", pos, err)
	}
	for _, want := range []uint64{1, 42, 1 << 40} {
		if err := dispatcher.WriteCheckpoint(file, want); err != nil {
			t.Fatal(err)
		}
		if got, err := dispatcher.ReadCheckpoint(file); err != nil || got != want {
			t.Fatalf("read %d, %v; want %d", got, err, want)
		}
	}
	if _, err := os.Stat(file + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	if err := os.WriteFile(file, []byte("not a number\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := dispatcher.ReadCheckpoint(file); err == nil {
		t.Fatal("a corrupt checkpoint was accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := dispatcher.New(dispatcher.Config{}); err == nil {
		t.Fatal("an empty config was accepted")
	}
}
