package health_test

import (
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/health"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
)

const interval = 50 * time.Millisecond

// fast is a check that settles within a few hundred milliseconds.
func fast(kind config.HealthCheckKind) config.HealthCheck {
	return config.HealthCheck{
		Kind:               kind,
		Interval:           config.Duration(interval),
		Timeout:            config.Duration(time.Second),
		HealthyThreshold:   2,
		UnhealthyThreshold: 2,
	}
}

func backend(key string, hc config.HealthCheck, addrs ...string) *config.Backend {
	b := &config.Backend{Key: key, Protocol: config.BackendGRPC, HealthCheck: hc}
	for _, a := range addrs {
		b.Endpoints = append(b.Endpoints, config.Endpoint{Address: a, Ready: true})
	}
	return b
}

func backends(bs ...*config.Backend) map[string]*config.Backend {
	m := make(map[string]*config.Backend)
	for _, b := range bs {
		m[b.Key] = b
	}
	return m
}

func startFake(t *testing.T, opts fakemilvus.Options) *fakemilvus.Server {
	t.Helper()
	s := fakemilvus.New(opts)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func newChecker(t *testing.T) (*health.Checker, *balancer.Registry) {
	t.Helper()
	reg := balancer.NewRegistry()
	c := health.New(reg, slog.New(slog.DiscardHandler))
	t.Cleanup(c.Close)
	return c, reg
}

// waitHealth waits until addr's verdict is want; a couple of thresholds' worth of
// intervals is plenty, the rest is slack for a loaded CI machine.
func waitHealth(t *testing.T, reg *balancer.Registry, addr string, want bool) {
	t.Helper()
	ep, _ := reg.Get(addr)
	deadline := time.Now().Add(5 * time.Second)
	for ep.Healthy() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s healthy = %v after 5s, want %v", addr, !want, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKinds makes each kind of check pass, fail and pass again against a fake Milvus.
func TestKinds(t *testing.T) {
	var killedAddr string
	for _, tc := range []struct {
		name       string
		opts       fakemilvus.Options
		hc         func(s *fakemilvus.Server) config.HealthCheck
		fail, heal func(s *fakemilvus.Server)
	}{{
		name: "milvus",
		hc:   func(*fakemilvus.Server) config.HealthCheck { return fast(config.CheckMilvus) },
		fail: func(s *fakemilvus.Server) { s.SetHealthy(false) },
		heal: func(s *fakemilvus.Server) { s.SetHealthy(true) },
	}, {
		name: "milvus error in body",
		hc:   func(*fakemilvus.Server) config.HealthCheck { return fast(config.CheckMilvus) },
		fail: func(s *fakemilvus.Server) { s.SetMilvusError(1, "not ready") },
		heal: func(s *fakemilvus.Server) { s.SetMilvusError(0, "") },
	}, {
		name: "milvus not ready yet",
		hc:   func(*fakemilvus.Server) config.HealthCheck { return fast(config.CheckMilvus) },
		fail: func(s *fakemilvus.Server) { s.SetFailure(codes.Unavailable, "not ready yet") },
		heal: func(s *fakemilvus.Server) { s.SetFailure(codes.OK, "") },
	}, {
		name: "grpc-health",
		hc:   func(*fakemilvus.Server) config.HealthCheck { return fast(config.CheckGRPCHealth) },
		fail: func(s *fakemilvus.Server) { s.SetServing(healthpb.HealthCheckResponse_NOT_SERVING) },
		heal: func(s *fakemilvus.Server) { s.SetServing(healthpb.HealthCheckResponse_SERVING) },
	}, {
		// The ALB's default: UNIMPLEMENTED from /AWS.ALB/healthcheck passes. Only a
		// backend that does not answer at all fails it.
		name: "grpc ALB default",
		hc:   func(*fakemilvus.Server) config.HealthCheck { return fast(config.CheckGRPC) },
		fail: func(s *fakemilvus.Server) { killedAddr = s.Addr(); s.Kill() },
		heal: func(s *fakemilvus.Server) {
			if err := s.Start(killedAddr); err != nil {
				panic(err)
			}
		},
	}, {
		name: "grpc path and codes",
		hc: func(*fakemilvus.Server) config.HealthCheck {
			hc := fast(config.CheckGRPC)
			hc.Path = "/milvus.proto.milvus.MilvusService/GetVersion"
			hc.SuccessCodes = "0"
			return hc
		},
		fail: func(s *fakemilvus.Server) { s.SetFailure(codes.Unavailable, "not ready yet") },
		heal: func(s *fakemilvus.Server) { s.SetFailure(codes.OK, "") },
	}, {
		name: "http healthz port",
		opts: fakemilvus.Options{HealthzAddr: "127.0.0.1:0"},
		hc: func(s *fakemilvus.Server) config.HealthCheck {
			_, port, _ := net.SplitHostPort(s.HealthzAddr())
			hc := fast(config.CheckHTTP)
			hc.Path, hc.Port = "/healthz", port
			return hc
		},
		fail: func(s *fakemilvus.Server) { s.SetHealthy(false) },
		heal: func(s *fakemilvus.Server) { s.SetHealthy(true) },
	}, {
		name: "http traffic port",
		opts: fakemilvus.Options{REST: true},
		hc: func(*fakemilvus.Server) config.HealthCheck {
			hc := fast(config.CheckHTTP)
			hc.Path, hc.SuccessCodes = "/v2/vectordb/collections/list", "405" // GET is not allowed there
			return hc
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startFake(t, tc.opts)
			c, reg := newChecker(t)
			addr := s.Addr()
			c.Update(backends(backend("ns/milvus:19530", tc.hc(s), addr)))
			waitHealth(t, reg, addr, true)
			if tc.fail == nil {
				return
			}
			tc.fail(s)
			waitHealth(t, reg, addr, false)
			st := c.Status()
			if len(st) != 1 || st[0].Healthy || st[0].Reason == "" || st[0].Backend != "ns/milvus:19530" {
				t.Errorf("Status = %+v, want one unhealthy probe with a reason", st)
			}
			tc.heal(s)
			waitHealth(t, reg, addr, true)
		})
	}
}

// TestALBDefaultPassesBrokenMilvus shows why the ALB's default check is not enough, and
// so why milvus is the default kind here.
func TestALBDefaultPassesBrokenMilvus(t *testing.T) {
	s := startFake(t, fakemilvus.Options{})
	s.SetHealthy(false)
	s.SetFailure(codes.Unavailable, "not ready yet")
	c, reg := newChecker(t)
	c.Update(backends(backend("ns/milvus:19530", fast(config.CheckGRPC), s.Addr())))
	waitHealth(t, reg, s.Addr(), true)
}

func TestNoneIsHealthyAtOnce(t *testing.T) {
	c, reg := newChecker(t)
	// Nothing listens there: a none check does not care.
	c.Update(backends(backend("ns/svc:80", config.HealthCheck{Kind: config.CheckNone}, "127.0.0.1:1")))
	if ep, _ := reg.Get("127.0.0.1:1"); !ep.Healthy() {
		t.Errorf("endpoint with check none not healthy after Update")
	}
}

func TestFirstResultDecides(t *testing.T) {
	s := startFake(t, fakemilvus.Options{})
	c, reg := newChecker(t)
	hc := fast(config.CheckMilvus)
	hc.Interval = config.Duration(time.Hour) // only the first check can run
	hc.HealthyThreshold = 10
	c.Update(backends(backend("ns/milvus:19530", hc, s.Addr())))
	waitHealth(t, reg, s.Addr(), true)
}

func TestHealthyThresholdCountsChecks(t *testing.T) {
	s := startFake(t, fakemilvus.Options{})
	c, reg := newChecker(t)
	hc := fast(config.CheckMilvus)
	hc.HealthyThreshold = 4
	hc.UnhealthyThreshold = 1
	c.Update(backends(backend("ns/milvus:19530", hc, s.Addr())))
	waitHealth(t, reg, s.Addr(), true)
	s.SetHealthy(false)
	waitHealth(t, reg, s.Addr(), false)
	before := s.Count("CheckHealth")
	s.SetHealthy(true)
	waitHealth(t, reg, s.Addr(), true)
	// One check may have started before SetHealthy and still read false.
	if n := s.Count("CheckHealth") - before; n < int64(hc.HealthyThreshold-1) {
		t.Errorf("healthy again after %d checks, want at least %d", n, hc.HealthyThreshold-1)
	}
}

// An endpoint that has never passed is starting (Milvus answers "not ready yet" for a while
// after it listens): it is re-probed every second and its first pass counts at once, so it
// takes traffic without waiting HealthyThreshold × Interval.
func TestStartingEndpointJoinsQuickly(t *testing.T) {
	s := startFake(t, fakemilvus.Options{})
	s.SetHealthy(false)
	c, reg := newChecker(t)
	hc := fast(config.CheckMilvus)
	hc.Interval = config.Duration(time.Hour)
	hc.HealthyThreshold = 10
	c.Update(backends(backend("ns/milvus:19530", hc, s.Addr())))
	waitFor(t, func() bool { return s.Count("CheckHealth") >= 1 })
	if ep, _ := reg.Get(s.Addr()); ep.Healthy() {
		t.Fatal("healthy while the backend says it is not")
	}
	s.SetHealthy(true)
	waitHealth(t, reg, s.Addr(), true)
}

func TestUpdateAddsRemovesAndRestarts(t *testing.T) {
	s1 := startFake(t, fakemilvus.Options{Name: "s1"})
	s2 := startFake(t, fakemilvus.Options{Name: "s2"})
	s3 := startFake(t, fakemilvus.Options{Name: "s3"})
	c, reg := newChecker(t)

	b := backend("ns/milvus:19530", fast(config.CheckMilvus), s1.Addr(), s2.Addr())
	b.Endpoints = append(b.Endpoints,
		config.Endpoint{Address: s3.Addr(), Ready: false},
		config.Endpoint{Address: "127.0.0.1:2", Ready: true, Terminating: true},
	)
	c.Update(backends(b))
	waitHealth(t, reg, s1.Addr(), true)
	waitHealth(t, reg, s2.Addr(), true)
	if st := c.Status(); len(st) != 2 {
		t.Errorf("probes = %+v, want s1 and s2 only (not the unready or terminating ones)", st)
	}
	if s3.Count("CheckHealth") != 0 {
		t.Errorf("unready endpoint was probed")
	}

	// s2 leaves: its verdict stands while the snapshot that lists it may still be in
	// force (until retire), then it is cleared and probes stop.
	retire := c.Update(backends(backend("ns/milvus:19530", fast(config.CheckMilvus), s1.Addr())))
	if ep, _ := reg.Get(s2.Addr()); !ep.Healthy() {
		t.Errorf("removed endpoint marked unhealthy before retire: calls still routed by the old snapshot would find no endpoint")
	}
	retire()
	if ep, _ := reg.Get(s2.Addr()); ep.Healthy() {
		t.Errorf("removed endpoint still healthy after retire")
	}
	n := s2.Count("CheckHealth")
	time.Sleep(5 * interval)
	if m := s2.Count("CheckHealth"); m > n+1 {
		t.Errorf("removed endpoint still probed: %d checks after removal", m-n)
	}
	if st := c.Status(); len(st) != 1 || st[0].Address != s1.Addr() {
		t.Errorf("probes = %+v, want s1 only", st)
	}

	// A changed check restarts the probe with the new kind.
	s1.SetHealthy(false)
	waitHealth(t, reg, s1.Addr(), false)
	c.Update(backends(backend("ns/milvus:19530", fast(config.CheckGRPCHealth), s1.Addr(), s2.Addr())))
	waitHealth(t, reg, s1.Addr(), true) // grpc.health.v1 still says SERVING
	waitHealth(t, reg, s2.Addr(), true)
}

func TestSharedAddressFirstBackendWins(t *testing.T) {
	s := startFake(t, fakemilvus.Options{})
	s.SetHealthy(false)
	c, reg := newChecker(t)
	c.Update(backends(
		backend("b/milvus:19530", fast(config.CheckMilvus), s.Addr()),
		backend("a/milvus:19530", fast(config.CheckGRPCHealth), s.Addr()),
	))
	waitHealth(t, reg, s.Addr(), true)
	if st := c.Status(); len(st) != 1 || st[0].Backend != "a/milvus:19530" || st[0].Kind != config.CheckGRPCHealth {
		t.Errorf("Status = %+v, want one probe from a/milvus:19530", st)
	}
}

func TestKilledBackendTurnsUnhealthyAndBack(t *testing.T) {
	s := startFake(t, fakemilvus.Options{})
	c, reg := newChecker(t)
	c.Update(backends(backend("ns/milvus:19530", fast(config.CheckMilvus), s.Addr())))
	addr := s.Addr()
	waitHealth(t, reg, addr, true)
	s.Kill()
	waitHealth(t, reg, addr, false)
	if st := c.Status(); len(st) != 1 || !strings.Contains(st[0].Reason, "Unavailable") {
		t.Errorf("Status = %+v, want Unavailable as the reason", st)
	}
	if err := s.Start(addr); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, reg, addr, true)
}

func TestTLSBackendNotVerified(t *testing.T) {
	cfg, _, err := fakemilvus.SelfSigned("backend.invalid")
	if err != nil {
		t.Fatal(err)
	}
	s := startFake(t, fakemilvus.Options{TLS: cfg, HealthzAddr: "127.0.0.1:0"})
	c, reg := newChecker(t)

	b := backend("ns/milvus:19530", fast(config.CheckMilvus), s.Addr())
	b.TLS = true
	c.Update(backends(b))
	waitHealth(t, reg, s.Addr(), true)

	// Plaintext to a TLS port fails.
	c.Update(backends(backend("ns/milvus:19530", fast(config.CheckMilvus), s.Addr())))
	waitHealth(t, reg, s.Addr(), false)

	// HTTPS check on another port.
	_, port, _ := net.SplitHostPort(s.HealthzAddr())
	hc := fast(config.CheckHTTP)
	hc.Path, hc.Port, hc.TLS = "/healthz", port, true
	c.Update(backends(backend("ns/milvus:19530", hc, s.Addr())))
	waitHealth(t, reg, s.Addr(), true)
}

func TestTimeout(t *testing.T) {
	// Accepts connections and never answers.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c, reg := newChecker(t)
	hc := fast(config.CheckHTTP)
	hc.Timeout = config.Duration(100 * time.Millisecond)
	c.Update(backends(backend("ns/svc:80", hc, lis.Addr().String())))
	waitFor(t, func() bool { st := c.Status(); return len(st) == 1 && st[0].Checked })
	st := c.Status()
	if ep, _ := reg.Get(lis.Addr().String()); ep.Healthy() || !strings.Contains(st[0].Reason, "deadline exceeded") {
		t.Errorf("hanging endpoint: healthy %v, status %+v", ep.Healthy(), st[0])
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	s := startFake(t, fakemilvus.Options{HealthzAddr: "127.0.0.1:0"})
	_, port, _ := net.SplitHostPort(s.HealthzAddr())
	httpHC := fast(config.CheckHTTP)
	httpHC.Path, httpHC.Port = "/healthz", port

	before := runtime.NumGoroutine()
	reg := balancer.NewRegistry()
	c := health.New(reg, nil)
	c.Update(backends(
		backend("a/milvus:19530", fast(config.CheckMilvus), s.Addr()),
		backend("b/milvus:9091", httpHC, "127.0.0.2:1"), // probes 127.0.0.2:<port>
		backend("c/down:1", fast(config.CheckGRPC), "127.0.0.1:1"),
	))
	waitHealth(t, reg, s.Addr(), true)
	waitFor(t, func() bool {
		st := c.Status()
		return len(st) == 3 && st[0].Checked && st[1].Checked && st[2].Checked
	})
	c.Close()
	c.Update(backends(backend("a/milvus:19530", fast(config.CheckMilvus), s.Addr()))) // no-op after Close
	if len(c.Status()) != 0 {
		t.Errorf("probes after Close: %+v", c.Status())
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 5s (goroutines: %d)", runtime.NumGoroutine())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
