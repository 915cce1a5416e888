package replicate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/livecore/livecore/adapters/eventstore/memory"
	"github.com/livecore/livecore/adapters/kafka"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/regions"
)

type acceptAll struct{}

func (acceptAll) Check(context.Context, string, uint64, string, time.Time) (regions.Verdict, error) {
	return regions.Verdict{OK: true}, nil
}

// TestOutOfOrderAcrossOrigins: a stream written by a (v1, v2) then, after
// a handover, by b (v3, v4) reaches a third region from two topics in any
// order; every order of arrival, in one poll or one record per poll, ends
// with v1..v4 applied and nothing held.
func TestOutOfOrderAcrossOrigins(t *testing.T) {
	ctx := t.Context()
	origin := memory.New(memory.Config{})
	for i, region := range []string{"a", "a", "b", "b"} {
		if _, err := origin.Append(ctx, "order-x", event.Exact(uint64(i)), []event.Proposed{{
			ID: fmt.Sprintf("e%d", i+1), Type: "test.happened.v1", SchemaVersion: 1, Data: []byte(`{}`), Metadata: event.Metadata{Region: region},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	evs, _ := origin.ReadAll(ctx, 1, 0)
	rec := func(i int) *kgo.Record {
		src := evs[i].Metadata.Region
		return kafka.EncodeRecord(&evs[i], src+".livecore.order.v1", src)
	}
	orders := [][]int{{2, 3, 0, 1}, {3, 2, 1, 0}, {1, 3, 0, 2}, {0, 1, 2, 3}, {2, 0, 3, 1}}
	for _, onePoll := range []bool{true, false} {
		for _, ord := range orders {
			store := memory.New(memory.Config{})
			r, err := New(Config{Store: store, Brokers: []string{"unused:1"}, Region: "c", Peers: []string{"a", "b"}, Checker: acceptAll{},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			var recs []*kgo.Record
			for _, i := range ord {
				recs = append(recs, rec(i))
			}
			if onePoll {
				err = r.process(ctx, recs)
			} else {
				for _, x := range recs {
					if err = r.process(ctx, []*kgo.Record{x}); err != nil {
						break
					}
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := store.ReadStream(ctx, "order-x", 1, 0)
			if len(got) != 4 || got[3].Hash != evs[3].Hash || len(r.held) != 0 {
				t.Fatalf("arrival %v (one poll %v): %d events applied, %d streams held", ord, onePoll, len(got), len(r.held))
			}
		}
	}
}
