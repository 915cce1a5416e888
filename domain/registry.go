package domain

import (
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/financing"
	"github.com/livecore/livecore/domain/fulfillment"
	"github.com/livecore/livecore/domain/inventory"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/domain/payment"
)

// NewRegistry returns a registry with every livecore event type and
// upcaster registered: the one wiring programs and tests share.
func NewRegistry() *event.Registry {
	r := event.NewRegistry()
	order.Register(r)
	inventory.Register(r)
	payment.Register(r)
	financing.Register(r)
	fulfillment.Register(r)
	return r
}
