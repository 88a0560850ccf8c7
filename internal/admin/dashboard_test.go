package admin

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/accesslog"
	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/listener"
)

// dashboard is the Grafana dashboard shipped in deploy/.
const dashboard = "../../deploy/grafana/milvus-lb.json"

var (
	// selectorRE finds a metric name and its label matchers: name{a="x", b=~"y"}.
	selectorRE = regexp.MustCompile(`\b((?:milvus_lb|process|go)_[a-z0-9_]+)\b(\{[^}]*\})?`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	byRE       = regexp.MustCompile(`\bby\s*\(([^)]*)\)`)
)

// scrapeLabels are added by Prometheus when it scrapes, not by milvus-lb.
var scrapeLabels = map[string]bool{"instance": true, "job": true, "le": true}

// TestDashboardQueriesExist: every metric the dashboard queries is one milvus-lb exports,
// with the labels the query matches and groups by, so an edit to either shows here.
func TestDashboardQueriesExist(t *testing.T) {
	b, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Query any
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	labels := exportedLabels(t)
	var queries []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			queries = append(queries, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			queries = append(queries, q["query"].(string))
		}
	}
	if len(queries) < 15 {
		t.Fatalf("%d queries in the dashboard; the parse is wrong", len(queries))
	}
	for _, q := range queries {
		grouped := map[string]bool{}
		for _, m := range byRE.FindAllStringSubmatch(q, -1) {
			for l := range strings.SplitSeq(m[1], ",") {
				grouped[strings.TrimSpace(l)] = true
			}
		}
		for _, m := range selectorRE.FindAllStringSubmatch(q, -1) {
			name := m[1]
			have, ok := labels[name]
			if !ok {
				t.Errorf("the dashboard queries %s, which milvus-lb does not export (in %q)", name, q)
				continue
			}
			for _, lm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
				if !have[lm[1]] && !scrapeLabels[lm[1]] {
					t.Errorf("the dashboard matches label %s of %s, which has none (in %q)", lm[1], name, q)
				}
			}
			for l := range grouped {
				if !have[l] && !scrapeLabels[l] {
					t.Errorf("the dashboard groups %s by %s, which it lacks (in %q)", name, l, q)
				}
			}
		}
	}
}

// exportedLabels gathers every metric of a balancer that has seen calls, by name (a
// histogram under its _bucket, _sum and _count names too), with its label names.
func exportedLabels(t *testing.T) map[string]map[string]bool {
	reg := balancer.NewRegistry()
	gw := gateway.New(reg, nil, nil, nil)
	be := &config.Backend{Key: backend, Service: "default/milvus-demo", Port: "19530", Algorithm: config.RoundRobin,
		HealthCheck: config.HealthCheck{Kind: config.CheckNone}, Endpoints: []config.Endpoint{{Address: "10.0.0.1:19530", Ready: true}}}
	if _, err := gw.Apply(context.Background(), &config.Model{Backends: map[string]*config.Backend{backend: be}}, nil); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(gw, reg)
	m.Registry.MustRegister(ConnCollector(func() listener.ConnStats {
		return listener.ConnStats{HTTP2Errors: map[string]int64{"too_many_early_resets": 1}}
	}), AccessLogCollector(func() accesslog.Stats { return accesslog.Stats{} }))
	m.Observe(&call.Record{GRPC: true, Method: "Search", Backend: backend, Endpoint: "10.0.0.1:19530", Attempts: 2, Code: codes.OK})
	m.Reloaded(false)
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, mf := range mfs {
		names := []string{mf.GetName()}
		if mf.GetType().String() == "HISTOGRAM" {
			names = append(names, mf.GetName()+"_bucket", mf.GetName()+"_sum", mf.GetName()+"_count")
		}
		for _, n := range names {
			out[n] = map[string]bool{}
			for _, s := range mf.GetMetric() {
				for _, lp := range s.GetLabel() {
					out[n][lp.GetName()] = true
				}
			}
		}
	}
	return out
}
