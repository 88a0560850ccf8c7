package admin

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
)

// pageServer applies a model with endpoints in every state and returns the admin server.
func pageServer(t *testing.T) *Server {
	t.Helper()
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.IssueTemplate(t, &x509.Certificate{Subject: pkix.Name{CommonName: "milvus-demo.milvus.io"},
		DNSNames: []string{"milvus-demo.milvus.io"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	main := &config.Backend{Key: "milvus/milvus-demo:19530", Algorithm: config.RoundRobin, HealthCheck: config.HealthCheck{Kind: config.CheckNone},
		Endpoints: []config.Endpoint{{Address: "10.0.0.1:19530", Ready: true}, {Address: "10.0.0.2:19530", Ready: true},
			{Address: "10.0.0.3:19530", Ready: true}, {Address: "10.0.0.4:19530", Ready: true, Terminating: true},
			{Address: "10.0.0.5:19530"}}}
	warm := &config.Backend{Key: "milvus/warm:19530", Algorithm: config.LeastOutstandingRequests, SlowStart: config.Duration(time.Hour),
		HealthCheck: config.HealthCheck{Kind: config.CheckNone}, Endpoints: []config.Endpoint{{Address: "10.0.1.1:19530", Ready: true}}}
	route := config.Route{Host: "milvus-demo.milvus.io", Path: "/", PathType: config.PathPrefix, Backend: main.Key, Ingress: "milvus/milvus-demo"}
	model := &config.Model{
		Backends: map[string]*config.Backend{main.Key: main, warm.Key: warm},
		Listeners: []config.Listener{{Port: 443, Protocol: config.HTTPS, Routes: []config.Route{route},
			Certificates: []config.Certificate{{Ref: "arn:milvus-lb:acm:local:0:certificate/demo", CertPEM: certPEM, KeyPEM: keyPEM}}}},
		Ingresses: []config.IngressStatus{{Namespace: "milvus", Name: "milvus-demo", Class: "alb", Hosts: []string{"milvus-demo.milvus.io"}, Ports: []int{443}, Served: true}},
	}
	reg := balancer.NewRegistry()
	gw := gateway.New(reg, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := gw.Apply(context.Background(), model, config.Problems{{Severity: config.Warning, Object: "Ingress milvus/x", Message: "ignored"}}); err != nil {
		t.Fatal(err)
	}
	ep := func(addr string) *balancer.Endpoint { e, _ := reg.Get(addr); return e }
	ep("10.0.0.2:19530").SetHealthy(false)
	ep("10.0.0.3:19530").Eject(time.Minute)
	ep("10.0.0.4:19530").Start() // terminating, one call still running
	gone, _ := reg.Get("10.9.9.9:19530")
	gone.Start()
	gone.SetDraining(true)

	live := NewLive()
	// Calls that ended by now: the live page counts a call in the second it ended, and
	// one ending after the view's time (a second boundary within its 2 ms) is not shown.
	now := time.Now()
	for range 5 {
		live.Observe(&call.Record{Start: now.Add(-2 * time.Millisecond), Duration: 2 * time.Millisecond, GRPC: true, Method: "Search", Endpoint: "10.0.0.1:19530"})
	}
	live.Observe(&call.Record{Start: now.Add(-time.Millisecond), Duration: time.Millisecond, GRPC: true, Method: "Insert", Endpoint: "10.0.0.1:19530",
		Code: codes.Unavailable, Client: "127.0.0.1:5555", DB: "default", Collection: "books"})
	return &Server{Gateway: gw, Metrics: NewMetrics(gw, reg), Address: "10.1.2.3", Ports: func() []int { return []int{443} },
		Live: live, Registry: reg}
}

func TestLiveView(t *testing.T) {
	s := pageServer(t)
	v := liveView(s.Gateway.Current(), s.Registry, s.Live, s.Ports(), s.Address, time.Now())
	states := map[string]string{}
	var calls *CallStats
	for _, b := range v.Backends {
		for _, e := range b.Endpoints {
			states[e.Address] = e.State
			if e.Address == "10.0.0.1:19530" {
				calls = e.Calls
			}
		}
	}
	want := map[string]string{"10.0.0.1:19530": StateHealthy, "10.0.0.2:19530": StateUnhealthy, "10.0.0.3:19530": StateEjected,
		"10.0.0.4:19530": StateDraining, "10.0.0.5:19530": StateNotReady, "10.0.1.1:19530": StateSlowStart}
	for addr, st := range want {
		if states[addr] != st {
			t.Errorf("endpoint %s: state %q, want %q", addr, states[addr], st)
		}
	}
	if calls == nil || calls.Calls != 6 || calls.Failed != 1 {
		t.Errorf("endpoint 10.0.0.1's calls %+v, want 6 with 1 failed", calls)
	}
	if v.Backends[0].Inflight != 1 || v.Inflight != 2 {
		t.Errorf("in flight: backend %d, all %d; want 1 (the terminating endpoint's) and 2", v.Backends[0].Inflight, v.Inflight)
	}
	if len(v.Leaving) != 1 || v.Leaving[0].Address != "10.9.9.9:19530" || v.Leaving[0].Inflight != 1 {
		t.Errorf("leaving %+v, want 10.9.9.9:19530 with its call", v.Leaving)
	}
	if len(v.Listeners) != 1 || len(v.Listeners[0].Certificates) != 1 {
		t.Fatalf("listeners %+v, want one with its certificate", v.Listeners)
	}
	c := v.Listeners[0].Certificates[0]
	if c.Subject != "milvus-demo.milvus.io" || c.Issuer != "milvus-lb test CA" || c.DaysLeft != 89 || c.Ref != "arn:milvus-lb:acm:local:0:certificate/demo" {
		t.Errorf("certificate %+v, want milvus-demo.milvus.io from the test CA, 89 days left", c)
	}
	if len(v.Problems) != 1 || v.Problems[0].Text != "Ingress milvus/x: ignored" {
		t.Errorf("problems %+v", v.Problems)
	}
	if len(v.Ingresses) != 1 || v.Ingresses[0].Address != "10.1.2.3" {
		t.Errorf("ingresses %+v", v.Ingresses)
	}
}

// The page, its files and its data are served with a Content-Security-Policy that
// allows nothing from elsewhere, and the page needs nothing inline that it would block.
func TestLivePageServed(t *testing.T) {
	srv := httptest.NewServer(pageServer(t).Handler())
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return resp, string(b)
	}
	for path, ctype := range map[string]string{"/": "text/html", "/live/live.js": "text/javascript", "/live/live.css": "text/css",
		"/live/icon.svg": "image/svg+xml", "/api/v1/live": "application/json"} {
		resp, _ := get(path)
		if got := resp.Header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy %q", path, got)
		}
		if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", path, got, ctype)
		}
	}
	_, page := get("/")
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(page) || strings.Contains(page, "style=") ||
		regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
		t.Error("the page has inline script, style or event handlers, which its Content-Security-Policy blocks")
	}
	if regexp.MustCompile(`(?:src|href)="(?:https?:)?//`).MatchString(page) {
		t.Error("the page loads something from another origin")
	}
	_, body := get("/api/v1/live")
	var v LiveView
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Generation != 1 || v.Calls.Total.Calls != 6 {
		t.Errorf("/api/v1/live: %v; generation %d, %d calls", err, v.Generation, v.Calls.Total.Calls)
	}
	if _, old := get("/status"); !strings.Contains(old, "Configuration generation") {
		t.Error("/status no longer serves the page without JavaScript")
	}
}
