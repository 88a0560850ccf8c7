package health_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/health"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// An endpoint ejected by passive outlier detection comes back through the active check:
// not when its ejection time is over while its checks fail, but at the first check that
// passes after it, which logs one line.
func TestEjectedEndpointReturnsAtAPassingCheck(t *testing.T) {
	s := startFake(t, fakemilvus.Options{})
	other := startFake(t, fakemilvus.Options{Name: "other"})
	var logs testenv.LogBuffer
	reg := balancer.NewRegistry()
	c := health.New(reg, slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(c.Close)
	hc := fast(config.CheckMilvus)
	hc.UnhealthyThreshold = 10 // the active check alone does not take it out here
	c.Update(backends(backend("ns/milvus:19530", hc, s.Addr(), other.Addr())))
	waitHealth(t, reg, s.Addr(), true)
	waitHealth(t, reg, other.Addr(), true)
	ep, _ := reg.Get(s.Addr())
	sibling, _ := reg.Get(other.Addr())

	s.SetMilvusError(1, "service not ready")
	policy := balancer.Ejection{Base: 100 * time.Millisecond, Max: time.Second, MaxPercent: 50}
	d := balancer.Eject(ep, []*balancer.Endpoint{ep, sibling}, policy, time.Now())
	if d == 0 {
		t.Fatal("not ejected")
	}
	over := time.Now().Add(d)
	// Well past the ejection time, with checks failing all along: still out.
	waitFor(t, func() bool { return s.Count("CheckHealth") >= 3 && time.Now().After(over.Add(3*interval)) })
	if ep.Available(time.Now().UnixNano()) {
		t.Fatal("an ejected endpoint whose checks fail came back when its time was over")
	}
	s.SetMilvusError(0, "")
	waitFor(t, func() bool { return ep.Available(time.Now().UnixNano()) })
	waitFor(t, func() bool { return strings.Contains(logs.String(), "endpoint returned after ejection") })
	if n := strings.Count(logs.String(), "endpoint returned after ejection"); n != 1 {
		t.Errorf("%d return lines, want 1:\n%s", n, logs.String())
	}
}
