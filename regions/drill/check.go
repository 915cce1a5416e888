package drill

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/livecore/livecore/adapters/psp/sandbox"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/domain/order"
	"github.com/livecore/livecore/regions"
	"github.com/livecore/livecore/regions/node"
)

// fetchAll reads a region's whole $all over HTTP.
func (d *drill) fetchAll(ctx context.Context, region string) ([]event.Envelope, error) {
	r, err := d.topo.Region(region)
	if err != nil {
		return nil, err
	}
	var all []event.Envelope
	for from := uint64(1); ; {
		var batch []event.Envelope
		if err := getJSON(ctx, d.hc, fmt.Sprintf("%s/v1/dr/events?from=%d&max=10000", r.URL, from), &batch); err != nil {
			return nil, err
		}
		all = append(all, batch...)
		if len(batch) < 10000 {
			return all, nil
		}
		from = batch[len(batch)-1].Position + 1
	}
}

// regionView is what the checks derive from one region's log.
type regionView struct {
	events  int
	heads   map[string]event.Envelope // stream -> last event
	ids     map[string]event.Hash
	chainOK string // "" when both chains verify
}

func view(all []event.Envelope) regionView {
	v := regionView{events: len(all), heads: map[string]event.Envelope{}, ids: map[string]event.Hash{}}
	var prev event.Hash
	for i := range all {
		e := &all[i]
		if err := event.VerifyGlobalLink(prev, uint64(i), e); err != nil && v.chainOK == "" {
			v.chainOK = err.Error()
		}
		prev = e.GlobalHash
		h := v.heads[e.StreamID]
		if err := event.VerifyStreamLink(h.Hash, h.Version, e); err != nil && v.chainOK == "" {
			v.chainOK = err.Error()
		}
		v.heads[e.StreamID] = *e
		v.ids[e.ID] = e.Hash
	}
	return v
}

