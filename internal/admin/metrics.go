package admin

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// Metrics are defined once at start-up, all in the milvus_lb_ namespace. Every label is
// bounded: backend keys come from the configuration, methods from the MilvusService table
// (anything else is "grpc" or "http"), codes from the gRPC code set or HTTP status,
// milvus_code from milvus.CodeName's set, endpoints from the registry (series of endpoints
// that left are dropped at the next configuration change), db and collection (opt-in)
// from a capped set.
type Metrics struct {
	Registry *prometheus.Registry

	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	epRequests  *prometheus.CounterVec
	epDuration  *prometheus.HistogramVec
	retries     *prometheus.CounterVec
	reloads     *prometheus.CounterVec
	reg         *balancer.Registry
	collections *collectionLabels // nil: no db and collection labels
	series      seriesCache       // the series of the label values seen

	cacheRequests *prometheus.CounterVec // cache_metrics.go
	rateLimited   *prometheus.CounterVec // ratelimit_metrics.go

	resilienceMetrics // ejections, overflows, retry budget (resilience.go)
}

// MetricsOption changes what NewMetrics defines.
type MetricsOption func(*Metrics)

// WithCollectionLabels adds db and collection labels to milvus_lb_requests_total and
// milvus_lb_request_duration_seconds, each with at most limit distinct values; later ones
// are counted as "_other". A Milvus cluster can hold 65,536 collections per database.
func WithCollectionLabels(limit int) MetricsOption {
	return func(m *Metrics) {
		if limit > 0 {
			m.collections = newCollectionLabels(limit)
		}
	}
}

var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NewMetrics registers every metric of the balancer. gw and reg feed the gauges read at
// scrape time (configuration generation, endpoint health and in-flight calls).
func NewMetrics(gw *gateway.Gateway, reg *balancer.Registry, opts ...MetricsOption) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(), reg: reg}
	m.resilienceMetrics = newResilienceMetrics(m.Registry, gw)
	for _, o := range opts {
		o(m)
	}
	callLabels := []string{"backend", "method", "code", "milvus_code"}
	durationLabels := []string{"backend", "method", "milvus_code"}
	if m.collections != nil {
		callLabels = append(callLabels, "db", "collection")
		durationLabels = append(durationLabels, "db", "collection")
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "milvus_lb", Name: "requests_total",
		Help: "Requests finished, by backend (namespace/service:port), Milvus method, status code (gRPC code name, or HTTP status) " +
			"and the Milvus status of the reply (milvus_code: Success when none).",
	}, callLabels)
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "milvus_lb", Name: "request_duration_seconds",
		Help:    "Time from request headers to the end of the response, by backend, Milvus method and Milvus status.",
		Buckets: durationBuckets,
	}, durationLabels)
	m.epRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "milvus_lb", Name: "endpoint_requests_total",
		Help: "Requests finished on each endpoint (the last one tried), by result: ok; error (a gRPC status other than OK, " +
			"or an HTTP status of 500 or more); milvus_error (an OK reply whose Milvus status is an error).",
	}, []string{"backend", "endpoint", "result"})
	m.epDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "milvus_lb", Name: "endpoint_request_duration_seconds",
		Help:    "Time from request headers to the end of the response, by the endpoint (the last one tried).",
		Buckets: durationBuckets,
	}, []string{"backend", "endpoint"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "milvus_lb", Name: "retries_total",
		Help: "Calls sent to another endpoint: a read that failed before its reply or whose reply said the proxy is not serving, or a call the backend provably did not receive.",
	}, []string{"backend"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "milvus_lb", Name: "config_reloads_total",
		Help: "Configuration changes applied (result=success) or rejected (result=failure).",
	}, []string{"result"})
	m.cacheRequests, m.rateLimited = newCacheRequests(), newRateLimited()
	m.Registry.MustRegister(m.requests, m.duration, m.epRequests, m.epDuration, m.retries, m.reloads, m.rateLimited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{gw: gw, reg: reg}, m.cacheRequests, cacheCollector{gw})
	return m
}

// RecordFields implements call.FieldsObserver: the names, when they are labels.
func (m *Metrics) RecordFields() milvus.Fields {
	if m.collections == nil {
		return 0
	}
	return milvus.FieldNames
}

