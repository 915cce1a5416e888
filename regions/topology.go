// Package regions keeps routing, ownership, fencing and durability across
// regions out of the domain (no aggregate branches on region): which region
// owns a stream, whether this region may write it right now, and when a
// write may be acknowledged.
//
// # Model
//
// A Topology names the regions (each runs the whole stack) and the homes.
// A home is the unit of ownership: a market or customer group ("eu",
// "us"). Every stream has exactly one home (Topology.HomeOf, a pure
// function of the stream ID), and every home has exactly one owning region
// at a time, recorded with an epoch in the control plane (ControlPlane).
// Only the owner writes a home's streams; every other region holds replicas
// (regions/replicate) and routes writes to the owner (Router).
//
// # Fencing: why an old owner cannot write
//
// Three independent layers, each sufficient for a different failure:
//
//  1. Leases. The owner holds a lease on each of its homes in the control
//     plane, renewed every TTL/3 (Leases). Before and after every append
//     FencedAppender checks, on the local monotonic clock, that the lease is
//     known-valid: the renewal's send time + TTL - Margin has not passed. The
//     control plane's own expiry is the database's clock at the renewal +
//     TTL, which is later. A failover may take a home away only once the
//     database says the lease has expired (forced) or the owner released it
//     (planned), and the first thing it does is bump the epoch, so the old
//     owner's renewals fail from then on. An old owner that wakes up (a
//     paused process, a partitioned region) finds its lease expired locally
//     and refuses to write or to acknowledge.
//  2. Kafka producer fencing. A forced failover initialises a producer with
//     the old owner's bridge transactional ID before reading its checkpoint:
//     the broker settles the old bridge's open transaction (committed if its
//     commit had reached the broker, aborted otherwise) and bumps the
//     producer epoch, so the old bridge can never commit again in that
//     session. What the old owner published is final from then on.
//  3. The cut. Each epoch's record in the control plane keeps the interval
//     of positions of the owner's $all in which it wrote as owner: start
//     (its head when it took the lease; every write it makes as owner is
//     beyond) and end (the cut: its head when it released the home, or its
//     bridge's final checkpoint after a forced failover). Replicators accept
//     an event only if its writer owned the event's home at the event's
//     origin position (Validator); an event beyond the cut is rejected and
//     counted, wherever it comes from. A returning old owner finds the
//     events it wrote beyond its cut (FindStaleTail) and moves them out of
//     its log before it publishes anything (regions/node), keeping them
//     aside as the loss report.
//
// The new owner starts writing only after it has replicated everything up
// to the cut, so no accepted write of the old owner can ever follow a write
// of the new one.
package regions

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
)

// Region is one deployment of the whole stack.
type Region struct {
	// Name is a short identifier: [a-z0-9-], it names Kafka topics
	// ("<name>.livecore.order.v1") and the bridge.
	Name string `json:"name"`
	// URL is the base URL of the region's API ("https://eu.example.com"),
	// used in redirects to the owner.
	URL string `json:"url"`
}

// Home is a unit of ownership: the streams of one market or customer group.
type Home struct {
	Name string `json:"name"`
	// Region is the home's preferred owner: its owner at bootstrap and the
	// target of a failback.
	Region string `json:"region"`
	// Markets are the market codes (the order's region field, "eu-west",
	// "DE") whose new orders are homed here.
	Markets []string `json:"markets,omitempty"`
}

// Topology is the static layout: regions and homes. Ownership (who owns
// each home now) lives in the control plane, not here.
type Topology struct {
	Regions []Region `json:"regions"`
	Homes   []Home   `json:"homes"`
}

// ErrUnknownRegion: a name that is not a region of the topology.
var ErrUnknownRegion = errors.New("unknown region")

