package balancer

import (
	"testing"
	"time"
)

func healthyEndpoints(n int) []*Endpoint {
	eps := make([]*Endpoint, n)
	for i := range eps {
		eps[i] = &Endpoint{Addr: "10.0.0." + string(rune('1'+i)) + ":19530"}
		eps[i].SetHealthy(true)
	}
	return eps
}

var policy = Ejection{Base: 30 * time.Second, Max: 300 * time.Second, MaxPercent: 50}

func TestFailuresInARow(t *testing.T) {
	ep := healthyEndpoints(1)[0]
	ep.Failed()
	ep.Failed()
	ep.Succeeded()
	if n := ep.Failed(); n != 1 {
		t.Fatalf("after a success the run starts again: %d failures in a row, want 1", n)
	}
}

// Never more than the share of a backend's endpoints out at once; one of two or more
// always may be; a lone endpoint never is.
func TestEjectionCap(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		endpoints, percent, want int
	}{
		{1, 50, 0}, {2, 50, 1}, {3, 50, 1}, {4, 50, 2}, {5, 50, 2}, {10, 10, 1}, {3, 100, 3}, {3, 10, 1},
	} {
		eps := healthyEndpoints(tc.endpoints)
		p := policy
		p.MaxPercent = tc.percent
		ejected := 0
		for _, ep := range eps {
			if Eject(ep, eps, p, now) > 0 {
				ejected++
			}
		}
		available := 0
		for _, ep := range eps {
			if ep.Available(now.UnixNano()) {
				available++
			}
		}
		if ejected != tc.want || available != tc.endpoints-tc.want {
			t.Errorf("%d endpoints, max %d%%: %d ejected, %d available; want %d ejected", tc.endpoints, tc.percent, ejected, available, tc.want)
		}
	}
}

// Each ejection in a row lasts one base time more, up to the maximum; time in service
// brings the multiplier back down.
func TestEjectionTimeGrowsAndDecays(t *testing.T) {
	eps := healthyEndpoints(3)
	ep := eps[0]
	now := time.Unix(1000, 0)
	var got []time.Duration
	for range 12 {
		d := Eject(ep, eps, policy, now)
		got = append(got, d)
		now = now.Add(d) // back in service at once, and failing again
	}
	want := []time.Duration{30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("ejection times %v, want %v seconds", got, want)
		}
	}
	// Ten base times in service: the multiplier is back to zero, the next ejection is one
	// base time long.
	now = now.Add(10 * policy.Base)
	if d := Eject(ep, eps, policy, now); d != policy.Base {
		t.Fatalf("after a long time in service the ejection lasts %v, want %v", d, policy.Base)
	}
}

// An endpoint without active checks returns when its time is over; a probed one at its
// first passing check after that, and the pass that brings it back says so once.
func TestReturnFromEjection(t *testing.T) {
	eps := healthyEndpoints(2)
	start := time.Unix(1000, 0)
	d := Eject(eps[0], eps, policy, start)
	if eps[0].Available(start.Add(d-1).UnixNano()) || !eps[0].Available(start.Add(d).UnixNano()) {
		t.Fatal("an endpoint without active checks returns exactly when its ejection time is over")
	}

	ep := eps[1]
	ep.SetProbed(true)
	if ep.Passed(start) {
		t.Fatal("a pass with no ejection returned nothing")
	}
	now := start.Add(time.Hour)
	d = Eject(ep, eps, policy, now)
	if ep.Passed(now.Add(d / 2)) {
		t.Fatal("a pass during the ejection time must not end it")
	}
	after := now.Add(d + time.Second)
	if ep.Available(after.UnixNano()) {
		t.Fatal("a probed endpoint is back before any check passed after its ejection time")
	}
	if !ep.Passed(after) || !ep.Available(after.UnixNano()) {
		t.Fatal("the first pass after the ejection time brings the endpoint back")
	}
	if ep.Passed(after.Add(time.Second)) {
		t.Fatal("only the pass that ended the ejection reports a return")
	}
	// A probe that stops (its backend's check was turned off) leaves time alone to decide.
	d = Eject(ep, eps, policy, after)
	ep.SetProbed(false)
	if !ep.Available(after.Add(d).UnixNano()) {
		t.Fatal("an endpoint no longer probed returns when its time is over")
	}
}

// An ejected endpoint is not ejected again by the calls that were in flight to it, and
// its run of failures starts again after the decision.
func TestEjectResetsTheRun(t *testing.T) {
	eps := healthyEndpoints(4)
	now := time.Unix(1000, 0)
	for range 5 {
		eps[0].Failed()
	}
	d := Eject(eps[0], eps, policy, now)
	if again := Eject(eps[0], eps, policy, now.Add(time.Second)); d == 0 || again != 0 {
		t.Fatalf("first ejection %v, while ejected %v; want 30s then 0", d, again)
	}
	if n := eps[0].Failed(); n != 1 {
		t.Fatalf("after the decision the run is %d, want 1", n)
	}
}
