// Package admin serves the operator's side of milvus-lb on a separate, loopback-only (by
// default) address: the status page, the `get ingress` API, Prometheus /metrics, liveness
// and readiness, and pprof.
package admin

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/pprof"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/reload"
)

// IngressRow is one line of `milvus-lb get ingress`, the columns kubectl prints.
type IngressRow struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Class     string    `json:"class"`
	Hosts     []string  `json:"hosts"`
	Address   string    `json:"address"` // empty until the Ingress is served
	Ports     []int     `json:"ports"`
	Created   time.Time `json:"created,omitzero"`
	Served    bool      `json:"served"`
}

// Server is the admin HTTP handler. Safe for concurrent use.
type Server struct {
	Gateway *gateway.Gateway
	Metrics *Metrics
	// Address is what clients should connect to (ADDRESS in get ingress).
	Address string
	// Ports reports the ports actually open.
	Ports func() []int
	// Live and Registry feed the live page (page.go); either may be nil.
	Live     *Live
	Registry *balancer.Registry
	// Rejected, if set, reports the last refused reload (reload.Pipeline.Rejected).
	Rejected func() *reload.Rejection
	// Draining, if set, reports that the drain began (SIGTERM): /readyz then fails, so
	// that whatever still routes by readiness stops sending new connections.
	Draining func() bool
}

// Handler returns the admin routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/ingresses", s.ingresses)
	mux.HandleFunc("GET /api/v1/status", s.status)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /status", s.page)
	s.liveRoutes(mux)
	return mux
}

// Rows computes the get-ingress view of a snapshot.
func Rows(snap *gateway.Snapshot, address string, open []int) []IngressRow {
	rows := make([]IngressRow, 0, len(snap.Model.Ingresses))
	for _, in := range snap.Model.Ingresses {
		row := IngressRow{Namespace: in.Namespace, Name: in.Name, Class: in.Class, Hosts: in.Hosts, Created: in.Created, Served: in.Served}
		for _, p := range in.Ports {
			if slices.Contains(open, p) {
				row.Ports = append(row.Ports, p)
			}
		}
		if in.Served && len(row.Ports) > 0 {
			row.Address = address
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Namespace != rows[j].Namespace {
			return rows[i].Namespace < rows[j].Namespace
		}
		return rows[i].Name < rows[j].Name
	})
	return rows
}

// ingresses answers the list; with ?watch=true it streams one JSON list per line, first
// the current one, then one after every configuration change, until the client leaves.
func (s *Server) ingresses(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	if r.URL.Query().Get("watch") != "true" {
		_ = enc.Encode(Rows(s.Gateway.Current(), s.Address, s.Ports()))
		return
	}
	ch, stop := s.Gateway.Subscribe()
	defer stop()
	rc := http.NewResponseController(w)
	for {
		if err := enc.Encode(Rows(s.Gateway.Current(), s.Address, s.Ports())); err != nil {
			return
		}
		_ = rc.Flush()
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
	}
}

// Status is the JSON form of the status page.
type Status struct {
	Generation uint64    `json:"generation"`
	Applied    time.Time `json:"applied,omitzero"`
	// Rejected is the last reload, when it was refused: the configuration of Generation
	// keeps serving. Absent once a later reload is applied.
	Rejected  *reload.Rejection `json:"rejected,omitempty"`
	Ports     []int             `json:"ports"`
	Problems  config.Problems   `json:"problems"`
	Backends  []BackendStatus   `json:"backends"`
	Ingresses []IngressRow      `json:"ingresses"`
	Listeners []config.Listener `json:"listeners"`
}

// BackendStatus is one backend with its endpoints' live state.
type BackendStatus struct {
	Key         string           `json:"key"`
	Algorithm   string           `json:"algorithm"`
	HealthCheck string           `json:"healthCheck"`
	Endpoints   []EndpointStatus `json:"endpoints"`
}

// EndpointStatus is one endpoint's live state.
type EndpointStatus struct {
	Address  string `json:"address"`
	Healthy  bool   `json:"healthy"`
	Ready    bool   `json:"ready"`
	Inflight int64  `json:"inflight"`

	EjectedUntil time.Time `json:"ejectedUntil,omitzero"` // set while ejected: see ejectedUntil
}

