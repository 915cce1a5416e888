package replicate

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the replicator's Prometheus series, labelled with this region
// (const label) and the peer:
//
//	livecore_replication_lag_events{region,peer}      committed records not yet applied (+ held)
//	livecore_replication_lag_seconds{region,peer}     age of the newest applied event while lagging
//	livecore_replication_held{region,peer}            events waiting for a predecessor
//	livecore_replication_applied_total{region}        events appended
//	livecore_replication_skipped_total{region}        re-deliveries skipped
//	livecore_replication_rejected_total{region,peer,reason}  stale_epoch, conflict, bad_record
type metrics struct {
	lagEvents, lagSeconds, held *prometheus.GaugeVec
	applied, skipped            prometheus.Counter
	rejected                    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, region string) (*metrics, error) {
	cl := prometheus.Labels{"region": region}
	m := &metrics{
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "livecore_replication_lag_events", ConstLabels: cl,
			Help: "Records committed to a peer's topics and not yet applied here, plus held events."}, []string{"peer"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "livecore_replication_lag_seconds", ConstLabels: cl,
			Help: "While lagging: how old the newest event applied from the peer was when applied."}, []string{"peer"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "livecore_replication_held", ConstLabels: cl,
			Help: "Events from the peer waiting for their stream predecessor."}, []string{"peer"}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "livecore_replication_applied_total", ConstLabels: cl,
			Help: "Replicated events appended to the local store."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "livecore_replication_skipped_total", ConstLabels: cl,
			Help: "Replicated events already stored (re-deliveries)."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "livecore_replication_rejected_total", ConstLabels: cl,
			Help: "Replicated events refused: stale_epoch (written outside the writer's ownership), conflict, bad_record."}, []string{"peer", "reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.lagEvents, m.lagSeconds, m.held, m.applied, m.skipped, m.rejected} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("replicator metrics"), err)
		}
	}
	return m, nil
}