// Validate reports every problem: no regions or homes, bad or duplicate
// names, a home whose preferred region is unknown, a market in two homes.
func (t Topology) Validate() error {
	var errs []error
	if len(t.Regions) == 0 || len(t.Homes) == 0 {
		errs = append(errs, errors.New("at least one region and one home"))
	}
	regions := map[string]bool{}
	for _, r := range t.Regions {
		if err := validName(r.Name); err != nil {
			errs = append(errs, fmt.Errorf("region: %w", err))
		}
		if regions[r.Name] {
			errs = append(errs, fmt.Errorf("region %q twice", r.Name))
		}
		regions[r.Name] = true
	}
	homes, markets := map[string]bool{}, map[string]string{}
	for _, h := range t.Homes {
		if err := validName(h.Name); err != nil {
			errs = append(errs, fmt.Errorf("home: %w", err))
		}
		if homes[h.Name] {
			errs = append(errs, fmt.Errorf("home %q twice", h.Name))
		}
		homes[h.Name] = true
		if !regions[h.Region] {
			errs = append(errs, fmt.Errorf("home %q: preferred region %q: %w", h.Name, h.Region, ErrUnknownRegion))
		}
		for _, m := range h.Markets {
			if other, dup := markets[m]; dup {
				errs = append(errs, fmt.Errorf("market %q in homes %q and %q", m, other, h.Name))
			}
			markets[m] = h.Name
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("topology: %w", err)
	}
	return nil
}

func validName(n string) error {
	if n == "" || len(n) > 40 {
		return fmt.Errorf("name %q: 1-40 characters", n)
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("name %q: only a-z, 0-9 and '-'", n)
		}
	}
	return nil
}

// Region returns the region named name.
func (t Topology) Region(name string) (Region, error) {
	for _, r := range t.Regions {
		if r.Name == name {
			return r, nil
		}
	}
	return Region{}, fmt.Errorf("%w: %q", ErrUnknownRegion, name)
}

// RegionNames lists the regions' names in topology order.
func (t Topology) RegionNames() []string {
	out := make([]string, len(t.Regions))
	for i, r := range t.Regions {
		out[i] = r.Name
	}
	return out
}

// HomeSep separates a home from the rest of an entity ID that carries its
// home ("eu.8f3a..."). See HomeOf.
const HomeSep = "."

// EntityID returns an entity ID that carries its home: home + "." + id. An
// order placed with it ("order-eu.8f3a") belongs to home eu, and so do the
// streams that reuse the order's ID (its payment, shipments, plan).
func EntityID(home, id string) string { return home + HomeSep + id }

// HomeOf returns the home of stream, a pure function of the stream ID:
// if the entity ID (after the category's "-") begins with a configured home
// and ".", that home; otherwise a hash of the whole stream ID over the
// homes sorted by name (FNV-1a), so streams without a carried home (a SKU's
// stock) still have exactly one, stable home. Changing the set of homes
// moves hashed streams: add homes only with a migration.
func (t Topology) HomeOf(stream string) string {
	entity := stream
	if i := strings.IndexByte(stream, '-'); i >= 0 {
		entity = stream[i+1:]
	}
	if i := strings.Index(entity, HomeSep); i > 0 {
		for _, h := range t.Homes {
			if h.Name == entity[:i] {
				return h.Name
			}
		}
	}
	names := make([]string, len(t.Homes))
	for i, h := range t.Homes {
		names[i] = h.Name
	}
	slices.Sort(names)
	f := fnv.New64a()
	f.Write([]byte(stream))
	return names[f.Sum64()%uint64(len(names))]
}

// HomeOfMarket returns the home of new orders in market; ok is false for a
// market no home lists.
func (t Topology) HomeOfMarket(market string) (home string, ok bool) {
	for _, h := range t.Homes {
		if slices.Contains(h.Markets, market) {
			return h.Name, true
		}
	}
	return "", false
}

// Home returns the home named name.
func (t Topology) Home(name string) (Home, bool) {
	for _, h := range t.Homes {
		if h.Name == name {
			return h, true
		}
	}
	return Home{}, false
}

// HomesPreferring lists the homes whose preferred region is region.
func (t Topology) HomesPreferring(region string) []string {
	var out []string
	for _, h := range t.Homes {
		if h.Region == region {
			out = append(out, h.Name)
		}
	}
	return out
}