func (s *Server) snapshotStatus() Status {
	snap := s.Gateway.Current()
	st := Status{Generation: snap.Generation, Applied: snap.Applied, Ports: s.Ports(), Problems: snap.Problems,
		Ingresses: Rows(snap, s.Address, s.Ports()), Listeners: snap.Model.Listeners}
	if st.Problems == nil {
		st.Problems = config.Problems{}
	}
	if s.Rejected != nil {
		st.Rejected = s.Rejected()
	}
	for key, b := range snap.Backends {
		bs := BackendStatus{Key: key, Algorithm: string(b.Algorithm), HealthCheck: string(b.HealthCheck.Kind)}
		live := map[string]bool{}
		for _, ep := range b.Endpoints {
			live[ep.Addr] = true
			bs.Endpoints = append(bs.Endpoints, EndpointStatus{Address: ep.Addr, Healthy: ep.Healthy(), Ready: true, Inflight: ep.Inflight(), EjectedUntil: ejectedUntil(ep)})
		}
		for _, e := range b.Backend.Endpoints {
			if !live[e.Address] {
				bs.Endpoints = append(bs.Endpoints, EndpointStatus{Address: e.Address})
			}
		}
		st.Backends = append(st.Backends, bs)
	}
	sort.Slice(st.Backends, func(i, j int) bool { return st.Backends[i].Key < st.Backends[j].Key })
	return st
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.snapshotStatus())
}

// readyz is 200 once a configuration is in force and its ports are open, until the drain.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.Draining != nil && s.Draining() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	if s.Gateway.Current().Generation == 0 {
		http.Error(w, "no configuration applied yet", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"since": func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>milvus-lb</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d2330}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;min-width:40rem}td,th{padding:.3rem .8rem;border-bottom:1px solid #dde;text-align:left}
th{background:#f3f5f9}.ok{color:#12753a}.bad{color:#b3261e}.warn{color:#8a5a00}code{font-size:13px}
</style></head><body>
<h1>milvus-lb</h1>
<p>Configuration generation <b>{{.Generation}}</b>{{if not .Applied.IsZero}}, applied {{since .Applied}} ago{{end}}. Open ports: {{range .Ports}}<code>{{.}}</code> {{else}}none{{end}}</p>
{{with .Rejected}}<h2 class="bad">Last reload rejected</h2>
<p class="bad">Rejected {{since .At}} ago ({{.At.Format "2006-01-02 15:04:05 MST"}}): {{.Error}}.
{{if .Serving}}Generation <b>{{.Serving}}</b> keeps serving.{{else}}No configuration is serving.{{end}}</p>
{{template "problems" .Problems}}
{{end}}<h2>Ingresses</h2>
<table><tr><th>Name</th><th>Class</th><th>Hosts</th><th>Address</th><th>Ports</th></tr>
{{range .Ingresses}}<tr><td>{{.Namespace}}/{{.Name}}</td><td>{{.Class}}</td><td>{{range .Hosts}}{{.}} {{else}}*{{end}}</td><td>{{.Address}}</td><td>{{range .Ports}}{{.}} {{end}}</td></tr>
{{else}}<tr><td colspan="5">none</td></tr>{{end}}</table>
<h2>Backends</h2>
<table><tr><th>Backend</th><th>Algorithm</th><th>Health check</th><th>Endpoint</th><th>State</th><th>In flight</th></tr>
{{range .Backends}}{{$b := .}}{{range .Endpoints}}<tr><td>{{$b.Key}}</td><td>{{$b.Algorithm}}</td><td>{{$b.HealthCheck}}</td><td><code>{{.Address}}</code></td>
<td>{{if not .Ready}}<span class="warn">not ready</span>{{else if .Healthy}}<span class="ok">healthy</span>{{else}}<span class="bad">unhealthy</span>{{end}}</td><td>{{.Inflight}}</td></tr>
{{else}}<tr><td>{{$b.Key}}</td><td colspan="5">no endpoints</td></tr>{{end}}{{end}}</table>
<h2>Problems{{if .Rejected}} of generation {{.Generation}}{{end}}</h2>
{{template "problems" .Problems}}
<p><a href="/metrics">metrics</a> · <a href="/api/v1/status">status JSON</a> · <a href="/api/v1/ingresses">ingresses JSON</a> · <a href="/debug/pprof/">pprof</a></p>
</body></html>
{{define "problems"}}{{range .}}<p class="{{if eq .Severity "error"}}bad{{else}}warn{{end}}">{{.Severity}}: {{.String}}</p>{{else}}<p class="ok">none</p>{{end}}{{end}}`))

func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, s.snapshotStatus())
}
