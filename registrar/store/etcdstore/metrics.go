package etcdstore

import "github.com/prometheus/client_golang/prometheus"

// Collectors are the etcd store's own metrics, for the registrar's /metrics beside the
// ones both stores share.
func (s *Store) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "registrar_etcd_invalid_keys",
			Help: "Keys under the etcd prefix that are not valid servers and are skipped (each is logged by key).",
		}, func() float64 { return float64(s.InvalidKeys()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "registrar_etcd_reachable",
			Help: "1 when the last request to etcd went through, 0 while it cannot be reached (writes then answer 503).",
		}, func() float64 {
			if s.Reachable() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "registrar_etcd_full_reads_total",
			Help: "Full reads of the table from etcd: at start, after a compaction past the watch, etcd restored, or a new lineage.",
		}, func() float64 { return float64(s.fullReads.Load()) }),
	}
}
