package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
)

// The reply cache's metrics (docs/cache.md): calls by what the cache did for them, from
// the call records; what each Ingress's cache holds and did, read at scrape time.
var (
	cacheStoresDesc = prometheus.NewDesc("milvus_lb_cache_stores_total",
		"Replies stored in the reply cache of each Ingress.", []string{"ingress"}, nil)
	cacheRefusedDesc = prometheus.NewDesc("milvus_lb_cache_refused_total",
		"Replies not stored: larger than maxEntryBytes, or their call began before a write that may change them.", []string{"ingress"}, nil)
	cacheEvictionsDesc = prometheus.NewDesc("milvus_lb_cache_evictions_total",
		"Entries evicted (least recently used first) to keep the cache within maxBytes.", []string{"ingress"}, nil)
	cacheInvalidationsDesc = prometheus.NewDesc("milvus_lb_cache_invalidations_total",
		"Calls that made entries stale, by cause: write (a collection's data), ddl (a collection), "+
			"database (aliases, a list of collections), backend (databases, renames, users and roles).", []string{"ingress", "cause"}, nil)
	cacheBytesDesc = prometheus.NewDesc("milvus_lb_cache_bytes",
		"Bytes held by the reply cache of each Ingress (keys, replies and per-entry overhead).", []string{"ingress"}, nil)
	cacheEntriesDesc = prometheus.NewDesc("milvus_lb_cache_entries",
		"Entries held by the reply cache of each Ingress.", []string{"ingress"}, nil)
)

func newCacheRequests() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "milvus_lb", Name: "cache_requests_total",
		Help: "Calls to methods an Ingress's reply cache serves, by backend, method and result: hit (answered from the cache), " +
			"miss (sent to the backend), bypass (not cacheable: Strong or Customized consistency, an unknown default level, a compressed request).",
	}, []string{"backend", "method", "result"})
}

// observeCache counts a call the cache had a part in: in its series s when they include
// the cache's counter (gRPC calls: looked up once per label set, as WithLabelValues cost
// about 0.6 µs per Search call), else by its labels.
func (m *Metrics) observeCache(r *call.Record, s *callSeries) {
	switch {
	case s.cache != nil:
		s.cache.Inc()
	case r.Cache != "":
		m.cacheRequests.WithLabelValues(r.Backend, r.Method, r.Cache).Inc()
	}
}

// cacheCollector reads the caches of the snapshot in force.
type cacheCollector struct{ gw *gateway.Gateway }

func (cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheStoresDesc, cacheRefusedDesc, cacheEvictionsDesc, cacheInvalidationsDesc, cacheBytesDesc, cacheEntriesDesc} {
		ch <- d
	}
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	for ing, cc := range c.gw.Current().Caches {
		st := cc.Store.Stats()
		ch <- prometheus.MustNewConstMetric(cacheStoresDesc, prometheus.CounterValue, float64(st.Stores), ing)
		ch <- prometheus.MustNewConstMetric(cacheRefusedDesc, prometheus.CounterValue, float64(st.Refused), ing)
		ch <- prometheus.MustNewConstMetric(cacheEvictionsDesc, prometheus.CounterValue, float64(st.Evictions), ing)
		for cause, n := range st.Invalidations {
			ch <- prometheus.MustNewConstMetric(cacheInvalidationsDesc, prometheus.CounterValue, float64(n), ing, cause)
		}
		ch <- prometheus.MustNewConstMetric(cacheBytesDesc, prometheus.GaugeValue, float64(st.Bytes), ing)
		ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(st.Entries), ing)
	}
}
