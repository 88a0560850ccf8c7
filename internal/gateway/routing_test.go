package gateway

import (
	"context"
	"strings"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ratelimit"
)

func TestCompileChecksRouteTargets(t *testing.T) {
	m := model(80, "10.0.0.1:1")
	rs := &m.Listeners[0].Routes
	*rs = append(*rs,
		config.Route{Host: "h", Path: "/w", PathType: config.PathPrefix, Forward: []config.WeightedBackend{{Backend: "ns/svc:80", Weight: 1}}},
		config.Route{Host: "h", Path: "/f", PathType: config.PathPrefix, Fixed: &config.FixedResponse{StatusCode: 503}})
	if _, err := Compile(m, balancer.NewRegistry()); err != nil {
		t.Fatalf("weighted and fixed routes: %v", err)
	}
	(*rs)[1].Forward = append((*rs)[1].Forward, config.WeightedBackend{Backend: "ns/gone:80", Weight: 1})
	if _, err := Compile(m, balancer.NewRegistry()); err == nil || !strings.Contains(err.Error(), `forwards to unknown backend "ns/gone:80"`) {
		t.Errorf("a weighted target not in the model: %v", err)
	}
}

// A new generation keeps the buckets of the rate limits it does not change: reloading a
// configuration does not hand every client a fresh burst.
func TestApplyKeepsRateLimitBuckets(t *testing.T) {
	g := New(balancer.NewRegistry(), &fakeListeners{}, nil, nil)
	m := model(80, "10.0.0.1:1")
	m.RateLimits = map[string][]config.RateLimit{"ns/ing": {{Name: "all", Calls: 2, Burst: 1}}}
	if _, err := g.Apply(context.Background(), m, nil); err != nil {
		t.Fatal(err)
	}
	now := ratelimit.Clock()
	set := g.Current().RateLimits["ns/ing"]
	set.Admit(&ratelimit.Call{}, now)
	set.Admit(&ratelimit.Call{}, now)
	if _, err := g.Apply(context.Background(), model(80, "10.0.0.1:1"), nil); err != nil {
		t.Fatal(err)
	}
	if g.Current().RateLimits["ns/ing"] != nil {
		t.Fatal("limits of an Ingress that has none any more are still in force")
	}
	if _, err := g.Apply(context.Background(), m, nil); err != nil {
		t.Fatal(err)
	}
	if g.Current().RateLimits["ns/ing"].Admit(&ratelimit.Call{}, now) != nil {
		t.Error("after the limit left and came back, its bucket is still empty; want a fresh one")
	}
	if _, err := g.Apply(context.Background(), m, nil); err != nil {
		t.Fatal(err)
	}
	if g.Current().RateLimits["ns/ing"].Admit(&ratelimit.Call{}, now) != nil {
		t.Fatal("setup: want one token left")
	}
	if r := g.Current().RateLimits["ns/ing"].Admit(&ratelimit.Call{}, now); r == nil {
		t.Error("an unchanged limit got a fresh bucket from a reload")
	}
}