// check compares every region's log, the acknowledged orders, the payment
// ledger and the loss report, and fills the report's findings.
func (d *drill) check(ctx context.Context, rep *Report) error {
	// Every region exports its replication lag, next to the product's own
	// metrics (one /metrics for both).
	for _, r := range d.topo.RegionNames() {
		if err := d.checkMetrics(ctx, r); err != nil {
			rep.fail("%s's /metrics: %v", r, err)
		}
	}
	logs := map[string][]event.Envelope{}
	views := map[string]regionView{}
	for _, r := range d.topo.RegionNames() {
		all, err := d.fetchAll(ctx, r)
		if err != nil {
			return fmt.Errorf("read %s's events: %w", r, err)
		}
		logs[r], views[r] = all, view(all)
		rep.Regions = append(rep.Regions, RegionFinal{Region: r, Events: len(all), Streams: len(views[r].heads), ChainsOK: views[r].chainOK == "", ChainError: views[r].chainOK})
		if views[r].chainOK != "" {
			rep.fail("%s's hash chains do not verify: %s", r, views[r].chainOK)
		}
	}

	// Hash heads equal across regions, stream by stream.
	ref := d.topo.RegionNames()[0]
	streams := map[string]bool{}
	for _, v := range views {
		for s := range v.heads {
			streams[s] = true
		}
	}
	rep.Streams = len(streams)
	for s := range streams {
		want := views[ref].heads[s]
		for _, r := range d.topo.RegionNames() {
			got := views[r].heads[s]
			if got.Version != want.Version || got.Hash != want.Hash {
				rep.HeadMismatches++
				if rep.HeadMismatches <= 10 {
					rep.fail("stream %s: head differs between %s (v%d %s) and %s (v%d %s)", s, ref, want.Version, short(want.Hash), r, got.Version, short(got.Hash))
				}
				break
			}
		}
	}
	rep.HashHeadsEqual = rep.HeadMismatches == 0

	// Every event in a region's own log written within that region's
	// epochs: no write by a fenced owner survives anywhere (replicas were
	// validated on the way in; this checks the origins themselves).
	v := regions.NewValidator(d.cp, d.topo)
	if err := v.Refresh(ctx); err != nil {
		return err
	}
	for r, all := range logs {
		for i := range all {
			e := &all[i]
			if e.Metadata.Region != r {
				continue
			}
			vd, err := v.Check(ctx, r, e.Position, e.StreamID, time.Time{})
			if err != nil {
				return err
			}
			if !vd.OK {
				rep.FencedWritesAccepted++
				if rep.FencedWritesAccepted <= 10 {
					rep.fail("%s's event %s (%s v%d at %d) is outside its ownership: %s", r, e.ID, e.StreamID, e.Version, e.Position, vd.Reason)
				}
			}
		}
	}
	// Events the old owner reported as not replicated must be nowhere (an
	// event with the same ID may be: a re-driven saga step has the same
	// command ID, but it is another event, with another hash).
	for _, u := range d.unreplicated {
		for _, e := range u.Events {
			for r, vw := range views {
				if h, ok := vw.ids[e.ID]; ok && h == e.Hash {
					rep.FencedWritesAccepted++
					rep.fail("unreplicated event %s of %s is in %s's log", e.ID, u.Region, r)
				}
			}
		}
	}

	// Orders: decode the reference log's order streams.
	type orderState struct {
		placed, started, confirmed int
		confirmedBy, startedBy     string
	}
	states := map[string]*orderState{}
	reg := event.NewRegistry()
	order.Register(reg)
	for _, e := range logs[ref] {
		if event.Category(e.StreamID) != "order" {
			continue
		}
		id := strings.TrimPrefix(e.StreamID, "order-")
		st := states[id]
		if st == nil {
			st = &orderState{}
			states[id] = st
		}
		switch e.Type {
		case order.TypeOrderPlaced:
			st.placed++
		case order.TypeCheckoutStarted:
			st.started++
			st.startedBy = e.Metadata.Region
		case order.TypeOrderConfirmed:
			st.confirmed++
			st.confirmedBy = e.Metadata.Region
		}
	}
	lostIDs := map[string]bool{}
	d.load.mu.Lock()
	for _, o := range d.load.orders {
		st := states[o.ID]
		if !o.PlacedAt.IsZero() {
			rep.AckedPlaces++
			if st == nil || st.placed == 0 {
				rep.LostAckedPlaces++
				lostIDs[o.ID+"/place"] = true
				if d.cfg.Durability == regions.Sync {
					rep.fail("acknowledged order %s (by %s at %s) is lost", o.ID, o.PlacedBy, o.PlacedAt.Format(time.RFC3339Nano))
				}
			}
		}
		if !o.CheckoutAt.IsZero() {
			rep.AckedCheckouts++
			switch {
			case st == nil || st.started == 0:
				rep.LostAckedCheckouts++
				lostIDs[o.ID+"/checkout"] = true
				if d.cfg.Durability == regions.Sync {
					rep.fail("acknowledged checkout of %s (by %s) is lost", o.ID, o.CheckoutBy)
				}
			case st.confirmed == 0:
				rep.OpenSagas++
			default:
				rep.SagasCompleted++
				if st.confirmedBy != st.startedBy {
					rep.SagasResumed++
				}
			}
		}
		if o.PlacedAt.IsZero() && o.PlaceErr != "" {
			rep.Unacknowledged++
		}
	}
	d.load.mu.Unlock()
	for id, st := range states {
		if st.placed > 1 || st.confirmed > 1 {
			rep.Duplicates++
			rep.fail("order %s: %d placed, %d confirmed events", id, st.placed, st.confirmed)
		}
	}
	if rep.OpenSagas > 0 {
		rep.fail("%d acknowledged checkouts never completed (open sagas)", rep.OpenSagas)
	}

	// Charges: one authorization per order, whatever region drove it.
	ledger, err := (&node.PSPClient{URL: d.pspURL}).Ledger(ctx)
	if err != nil {
		return err
	}
	perOrder := map[string]int{}
	for _, e := range ledger {
		if e.Op == sandbox.OpAuthorize {
			perOrder[e.PaymentID]++
			rep.Charges++
		}
	}
	for id, n := range perOrder {
		if n > 1 {
			rep.DuplicateCharges++
			rep.fail("order %s charged %d times", id, n)
		}
		if st := states[id]; st == nil || st.started == 0 {
			// Money moved for a checkout the history does not have (it
			// was beyond the cut): possible in async mode only, where the
			// sagas act on locally durable events.
			rep.OrphanCharges++
			if d.cfg.Durability == regions.Sync {
				rep.fail("order %s charged but its checkout is not in the history", id)
			}
		}
	}

	// Loss: what was acknowledged and lost against what the old owner
	// reported as not replicated, write by write (an order's placement
	// may have been replicated and its checkout not).
	reported := map[string]bool{}
	reportedAt := map[string]time.Time{}
	orders := map[string]bool{}
	for _, u := range d.unreplicated {
		for _, e := range u.Events {
			rep.UnreplicatedEvents++
			if event.Category(e.Stream) != "order" {
				continue
			}
			id := strings.TrimPrefix(e.Stream, "order-")
			orders[id] = true
			switch e.Type {
			case order.TypeOrderPlaced:
				reported[id+"/place"] = true
				reportedAt[id+"/place"] = e.RecordedAt
			case order.TypeCheckoutStarted:
				reported[id+"/checkout"] = true
				reportedAt[id+"/checkout"] = e.RecordedAt
			}
		}
	}
	rep.UnreplicatedOrders = len(orders)
	for w := range lostIDs {
		if at, ok := reportedAt[w]; ok && !d.cutAt.IsZero() {
			rep.RPOSeconds = max(rep.RPOSeconds, at.Sub(d.cutAt).Seconds())
		}
		if !reported[w] {
			rep.LostNotReported++
			rep.fail("acknowledged write %s is lost but not in the loss report", w)
		}
	}
	// A reported write counts as acknowledged and lost when the client got
	// its acknowledgement and the history does not have it: a client that
	// got no answer retried with the same key at the new owner, which then
	// wrote it (another event, same command) and acknowledged it.
	d.load.mu.Lock()
	byID := map[string]*orderRec{}
	for _, o := range d.load.orders {
		if o.ID != "" {
			byID[o.ID] = o
		}
	}
	for w := range reported {
		id, kind, _ := strings.Cut(w, "/")
		o, st := byID[id], states[id]
		switch {
		case o == nil:
		case kind == "place" && !o.PlacedAt.IsZero() && (st == nil || st.placed == 0):
			rep.ReportedAcked++
		case kind == "checkout" && !o.CheckoutAt.IsZero() && (st == nil || st.started == 0):
			rep.ReportedAcked++
		}
	}
	d.load.mu.Unlock()
	rep.LostAcked = len(lostIDs)
	if rep.ReportedAcked != len(lostIDs) {
		rep.fail("loss mismatch: %d acknowledged writes lost, %d acknowledged writes in the loss report", len(lostIDs), rep.ReportedAcked)
	}
	if d.cfg.Durability == regions.Sync && len(lostIDs) > 0 {
		rep.fail("sync mode lost %d acknowledged writes", len(lostIDs))
	}
	return nil
}

