package domain_test

import (
	"testing"

	"github.com/livecore/livecore/domain"
	"github.com/livecore/livecore/domain/event"
)

// TestRegistryNamesAreExplicitAndVersioned checks every registered type
// name parses as name.vN.
func TestRegistryNamesAreExplicitAndVersioned(t *testing.T) {
	names := domain.NewRegistry().Names()
	if len(names) < 30 {
		t.Fatalf("only %d event types registered", len(names))
	}
	for _, n := range names {
		if _, _, err := event.ParseTypeName(n); err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d event types: %v", len(names), names)
}
