package server

import (
	"net/http"
	"strconv"
	"switchyard/registrar/store"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are what /metrics serves, on their own registry so that only what is
// defined here (plus the Go runtime and process collectors) appears there. They are
// made before the store is opened, so that the store's commit observer
// (StoreOptions) feeds them, and handed to New.
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	watchers   prometheus.Gauge
	commits    prometheus.Counter
	commitSecs prometheus.Histogram
	batchSize  prometheus.Histogram
}

// NewMetrics makes the registry and the server's own metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registrar_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "registrar_long_poll_watchers",
			Help: "GET /v1/routes requests currently waiting for a change.",
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_store_commits_total",
			Help: "Durable replacements of the data file.",
		}),
		commitSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "registrar_store_commit_seconds",
			Help:    "Time to apply and durably write one batch of writes.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "registrar_store_commit_batch_writes",
			Help:    "Writes carried by one durable replacement (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
	}
	m.reg.MustRegister(m.requests, m.watchers, m.commits, m.commitSecs, m.batchSize,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeStore adds the table gauges, read from st's current table at each scrape
// (so they hold for any store, whoever wrote to it).
func (m *Metrics) observeStore(st store.Store) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "registrar_servers",
			Help: "Servers registered in the current table.",
		}, func() float64 { return float64(st.Current().Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "registrar_revision",
			Help: "Revision of the current table.",
		}, func() float64 { return float64(st.Current().Revision()) }),
	)
}

// observeCommit is the store's commit observer (StoreOptions).
func (m *Metrics) observeCommit(c store.Commit) {
	m.commits.Inc()
	m.batchSize.Observe(float64(c.Writes))
	m.commitSecs.Observe(c.Took.Seconds())
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// count wraps the whole mux: after it has served, r.Pattern holds the pattern that
// matched, which keeps the route label to a fixed set (never the raw path).
func (m *Metrics) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
	})
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observeProxies adds the proxy registry's metrics, computed at each scrape against
// st's current table: proxies by state, the largest lag of the proxies that are not
// gone (revisions and seconds; 0 when all are current), and the registry's counters.
func (m *Metrics) observeProxies(r *proxyRegistry, st store.Store) {
	m.reg.MustRegister(&proxyCollector{r: r, st: st})
}

type proxyCollector struct {
	r  *proxyRegistry
	st store.Store
}

var (
	proxiesDesc = prometheus.NewDesc("registrar_proxies",
		"Proxies that have polled this registrar (sync protocol 2), by state: current, behind, gone.", []string{"state"}, nil)
	proxyLagRevDesc = prometheus.NewDesc("registrar_proxy_lag_revisions_max",
		"The most revisions a proxy that is not gone is behind the current table (0 when all are current).", nil, nil)
	proxyLagSecDesc = prometheus.NewDesc("registrar_proxy_lag_seconds_max",
		"The longest time a proxy that is not gone has been behind the current table (0 when all are current).", nil, nil)
	proxyEvictedDesc = prometheus.NewDesc("registrar_proxies_evicted_total",
		"Gone proxies dropped from the registry to make room for a new one (-max-proxies reached).", nil, nil)
	proxyRefusedDesc = prometheus.NewDesc("registrar_proxies_refused_total",
		"Polls of new proxy ids not recorded because -max-proxies live proxies are known (a flood of made-up ids shows here).", nil, nil)
	proxyEscapedDesc = prometheus.NewDesc("registrar_proxy_identities_escaped_total",
		"Polls whose proxy, cluster or version held characters outside visible ASCII (or was too long) and were recorded escaped.", nil, nil)
	proxyUnnamedDesc = prometheus.NewDesc("registrar_proxy_polls_unnamed_total",
		"Version-2 polls without proxy=, recorded as unnamed@<their address> (several proxies behind one address share that entry).", nil, nil)
)

func (c *proxyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{proxiesDesc, proxyLagRevDesc, proxyLagSecDesc, proxyEvictedDesc, proxyRefusedDesc, proxyEscapedDesc, proxyUnnamedDesc} {
		ch <- d
	}
}

func (c *proxyCollector) Collect(ch chan<- prometheus.Metric) {
	views, sum := c.r.list(c.st.Current().Revision(), c.st.Lineage())
	var lagRev uint64
	var lagSec float64
	for _, v := range views {
		if v.State == stateBehind {
			lagRev, lagSec = max(lagRev, v.RevisionsBehind), max(lagSec, v.BehindSeconds)
		}
	}
	ch <- prometheus.MustNewConstMetric(proxiesDesc, prometheus.GaugeValue, float64(sum.Current), stateCurrent)
	ch <- prometheus.MustNewConstMetric(proxiesDesc, prometheus.GaugeValue, float64(sum.Behind), stateBehind)
	ch <- prometheus.MustNewConstMetric(proxiesDesc, prometheus.GaugeValue, float64(sum.Gone), stateGone)
	ch <- prometheus.MustNewConstMetric(proxyLagRevDesc, prometheus.GaugeValue, float64(lagRev))
	ch <- prometheus.MustNewConstMetric(proxyLagSecDesc, prometheus.GaugeValue, lagSec)
	evicted, refused, escaped, unnamed := c.r.counters()
	ch <- prometheus.MustNewConstMetric(proxyEvictedDesc, prometheus.CounterValue, float64(evicted))
	ch <- prometheus.MustNewConstMetric(proxyRefusedDesc, prometheus.CounterValue, float64(refused))
	ch <- prometheus.MustNewConstMetric(proxyEscapedDesc, prometheus.CounterValue, float64(escaped))
	ch <- prometheus.MustNewConstMetric(proxyUnnamedDesc, prometheus.CounterValue, float64(unnamed))
}
