package memory_test

import (
	"testing"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/adapters/eventstore/replicatest"
)

func TestReplicaConformance(t *testing.T) {
	replicatest.Run(t, func(t *testing.T) replicatest.Store {
		s := memory.New(memory.Config{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}
