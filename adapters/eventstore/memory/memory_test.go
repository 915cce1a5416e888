package memory_test

import (
	"testing"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/adapters/eventstore/storetest"
	"github.com/livecore/livecore/domain/event"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) event.Store {
		s := memory.New(memory.Config{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}
