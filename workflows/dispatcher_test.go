package workflows_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/workflows/checkout"
	"github.com/livecore/livecore/workflows/dispatcher"
)

// TestDispatcherRestartsAndRedelivery places orders while the dispatcher
// runs, while it is stopped, and after it restarts from its checkpoint;
// then a dispatcher with no checkpoint re-delivers the whole log. Every
// order gets exactly one saga.
func TestDispatcherRestartsAndRedelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("real Temporal server")
	}
	s := newStack(t, stackOptions{})
	s.stock()
	var ids []string
	place := func(n int) {
		for range n {
			id := fmt.Sprintf("restart-%02d", len(ids))
			ids = append(ids, id)
			s.placeAndChoose(id, "10.00", order.MethodCard, order.PlanKind{})
		}
	}
	place(5)
	for _, id := range ids {
		s.checkout(id)
	}
	first := s.disp.Stats()
	s.stopDispatcher()
	place(5) // accepted while no dispatcher runs
	s.startDispatcher(checkout.Options{Steps: testOptions})
	for _, id := range ids {
		if res := s.checkout(id); res.Outcome != checkout.OutcomeConfirmed {
			t.Fatalf("%s: %+v", id, res)
		}
	}
	second := s.disp.Stats()
	s.stopDispatcher()

	// A dispatcher that lost its checkpoint starts from the beginning.
	if err := os.Remove(filepath.Join(s.dir, "dispatcher.checkpoint")); err != nil {
		t.Fatal(err)
	}
	s.startDispatcher(checkout.Options{Steps: testOptions})
	head, err := s.world.Store.Head(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for {
		pos, err := dispatcher.ReadCheckpoint(filepath.Join(s.dir, "dispatcher.checkpoint"))
		if err != nil {
			t.Fatal(err)
		}
		if pos >= head {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	third := s.disp.Stats()
	sagas := 0
	for _, id := range ids {
		sagas += s.countRuns(checkout.WorkflowID(id))
	}
	fmt.Printf("dispatcher: %d orders; run 1 started %d, run 2 (after a stop, from its checkpoint) started %d; run 3 (no checkpoint) re-delivered the log: started %d, deduplicated %d; sagas per order: %d/%d\n",
		len(ids), first.Started, second.Started, third.Started, third.Deduplicated, sagas, len(ids))
	if first.Started != 5 || second.Started != 5 || third.Started != 0 || third.Deduplicated < int64(len(ids)) || sagas != len(ids) {
		t.Fatalf("stats %+v %+v %+v, %d sagas", first, second, third, sagas)
	}
}
