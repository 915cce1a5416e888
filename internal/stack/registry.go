package stack

import (
	"github.com/livecore/livecore/adapters/eventcodec"
	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/domain"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/workflows"
)

// NewRegistry returns the registry of every event type the product writes:
// the domain's, the sagas' (alerts) and the API's (requests relayed to
// sagas). Anything that decodes the whole $all log must use it. It
// decodes with eventcodec's faster JSON decoder.
func NewRegistry() *event.Registry {
	r := domain.NewRegistry()
	workflows.RegisterEvents(r)
	httpapi.RegisterEvents(r)
	return eventcodec.Fast(r)
}