// Observe implements call.Observer.
func (m *Metrics) Observe(r *call.Record) {
	k := seriesKey{backend: r.Backend, method: r.Method, mcode: milvus.CodeName(r.MilvusCode, r.MilvusErrCode)}
	failed := false
	if r.GRPC {
		k.code, failed = r.Code.String(), r.Code != codes.OK
		k.cache = r.Cache
	} else {
		k.code, failed = strconv.Itoa(r.Status), r.Status >= 500
		k.method = "http" // the REST path is unbounded: not a label
	}
	if m.collections != nil {
		k.db, k.coll = m.collections.values(r.DB, r.Collection)
	}
	if r.Endpoint != "" {
		k.endpoint, k.result = r.Endpoint, "ok"
		switch {
		case failed:
			k.result = "error"
		case r.MilvusCode != 0 || r.MilvusErrCode != 0:
			k.result = "milvus_error"
		}
	}
	s := m.series.get(k, m.lookup)
	seconds := r.Duration.Seconds()
	s.requests.Inc()
	s.duration.Observe(seconds)
	if s.epRequests != nil {
		s.epRequests.Inc()
		s.epDuration.Observe(seconds)
	}
	if r.Attempts > 1 {
		m.retries.WithLabelValues(k.backend).Add(float64(r.Attempts - 1))
	}
	m.observeCache(r, s)
	m.observeRateLimit(r)
}

// lookup finds (or makes) the series of k in the vectors.
func (m *Metrics) lookup(k seriesKey) *callSeries {
	s := &callSeries{}
	if m.collections != nil {
		s.requests = m.requests.WithLabelValues(k.backend, k.method, k.code, k.mcode, k.db, k.coll)
		s.duration = m.duration.WithLabelValues(k.backend, k.method, k.mcode, k.db, k.coll)
	} else {
		s.requests = m.requests.WithLabelValues(k.backend, k.method, k.code, k.mcode)
		s.duration = m.duration.WithLabelValues(k.backend, k.method, k.mcode)
	}
	if k.endpoint != "" {
		s.epRequests = m.epRequests.WithLabelValues(k.backend, k.endpoint, k.result)
		s.epDuration = m.epDuration.WithLabelValues(k.backend, k.endpoint)
	}
	if k.cache != "" {
		s.cache = m.cacheRequests.WithLabelValues(k.backend, k.method, k.cache)
	}
	return s
}

// Reloaded counts one configuration change. After a change that was applied, the series
// of endpoints that left the configuration (and have no call in flight) are dropped.
func (m *Metrics) Reloaded(ok bool) {
	if !ok {
		m.reloads.WithLabelValues("failure").Inc()
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	current := map[string]bool{}
	for _, ep := range m.reg.All() {
		current[ep.Addr] = true
	}
	// Both endpoint metrics always gain series together: one family lists them.
	deleted := false
	for _, addr := range labelValues(m.Registry, "milvus_lb_endpoint_requests_total", "endpoint") {
		if !current[addr] {
			m.epRequests.DeletePartialMatch(prometheus.Labels{"endpoint": addr})
			m.epDuration.DeletePartialMatch(prometheus.Labels{"endpoint": addr})
			deleted = true
		}
	}
	if deleted {
		m.series.drop()
	}
}

var (
	generationDesc = prometheus.NewDesc("milvus_lb_config_generation",
		"Generation of the configuration in force (increments on every applied change).", nil, nil)
	endpointsDesc = prometheus.NewDesc("milvus_lb_backend_endpoints",
		"Endpoints of each backend by state: healthy (taking calls), unhealthy, draining.", []string{"backend", "state"}, nil)
	inflightDesc = prometheus.NewDesc("milvus_lb_endpoint_inflight_requests",
		"Requests in flight to each endpoint.", []string{"endpoint"}, nil)
)

// stateCollector reads the current snapshot and endpoint registry at scrape time.
type stateCollector struct {
	gw  *gateway.Gateway
	reg *balancer.Registry
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- generationDesc
	ch <- endpointsDesc
	ch <- inflightDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.gw.Current()
	ch <- prometheus.MustNewConstMetric(generationDesc, prometheus.GaugeValue, float64(snap.Generation))
	for key, b := range snap.Backends {
		var healthy, unhealthy int
		for _, ep := range b.Endpoints {
			if ep.Healthy() {
				healthy++
			} else {
				unhealthy++
			}
		}
		draining := 0
		for _, e := range b.Backend.Endpoints {
			if !e.Ready || e.Terminating {
				draining++
			}
		}
		ch <- prometheus.MustNewConstMetric(endpointsDesc, prometheus.GaugeValue, float64(healthy), key, "healthy")
		ch <- prometheus.MustNewConstMetric(endpointsDesc, prometheus.GaugeValue, float64(unhealthy), key, "unhealthy")
		ch <- prometheus.MustNewConstMetric(endpointsDesc, prometheus.GaugeValue, float64(draining), key, "draining")
	}
	for _, ep := range c.reg.All() {
		ch <- prometheus.MustNewConstMetric(inflightDesc, prometheus.GaugeValue, float64(ep.Inflight()), ep.Addr)
	}
}
