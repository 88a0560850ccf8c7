package balancer

import (
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

func endpoints(n int) []*Endpoint {
	reg := NewRegistry()
	var eps []*Endpoint
	for i := range n {
		ep, _ := reg.Get(string(rune('a' + i)))
		ep.SetHealthy(true)
		eps = append(eps, ep)
	}
	return eps
}

func counts(p Picker, n int) map[string]int {
	c := map[string]int{}
	for range n {
		if ep := p.Pick(time.Now().UnixNano()); ep != nil {
			c[ep.Addr]++
		} else {
			c[""]++
		}
	}
	return c
}

func TestRoundRobinSkipsUnavailable(t *testing.T) {
	eps := endpoints(4)
	eps[1].SetHealthy(false)  // failed its health check
	eps[2].SetDraining(true)  // terminating
	eps[3].Eject(time.Minute) // refused a connection
	p := NewPicker(config.RoundRobin, eps, 0)
	if got := counts(p, 30); got["a"] != 30 {
		t.Errorf("picks %v, want all 30 on the only available endpoint", got)
	}
	eps[1].SetHealthy(true)
	if got := counts(p, 30); got["a"] != 15 || got["b"] != 15 {
		t.Errorf("picks %v, want 15 each", got)
	}
	for _, ep := range eps {
		ep.SetHealthy(false)
	}
	if ep := p.Pick(time.Now().UnixNano()); ep != nil {
		t.Errorf("picked %s with no endpoint available", ep.Addr)
	}
	if ep := NewPicker(config.RoundRobin, nil, 0).Pick(time.Now().UnixNano()); ep != nil {
		t.Error("picked from an empty list")
	}
}

func TestLeastOutstandingPicksIdlest(t *testing.T) {
	eps := endpoints(3)
	p := NewPicker(config.LeastOutstandingRequests, eps, 0)
	busy := []*Endpoint{eps[0], eps[0], eps[1]}
	for _, ep := range busy {
		ep.Start()
	}
	for range 10 {
		if ep := p.Pick(time.Now().UnixNano()); ep != eps[2] {
			t.Fatalf("picked %s with %d in flight, want c with 0", ep.Addr, ep.Inflight())
		}
	}
	for _, ep := range busy {
		ep.Done()
	}
	// Ties are spread, not always the first.
	if got := counts(p, 30); got["a"] != 10 || got["b"] != 10 || got["c"] != 10 {
		t.Errorf("idle picks %v, want 10 each", got)
	}
}

func TestWeightedRandomSpreads(t *testing.T) {
	eps := endpoints(2)
	p := NewPicker(config.WeightedRandom, eps, 0)
	got := counts(p, 4000)
	// Binomial(4000, 1/2): outside [1800, 2200] has probability below 1e-9.
	if got["a"] < 1800 || got["b"] < 1800 {
		t.Errorf("picks %v, want about 2000 each", got)
	}
}

// A newly healthy endpoint ramps up during slow start instead of taking its full share.
func TestSlowStartRamps(t *testing.T) {
	eps := endpoints(2)
	eps[1].SetHealthy(false)
	eps[1].SetHealthy(true) // just became healthy: readySince is now
	eps[0].readySince.Store(time.Now().Add(-time.Hour).UnixNano())
	p := NewPicker(config.RoundRobin, eps, time.Hour)
	got := counts(p, 2000)
	if got["b"] > 200 {
		t.Errorf("warming endpoint got %d of 2000 picks at the start of slow start, want few", got["b"])
	}
	// Alone, a warming endpoint still serves.
	eps[0].SetHealthy(false)
	if got := counts(p, 10); got["b"] != 10 {
		t.Errorf("lone warming endpoint: picks %v", got)
	}
}

func TestRegistryRetain(t *testing.T) {
	reg := NewRegistry()
	a, _ := reg.Get("a")
	b, _ := reg.Get("b")
	b.Start()
	reg.Retain(map[string]bool{})
	if _, created := reg.Get("a"); !created {
		t.Error("idle endpoint that left the configuration was kept")
	}
	if got, created := reg.Get("b"); created || got != b || !b.draining.Load() {
		t.Error("endpoint with a call in flight was dropped or not marked draining")
	}
	b.Done()
	_ = a
}
