package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// The rounds of TestChaosRealClients: each restart of a milvus-lite takes seconds (it is
// a Python process that opens its data again), so fewer than test/chaos's 10 with fake
// backends; bench -workloads chaos has the long runs.
const (
	rollingRounds = 2 // every milvus-lite stopped (SIGTERM) and started again, in turn
	kills         = 3 // one milvus-lite SIGKILLed and started again
	lbRestarts    = 6 // milvus-lb restarted in place (SIGHUP)
	loadWriters   = 1 // chaos_load.py's writer threads, each with at most one Insert in flight
)

// chaosAnnotations go on the guide's Ingress: a short ejection and active checks every
// 5 s (the least the ALB allows), so that a restarted milvus-lite takes calls again
// within seconds; a 20 s bound on an old milvus-lb's drain.
const chaosAnnotations = `    milvus-lb.io/outlier-detection: base_ejection_time=1s,max_ejection_time=1s
    alb.ingress.kubernetes.io/healthcheck-interval-seconds: "5"
    alb.ingress.kubernetes.io/healthcheck-timeout-seconds: "2"
    alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=20
`

// TestChaosRealClients runs three of issue 12's scenarios with real parts: pymilvus
// (test/clients/chaos_load.py: Search, Query and Insert on one connection, with its
// own retries off) through milvus-lb over TLS with the guide's server name, in front
// of 3 milvus-lite servers, each a cluster of its own with the same collection. It
// counts per scenario the calls made, those that failed, and those milvus-lb sent to a
// second endpoint (the access log's attempts):
//
//  1. every milvus-lite in turn stopped gracefully (SIGTERM: GOAWAY, calls in flight
//     finish) and started again on its port with its data: 0 failed calls;
//  2. one milvus-lite SIGKILLed and started again: 0 failed reads, failed Inserts at
//     most those in flight on it (one per writer per kill);
//  6. milvus-lb restarted in place (SIGHUP, docs/operations.md): 0 failed calls.
func TestChaosRealClients(t *testing.T) {
	c := startChaos(t)
	defer c.load.close()
	c.scenario(t, "steady", func(t *testing.T) { c.load.calls(t, 100) })
	c.scenario(t, "rolling-restart", c.rollingRestart)
	c.scenario(t, "killed-backend", c.killBackend)
	c.scenario(t, "lb-restart", c.restartBalancer)
	res := c.load.stop(t)
	for _, s := range c.done {
		s.counts = res.Phases[s.name]
		s.report(t)
	}
	if res.Hung != 0 {
		t.Errorf("%d pymilvus calls did not end within a minute of the load's stop", res.Hung)
	}
	for _, s := range c.done {
		c.check(t, s)
	}
}

// chaos is the running setup of TestChaosRealClients.
type chaos struct {
	g       *guide
	lites   []*testenv.MilvusLite
	pidFile string
	access  accessLog
	load    *chaosLoad
	done    []*scenario
	// inflight is the calls milvus-lb had on the killed milvus-lite as it died, summed.
	inflight int64
}

func startChaos(t *testing.T) *chaos {
	g := prepareGuideLites(t, testenv.FreePort(t), 3)
	c := &chaos{g: g, lites: g.lites}
	ports := make([]int, len(c.lites))
	direct := make([]string, len(c.lites))
	for i, m := range c.lites {
		ports[i], direct[i] = m.Port, m.Addr
	}
	writeFile(t, g.milvusFile(), proxiesYAML(ports...))
	writeFile(t, g.ingressFile(), strings.Replace(testenv.GuideIngress(t, g.arn, g.port),
		"  annotations:\n", "  annotations:\n"+chaosAnnotations, 1))
	// The processes of every restart to come, started now: Python's imports take seconds
	// (minutes on a busy machine) and should not make the faults last longer.
	var restarts []*testenv.MilvusLite
	for range rollingRounds {
		restarts = append(restarts, c.lites...)
	}
	for range kills {
		restarts = append(restarts, c.lites[0])
	}
	testenv.PrepareRestarts(t, restarts...)
	c.pidFile = filepath.Join(g.dir, "milvus-lb.pid")
	c.access = accessLog{path: filepath.Join(g.dir, "access.log")}
	// A short handshake timeout: an old process waits that long after the last connection
	// it accepted before it drains.
	g.serve(t, "--pid-file", c.pidFile, "--handshake-timeout", "2s", "--access-log", c.access.path)
	// Runs before serve's own cleanup: after restarts, the process to stop is the last.
	t.Cleanup(func() { g.lb.StopGenerations(t, c.pidFile) })
	c.load = startChaosLoad(t, []string{"--host", g.address, "--port", strconv.Itoa(g.port),
		"--server-name", host, "--ca", g.ca, "--direct", strings.Join(direct, ","),
		"--writers", strconv.Itoa(loadWriters)})
	return c
}

// scenario is one phase of the load: its counts from the client and from the access log.
type scenario struct {
	name     string
	took     time.Duration
	counts   phaseCounts
	balancer accessCounts
}

