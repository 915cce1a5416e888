// Package eventcodec makes event decoding faster without changing it:
// Fast sets an event.Registry to decode JSON with
// github.com/segmentio/encoding/json, a drop-in replacement for
// encoding/json that is tested to behave exactly like it. Here it decodes
// events about four times faster, which matters wherever $all is decoded
// in bulk: projections catching up, as-of replays, audits.
//
// The domain stays on the standard library (domain/ may import nothing
// else); the choice is made where the product is wired. eventcodec_test.go
// checks that both decoders give equal events for a simulated history of
// every domain event type, and the same verdict on malformed input.
package eventcodec

import (
	segjson "github.com/segmentio/encoding/json"

	"github.com/livecore/livecore/domain/event"
)

// Fast makes r decode with the faster decoder, and returns r.
func Fast(r *event.Registry) *event.Registry {
	r.SetUnmarshal(segjson.Unmarshal)
	return r
}
