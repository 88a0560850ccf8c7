package dataplane_test

import (
	"context"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

// blueGreen reshapes the demo model into two clusters behind one weighted route, as the
// ALB's forward action with two target groups makes it: Service milvus-blue on the first
// backends, milvus-green on the rest.
func (l *lb) blueGreen(blue, green []*fakemilvus.Server, wBlue, wGreen int) {
	cur := *l.Plane.Gateway.Current().Model
	l.model = &cur
	l.model.Backends = maps.Clone(cur.Backends)
	demo := l.model.Backends[lbtest.BackendKey]
	delete(l.model.Backends, lbtest.BackendKey)
	for key, bs := range map[string][]*fakemilvus.Server{"milvus/milvus-blue:19530": blue, "milvus/milvus-green:19530": green} {
		be := *demo
		be.Key, be.Service, be.Endpoints = key, key[:len(key)-len(":19530")], nil
		for _, b := range bs {
			be.Endpoints = append(be.Endpoints, config.Endpoint{Address: b.Addr(), Ready: true})
		}
		l.model.Backends[key] = &be
	}
	l.setWeights(wBlue, wGreen)
}

// setWeights applies the model with new weights, as editing the annotation does.
func (l *lb) setWeights(wBlue, wGreen int) {
	routes := []config.Route{{Host: host, Path: "/", PathType: config.PathPrefix, Ingress: "milvus/milvus-demo", Rule: "blue-green",
		Forward: []config.WeightedBackend{{Backend: "milvus/milvus-blue:19530", Weight: wBlue}, {Backend: "milvus/milvus-green:19530", Weight: wGreen}}}}
	m := *l.model
	m.Listeners = append([]config.Listener(nil), m.Listeners...)
	for i := range m.Listeners {
		m.Listeners[i].Routes = routes
	}
	l.model = &m
	l.apply()
}

func total(bs []*fakemilvus.Server) (n int64) {
	for _, b := range bs {
		n += b.Count(versionMethod)
	}
	return n
}

// 2,000 calls on one connection split by the weights of a forward action (within 5 %; the
// order is interleaved, so in fact exactly), green's two endpoints sharing its part.
func TestWeightedForwardSplit(t *testing.T) {
	bs := startBackends(t, 3, fakemilvus.Options{})
	blue, green := bs[:1], bs[1:]
	l := newLB(t, bs, nil)
	l.blueGreen(blue, green, 80, 20)
	c, _ := l.dial()
	ctx := ctxTimeout(t, 30*time.Second)
	for range 2000 {
		if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if b, g := total(blue), total(green); math.Abs(float64(g)-400)/400 > 0.05 || b+g != 2000 {
		t.Errorf("blue %d, green %d of 2000 calls; want 1600/400 within 5 %%", b, g)
	}
	if a, b := green[0].Count(versionMethod), green[1].Count(versionMethod); a+b != 400 || a < 150 || b < 150 {
		t.Errorf("green's endpoints got %d and %d calls; want its 400 shared", a, b)
	}
}

// Moving all traffic from blue to green in steps, by editing the weights, while clients
// keep calling: no call fails, and at the end green takes every call.
func TestWeightChangeUnderLoadFailsNoCall(t *testing.T) {
	bs := startBackends(t, 4, fakemilvus.Options{})
	blue, green := bs[:2], bs[2:]
	l := newLB(t, bs, nil)
	l.blueGreen(blue, green, 100, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var calls, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		c, _ := l.dial()
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				calls.Add(1)
				if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
					failed.Add(1)
					t.Errorf("call failed during the weight change: %v", err)
				}
			}
		})
	}
	waitCalls := func(n int64) {
		for target := calls.Load() + n; calls.Load() < target && ctx.Err() == nil; {
			time.Sleep(time.Millisecond)
		}
	}
	for _, w := range [][2]int{{90, 10}, {50, 50}, {10, 90}, {0, 100}} {
		waitCalls(300)
		l.setWeights(w[0], w[1])
	}
	waitCalls(300)
	blueBefore := total(blue)
	waitCalls(500)
	close(stop)
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("the calls did not finish in time")
	}
	if n := total(blue) - blueBefore; n != 0 {
		t.Errorf("blue got %d calls after its weight went to 0", n)
	}
	if failed.Load() != 0 || total(green) == 0 {
		t.Errorf("%d of %d calls failed; green got %d", failed.Load(), calls.Load(), total(green))
	}
}