// scenario runs fault while the load counts its calls in a phase of its own.
func (c *chaos) scenario(t *testing.T, name string, fault func(*testing.T)) {
	t.Helper()
	c.load.phase(t, name)
	from, start := c.access.size(t), time.Now()
	fault(t)
	s := &scenario{name: name, took: time.Since(start)}
	s.balancer = c.access.count(t, from, "")
	c.done = append(c.done, s)
}

func (c *chaos) rollingRestart(t *testing.T) {
	for range rollingRounds {
		for _, m := range c.lites {
			if err := m.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
				t.Errorf("milvus-lite on %s, stopped with SIGTERM: %v", m.Addr, err)
			}
			c.load.calls(t, 20) // the load goes on without it
			c.restart(t, m)
		}
	}
}

func (c *chaos) killBackend(t *testing.T) {
	m := c.lites[0]
	for range kills {
		c.load.calls(t, 50)
		c.inflight += c.endpointInflight(t, m.Addr)
		m.Kill()
		c.load.calls(t, 20)
		c.restart(t, m)
	}
}

func (c *chaos) restartBalancer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pid := testenv.WaitNewPID(ctx, t, c.pidFile, 0)
	for range lbRestarts {
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		next := testenv.WaitNewPID(ctx, t, c.pidFile, pid)
		c.load.calls(t, 50) // through the new process
		t.Logf("milvus-lb restarted in place: pid %d -> %d", pid, next)
		pid = next
	}
}

// restart starts m again and waits until milvus-lb sends it calls: a rolling restart
// stops the next one only when this one serves again.
func (c *chaos) restart(t *testing.T, m *testenv.MilvusLite) {
	t.Helper()
	from, start := c.access.size(t), time.Now()
	m.Restart(t)
	serves := time.Since(start)
	deadline := time.Now().Add(time.Minute)
	for c.access.count(t, from, m.Addr).ok < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("a minute after milvus-lite on %s started again, milvus-lb sends it no calls", m.Addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("milvus-lite on %s restarted: healthy within %v, taking calls from milvus-lb within %v",
		m.Addr, serves.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
}

// endpointInflight is the calls milvus-lb has in flight on addr (its status page).
func (c *chaos) endpointInflight(t *testing.T, addr string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + c.g.lb.AdminAddr + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Backends []struct {
			Endpoints []struct {
				Address  string `json:"address"`
				Inflight int64  `json:"inflight"`
			} `json:"endpoints"`
		} `json:"backends"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("/api/v1/status: %v", err)
	}
	var n int64
	for _, b := range st.Backends {
		for _, e := range b.Endpoints {
			if e.Address == addr {
				n += e.Inflight
			}
		}
	}
	return n
}

// check asserts what issue 12 asks of each scenario.
func (c *chaos) check(t *testing.T, s *scenario) {
	t.Helper()
	n := s.counts
	if n.Search[0] == 0 || n.Query[0] == 0 || n.Insert[0] == 0 {
		t.Errorf("%s: no load: %d searches, %d queries, %d inserts", s.name, n.Search[0], n.Query[0], n.Insert[0])
	}
	if s.name != "killed-backend" {
		if f := n.failed(); f != 0 {
			t.Errorf("%s: %d of %d calls failed (first: %q); want 0", s.name, f, n.calls(), n.Errors)
		}
		return
	}
	if f := n.Search[1] + n.Query[1]; f != 0 {
		t.Errorf("%s: %d reads failed (first: %q); want 0: a read on a dead backend goes to another", s.name, f, n.Errors)
	}
	t.Logf("%s: milvus-lb had %d calls in flight on it as it died, summed over the kills", s.name, c.inflight)
	if most := kills * loadWriters; n.Insert[1] > most {
		t.Errorf("%s: %d inserts failed (first: %q); want at most %d, those in flight on it as it died", s.name, n.Insert[1], n.Errors, most)
	}
}

func (s *scenario) report(t *testing.T) {
	n := s.counts
	t.Logf("%s (%v): %d calls (%d searches, %d queries, %d inserts), %d failed (%d searches, %d queries, %d inserts); "+
		"milvus-lb logged %d calls (%d of other methods), %d failed, %d sent to a second endpoint; first failures: %q",
		s.name, s.took.Round(100*time.Millisecond), n.calls(), n.Search[0], n.Query[0], n.Insert[0],
		n.failed(), n.Search[1], n.Query[1], n.Insert[1], s.balancer.calls, s.balancer.other, s.balancer.failed, s.balancer.retried, n.Errors)
}

// proxiesYAML is the Service milvus/milvus-demo whose proxy pods listen on the given
// ports of 127.0.0.1, one EndpointSlice each, with a named target port.
func proxiesYAML(ports ...int) string {
	var b strings.Builder
	b.WriteString(`apiVersion: v1
kind: Service
metadata:
  namespace: milvus
  name: milvus-demo
spec:
  ports:
    - name: milvus
      port: 19530
      targetPort: milvus
`)
	for i, p := range ports {
		fmt.Fprintf(&b, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  namespace: milvus
  name: milvus-demo-%d
  labels:
    kubernetes.io/service-name: milvus-demo
addressType: IPv4
ports:
  - name: milvus
    port: %d
endpoints:
  - addresses: ["127.0.0.1"]
    conditions:
      ready: true
`, i, p)
	}
	return b.String()
}