func short(h event.Hash) string { return h.String()[:12] }

// rto computes, for the victim's homes, the longest stretch without an
// acknowledgement starting at or after from and ending before to.
func (d *drill) gap(homes []string, from, to time.Time) (time.Duration, time.Time, time.Time) {
	d.load.mu.Lock()
	var ts []time.Time
	for _, a := range d.load.acks {
		for _, h := range homes {
			if a.Home == h {
				ts = append(ts, a.At)
			}
		}
	}
	d.load.mu.Unlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	// The first acknowledgement after from ends the outage that began at from.
	for _, t := range ts {
		if !t.Before(from) && t.Before(to) {
			return t.Sub(from), from, t
		}
	}
	return to.Sub(from), from, to
}

// checkMetrics reads region's /metrics: it must answer 200 with the
// replication lag gauges and the API's request histogram.
func (d *drill) checkMetrics(ctx context.Context, region string) error {
	b, err := get(ctx, d.hc, d.url(region)+"/metrics")
	if err != nil {
		return err
	}
	for _, name := range []string{"livecore_replication_lag_events", "livecore_replication_lag_seconds", "livecore_http_request"} {
		if !bytes.Contains(b, []byte(name)) {
			return fmt.Errorf("no %s", name)
		}
	}
	return nil
}
