package kafka

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the bridge's Prometheus metrics. Every series carries the
// constant labels bridge (Config.Name) and mode.
//
//	livecore_bridge_lag_events                  gauge    store head - last published position
//	livecore_bridge_lag_seconds                 gauge    age of the oldest unpublished event (0 when caught up)
//	livecore_bridge_last_published_position     gauge    global position of the last committed event
//	livecore_bridge_events_published_total      counter  events in committed transactions
//	livecore_bridge_transactions_committed_total counter
//	livecore_bridge_transactions_aborted_total  counter  transactions abandoned (aborted, fenced or ambiguous)
//	livecore_bridge_sessions_total              counter  producer clients built (1 + restarts)
//	livecore_bridge_commit_seconds              histogram flush + EndTransaction
type metrics struct {
	lagEvents, lagSeconds, lastPublished prometheus.Gauge
	published, committed, aborted        prometheus.Counter
	sessions                             prometheus.Counter
	commitSeconds                        prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, name string, mode Mode) (*metrics, error) {
	labels := prometheus.Labels{"bridge": name, "mode": mode.String()}
	g := func(n, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "livecore", Subsystem: "bridge", Name: n, Help: help, ConstLabels: labels})
	}
	c := func(n, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "livecore", Subsystem: "bridge", Name: n, Help: help, ConstLabels: labels})
	}
	m := &metrics{
		lagEvents:     g("lag_events", "Events in the store not yet published to Kafka (head - last published position)."),
		lagSeconds:    g("lag_seconds", "Age of the oldest unpublished event, 0 when caught up."),
		lastPublished: g("last_published_position", "Global position of the last event committed to Kafka."),
		published:     c("events_published_total", "Events in committed transactions."),
		committed:     c("transactions_committed_total", "Kafka transactions committed."),
		aborted:       c("transactions_aborted_total", "Kafka transactions abandoned: aborted, fenced, or ended ambiguously."),
		sessions:      c("sessions_total", "Producer clients built; every failure closes the client and builds a new one."),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "livecore", Subsystem: "bridge", Name: "commit_seconds",
			Help:        "Time to flush a transaction's records and commit it.",
			ConstLabels: labels,
			Buckets:     prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{m.lagEvents, m.lagSeconds, m.lastPublished, m.published, m.committed, m.aborted, m.sessions, m.commitSeconds} {
			if err := reg.Register(col); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
