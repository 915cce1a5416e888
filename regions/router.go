package regions

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Route says where a stream is written.
type Route struct {
	Stream string `json:"stream"`
	Home   string `json:"home"`
	// Owner is the owning region and URL its base URL.
	Owner string `json:"owner"`
	URL   string `json:"url"`
	Epoch uint64 `json:"epoch"`
	// Local is true when this region owns the home (it may still be
	// unable to write: its lease may be expiring or a handover pending).
	Local bool `json:"local"`
	// Pending is true while a handover is in progress (the new owner has
	// not taken the lease yet): retry shortly.
	Pending bool `json:"pending,omitempty"`
}

// OwnerView is where the router reads ownership: the lease keeper's last
// view of the control plane (*Leases).
type OwnerView interface {
	Owners() ([]Ownership, time.Time)
}

// Router answers "who writes this stream" for the API: a request for a
// stream owned elsewhere is redirected (307 with the owner's URL, or 421
// Misdirected Request with it in the problem), never written locally.
type Router struct {
	topo   Topology
	region string
	view   OwnerView
}

// NewRouter returns a router for region over view.
func NewRouter(topo Topology, region string, view OwnerView) *Router {
	return &Router{topo: topo, region: region, view: view}
}

// ErrNoOwnership: the ownership table has not been read yet.
var ErrNoOwnership = errors.New("ownership not known yet")

// Owner returns the route of stream.
func (r *Router) Owner(stream string) (Route, error) {
	return r.OwnerOfHome(r.topo.HomeOf(stream), stream)
}

// OwnerOfHome returns the route of home (stream is only echoed).
func (r *Router) OwnerOfHome(home, stream string) (Route, error) {
	owners, _ := r.view.Owners()
	for _, o := range owners {
		if o.Home != home {
			continue
		}
		rt := Route{Stream: stream, Home: home, Owner: o.Owner, Epoch: o.Epoch, Local: o.Owner == r.region, Pending: o.State != StateActive}
		if reg, err := r.topo.Region(o.Owner); err == nil {
			rt.URL = strings.TrimRight(reg.URL, "/")
		}
		return rt, nil
	}
	if len(owners) == 0 {
		return Route{}, ErrNoOwnership
	}
	return Route{}, fmt.Errorf("%w: %q (stream %s)", ErrUnknownHome, home, stream)
}
