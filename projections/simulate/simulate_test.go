package simulate_test

import (
	"context"
	"sort"
	"testing"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/projections/simulate"
)

func TestRunCoversTheDomain(t *testing.T) {
	sim := simulate.New(simulate.Config{Seed: 1, Orders: 400})
	store := memory.New(memory.Config{Now: sim.Now})
	st, err := sim.Run(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for k := range st.ByType {
		types = append(types, k)
	}
	sort.Strings(types)
	for _, k := range types {
		t.Logf("%-40s %6d", k, st.ByType[k])
	}
	t.Logf("%d orders, %d events in %d appends, %d rejected decisions", st.Orders, st.Events, st.Appends, st.Rejected)
	if len(types) < 40 {
		t.Errorf("only %d event types covered", len(types))
	}
}
