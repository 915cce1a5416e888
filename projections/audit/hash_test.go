package audit

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/livecore/livecore/domain/event"
)

// TestHasherMatchesKernel checks the allocation-free hasher against
// event.StreamHash and event.GlobalChainHash on random envelopes.
func TestHasherMatchesKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	str := func(n int) string {
		b := make([]byte, rng.IntN(n+1))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	var h hasher
	for i := range 2000 {
		e := event.Envelope{
			ID: str(40), StreamID: str(30), Type: str(30), SchemaVersion: rng.IntN(5),
			Data: []byte(str(2000)), Version: rng.Uint64(), Position: rng.Uint64(),
			RecordedAt: time.Unix(0, rng.Int64()).UTC(),
			Metadata:   event.Metadata{Tenant: str(10), CorrelationID: str(10), CausationID: str(10), Actor: str(10), Region: str(10)},
		}
		var prev, prevG event.Hash
		for j := range prev {
			prev[j], prevG[j] = byte(rng.IntN(256)), byte(rng.IntN(256))
		}
		want := event.StreamHash(prev, &e)
		if got := h.stream(prev, &e); got != want {
			t.Fatalf("case %d: stream hash %s, kernel %s", i, got, want)
		}
		if got, want := global(prevG, e.Position, want), event.GlobalChainHash(prevG, e.Position, want); got != want {
			t.Fatalf("case %d: global hash %s, kernel %s", i, got, want)
		}
	}
	e := event.Envelope{Data: make([]byte, 400)}
	if n := testing.AllocsPerRun(100, func() { h.stream(event.Hash{}, &e) }); n != 0 {
		t.Errorf("stream hash allocates %.0f times per event", n)
	}
}
