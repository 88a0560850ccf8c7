package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// The faults of TestChaosRealClients that stop a milvus-lite without ending it (a black
// hole, a slow proxy) and that kill one under a large Insert.

// blackHoleDeadline is the calls' deadline while a milvus-lite is a black hole.
const blackHoleDeadline = 2 * time.Second

// blackHole stops a milvus-lite with SIGSTOP: the kernel still accepts connections and
// takes the bytes of calls, nothing answers them. The calls carry a deadline meanwhile.
func (c *chaos) blackHole(t *testing.T, s *scenario) {
	m := c.lites[1]
	c.load.deadline(t, blackHoleDeadline)
	c.load.calls(t, 20) // every call in flight has the deadline now
	from := c.access.size(t)
	pid := m.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	cont := sync.OnceFunc(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	defer cont()
	first := c.firstFailure(t, from, m.Addr)
	// Long enough to see where the calls go: twice the deadline after the first timeouts,
	// and 100 calls more.
	for time.Since(first) < 2*blackHoleDeadline {
		c.load.calls(t, 10)
	}
	c.load.calls(t, 100)
	resumed := time.Now()
	cont()
	back := c.access.size(t)
	c.takesCalls(t, m, back)
	c.load.deadline(t, 0)
	// Read after the calls it held ended (at their deadline): they are logged by then.
	var took, late int
	for _, l := range c.access.lines(t, from) {
		if l.Endpoint != m.Addr || !l.Time.Before(resumed) {
			continue
		}
		if !l.ok() {
			took++
		}
		if l.Time.After(first.Add(2 * time.Second)) {
			late++
		}
	}
	t.Logf("%s: the stopped milvus-lite took %d calls; the first of them ended %v after the stop; %d calls went to it later than 2 s after that",
		s.name, took, first.Sub(stopped).Round(time.Millisecond), late)
	if late != 0 {
		t.Errorf("%s: %d calls went to the black hole more than 2 s after the first timeouts; want 0", s.name, late)
	}
	// At most 5 to be ejected, plus one per caller on its way.
	if most := 5 + loadReaders + loadWriters; took > most {
		t.Errorf("%s: the black hole took %d calls; want at most %d", s.name, took, most)
	}
	s.expect = func(t *testing.T, n phaseCounts) {
		if n.failed() > took {
			t.Errorf("%s: %d calls failed, the black hole took %d; want only those to fail (first: %q)", s.name, n.failed(), took, n.Errors)
		}
		for _, e := range n.Errors {
			if !strings.Contains(e, "DEADLINE_EXCEEDED") {
				t.Errorf("%s: a call failed with %q; want DEADLINE_EXCEEDED at its deadline", s.name, e)
			}
		}
	}
}

// firstFailure waits for the first call on addr logged failed from offset from on, and
// returns when it ended.
func (c *chaos) firstFailure(t *testing.T, from int64, addr string) time.Time {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for _, l := range c.access.lines(t, from) {
			if l.Endpoint == addr && !l.ok() {
				return l.end()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("a minute after %s stopped answering, no call on it has failed", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// slowCalls is how many calls the slow-backend scenario counts with and without the slow
// one.
const slowCalls = 1000

// slowBackend makes a milvus-lite about 20× slower by stopping it for 95 ms of every
// 100 (a proxy starved of CPU) under least outstanding requests: milvus-lb sends it a
// smaller share of the calls. The p99 with and without it is a benchmark figure
// (docs/benchmarks.md), logged here.
func (c *chaos) slowBackend(t *testing.T, s *scenario) {
	m := c.lites[2]
	c.setAlgorithm(t, config.LeastOutstandingRequests)
	from := c.access.size(t)
	c.load.calls(t, slowCalls)
	even := summarize(c.access.lines(t, from), m.Addr)
	stop := dutyCycle(m.Pid(), 5*time.Millisecond, 100*time.Millisecond)
	from = c.access.size(t)
	c.load.calls(t, slowCalls)
	slow := summarize(c.access.lines(t, from), m.Addr)
	stop()
	c.setAlgorithm(t, config.RoundRobin)
	t.Logf("%s: all fast: its share %.1f %% of %d calls, its mean %.1f ms, the others' %.1f ms, p99 %.1f ms",
		s.name, 100*even.share, even.calls, even.mean, even.othersMean, even.p99)
	t.Logf("%s: slowed: its share %.1f %% of %d calls, its mean %.1f ms (%.0f× the others' %.1f ms), p99 %.1f ms (%.2f× the p99 without it)",
		s.name, 100*slow.share, slow.calls, slow.mean, slow.mean/slow.othersMean, slow.othersMean, slow.p99, slow.p99/even.p99)
	if slow.share > 1.0/5 {
		t.Errorf("%s: the slow milvus-lite took %.1f %% of the calls (%.1f %% before it was slowed); want at most 20 %%",
			s.name, 100*slow.share, 100*even.share)
	}
}

// callStats are a stretch of the access log seen from one endpoint.
type callStats struct {
	calls            int
	share            float64 // of the calls, those on the endpoint
	mean, othersMean float64 // ms, on the endpoint and on the others
	p99              float64 // ms, every call
}

func summarize(ls []accessLine, addr string) callStats {
	var st callStats
	var on, others []float64
	for _, l := range ls {
		if l.Endpoint == addr {
			on = append(on, l.DurationMS)
		} else {
			others = append(others, l.DurationMS)
		}
	}
	all := append(slices.Clone(on), others...)
	st.calls = len(all)
	if st.calls == 0 {
		return st
	}
	slices.Sort(all)
	st.share = float64(len(on)) / float64(st.calls)
	st.p99 = all[(len(all)*99)/100]
	st.mean, st.othersMean = mean(on), mean(others)
	return st
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// dutyCycle lets process pid run for run of every period and keeps it stopped for the
// rest, until stop is called; then it runs again.
func dutyCycle(pid int, run, period time.Duration) (stop func()) {
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		defer syscall.Kill(pid, syscall.SIGCONT)
		for {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			select {
			case <-done:
				return
			case <-time.After(run):
			}
			_ = syscall.Kill(pid, syscall.SIGSTOP)
			select {
			case <-done:
				return
			case <-time.After(period - run):
			}
		}
	}()
	return sync.OnceFunc(func() { close(done); <-ended })
}

// setAlgorithm edits the Ingress file to balance by algorithm and waits until milvus-lb
// has reloaded it.
func (c *chaos) setAlgorithm(t *testing.T, algorithm config.Algorithm) {
	t.Helper()
	next := c.g.ingressFile() + ".next"
	writeFile(t, next, c.chaosIngress(t, string(algorithm)))
	if err := os.Rename(next, c.g.ingressFile()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		st := c.status(t)
		if len(st.Backends) > 0 && st.Backends[0].Algorithm == string(algorithm) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a minute after the Ingress was edited, milvus-lb balances by %+v, want %s", st.Backends, algorithm)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killInsert kills a milvus-lite while it applies a 16 MiB Insert sent through
// milvus-lb: the Insert fails, is sent once, and no other server holds its rows.
func (c *chaos) killInsert(t *testing.T, s *scenario) {
	c.load.calls(t, 20)
	c.load.pause(t) // the Insert alone: the server that spends CPU is the one applying it
	from := c.access.size(t)
	c.load.ask(t, "big-insert", "big-insert", 2*time.Minute)
	m := c.applying(t, 300*time.Millisecond)
	m.Kill()
	res := c.load.ask(t, "big-result", "big-result", 3*time.Minute)
	c.load.resume(t)
	t.Logf("%s: the 16 MiB Insert on %s, killed while it applied it: %s", s.name, m.Addr, res)
	if !strings.HasPrefix(res, "failed") {
		t.Errorf("%s: the Insert on the killed milvus-lite: %q; want it failed", s.name, res)
	}
	for _, o := range c.lites {
		if o == m {
			continue
		}
		if n := c.load.ask(t, "big-rows "+o.Addr, "big-rows", time.Minute); n != "0" {
			t.Errorf("%s: milvus-lite on %s holds %s rows of the Insert sent to the killed %s; want 0: a write that went out is never sent again",
				s.name, o.Addr, n, m.Addr)
		}
	}
	l := c.bigInsertLine(t, from)
	t.Logf("%s: milvus-lb logged the Insert: endpoint %s, attempts %d, %d request bytes, %s", s.name, l.Endpoint, l.Attempts, l.RequestBytes, l.GRPCStatus)
	if l.Attempts != 1 || l.Endpoint != m.Addr || l.ok() {
		t.Errorf("%s: the access log has the Insert failed=%v on %s after %d attempts; want failed on %s after 1",
			s.name, !l.ok(), l.Endpoint, l.Attempts, m.Addr)
	}
	c.restart(t, m)
	c.load.ask(t, "big-drop", "big-dropped", 2*time.Minute)
}

// applying waits until a milvus-lite with a call of milvus-lb in flight has used d of
// CPU time more than when it began: with no other call, the one applying the Insert
// (whose bytes went out). pymilvus may call DescribeCollection before the Insert, which
// may go to another server and costs it little CPU.
func (c *chaos) applying(t *testing.T, d time.Duration) *testenv.MilvusLite {
	t.Helper()
	before := map[*testenv.MilvusLite]time.Duration{}
	for _, m := range c.lites {
		before[m] = cpuTime(t, m.Pid())
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for _, m := range c.lites {
			if cpuTime(t, m.Pid())-before[m] >= d && c.endpointInflight(t, m.Addr) > 0 {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("in two minutes, no milvus-lite has used %v of CPU with the 16 MiB Insert in flight on it", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cpuTime is the user and system CPU time of process pid (/proc/pid/stat, in clock ticks
// of 10 ms).
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// bigInsertLine is the access log's line of the large Insert, logged from offset from on.
func (c *chaos) bigInsertLine(t *testing.T, from int64) accessLine {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, l := range c.access.lines(t, from) {
			if l.Method == "Insert" && l.RequestBytes > 1<<20 {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the access log has no Insert of more than 1 MiB")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lbStatus is what the tests read of milvus-lb's status page.
type lbStatus struct {
	Backends []struct {
		Algorithm string `json:"algorithm"`
		Endpoints []struct {
			Address  string `json:"address"`
			Inflight int64  `json:"inflight"`
		} `json:"endpoints"`
	} `json:"backends"`
}

func (c *chaos) status(t *testing.T) lbStatus {
	t.Helper()
	resp, err := http.Get("http://" + c.g.lb.AdminAddr + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st lbStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("/api/v1/status: %v", err)
	}
	return st
}
