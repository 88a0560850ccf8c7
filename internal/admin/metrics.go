package admin

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
)

// Metrics are defined once at start-up, all in the milvus_lb_ namespace. Every label is
// bounded: backend keys come from the configuration, methods from the MilvusService table
// (anything else is "grpc" or "http"), codes from the gRPC code set or HTTP status.
type Metrics struct {
	Registry *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	reloads  *prometheus.CounterVec

	resilienceMetrics // ejections, overflows, retry budget (resilience.go)
}

// NewMetrics registers every metric of the balancer. gw and reg feed the gauges read at
// scrape time (configuration generation, endpoint health and in-flight calls).
func NewMetrics(gw *gateway.Gateway, reg *balancer.Registry) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.resilienceMetrics = newResilienceMetrics(m.Registry, gw)
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "milvus_lb", Name: "requests_total",
		Help: "Requests finished, by backend (namespace/service:port), Milvus method and status code (gRPC code name, or HTTP status).",
	}, []string{"backend", "method", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "milvus_lb", Name: "request_duration_seconds",
		Help:    "Time from request headers to the end of the response, by backend and Milvus method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"backend", "method"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "milvus_lb", Name: "retries_total",
		Help: "Requests sent to another endpoint because the first refused the connection.",
	}, []string{"backend"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "milvus_lb", Name: "config_reloads_total",
		Help: "Configuration changes applied (result=success) or rejected (result=failure).",
	}, []string{"result"})
	m.Registry.MustRegister(m.requests, m.duration, m.retries, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{gw: gw, reg: reg})
	return m
}

// Observe implements call.Observer.
func (m *Metrics) Observe(r *call.Record) {
	code := strconv.Itoa(r.Status)
	if r.GRPC {
		code = r.Code.String()
	}
	backend := r.Backend
	method := r.Method
	if !r.GRPC {
		method = "http" // the REST path is unbounded: not a label
	}
	m.requests.WithLabelValues(backend, method, code).Inc()
	m.duration.WithLabelValues(backend, method).Observe(r.Duration.Seconds())
	if r.Attempts > 1 {
		m.retries.WithLabelValues(backend).Add(float64(r.Attempts - 1))
	}
}

// Reloaded counts one configuration change.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
	} else {
		m.reloads.WithLabelValues("failure").Inc()
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
