package simulate

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/livecore/livecore/domain/event"
)

// Replicate appends rounds copies of the events src to dst, for benchmarks
// that need millions of realistic events quickly. Round k renames every
// stream with the suffix "~k" and derives new event IDs; each stream's
// events keep their order and go in one append per round. writers
// goroutines append concurrently (streams are spread over them by hash), so
// a group-committing store fsyncs once per many appends. It returns the
// number of events appended.
func Replicate(ctx context.Context, dst event.Appender, src []event.Envelope, rounds, writers int) (int, error) {
	if writers <= 0 {
		writers = 64
	}
	type job struct {
		stream string
		events []event.Proposed
	}
	var order []string
	byStream := map[string][]event.Envelope{}
	for _, e := range src {
		if _, ok := byStream[e.StreamID]; !ok {
			order = append(order, e.StreamID)
		}
		byStream[e.StreamID] = append(byStream[e.StreamID], e)
	}
	jobs := make([]chan job, writers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	total := 0
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := range jobs {
		jobs[w] = make(chan job, 64)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs[w] {
				if _, err := dst.Append(ctx, j.stream, event.Any, j.events); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("replicate %s: %w", j.stream, err)
					}
					mu.Unlock()
					cancel()
					return
				}
				mu.Lock()
				total += len(j.events)
				mu.Unlock()
			}
		}()
	}
	send := func() {
		for k := range rounds {
			for _, stream := range order {
				evs := byStream[stream]
				name := fmt.Sprintf("%s~%d", stream, k)
				props := make([]event.Proposed, len(evs))
				for i, e := range evs {
					props[i] = event.Proposed{ID: event.DeriveID(name+"/"+e.ID, 0), Type: e.Type, SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: e.Metadata}
				}
				h := fnv.New32a()
				h.Write([]byte(name))
				select {
				case jobs[int(h.Sum32())%writers] <- job{name, props}:
				case <-ctx.Done():
					return
				}
			}
		}
	}
	send()
	for _, c := range jobs {
		close(c)
	}
	wg.Wait()
	if firstErr != nil {
		return total, firstErr
	}
	return total, ctx.Err()
}
