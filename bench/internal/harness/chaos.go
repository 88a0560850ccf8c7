package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/loadgen"
)

// Chaos is the workload that runs steady load through milvus-lb while its backends are
// restarted, killed, hung, slowed or not serving (issue 12's scenarios; test/chaos
// asserts the same). It is measured for milvus-lb alone, against 3 fake Milvus backends
// in the bench process, with the load generator's callers retrying nothing of their own.
const Chaos = "chaos"

// ChaosResult is one scenario's counts.
type ChaosResult struct {
	Scenario     string        `json:"scenario"`
	Note         string        `json:"note"`
	Calls        int64         `json:"calls"`
	Writes       int64         `json:"writes"`
	Failed       int64         `json:"failed"`
	FailedReads  int64         `json:"failed_reads"`
	FailedWrites int64         `json:"failed_writes"`
	Retried      int64         `json:"retried"`
	P50          time.Duration `json:"p50_ns"`
	P99          time.Duration `json:"p99_ns"`
}

// chaosBackendDelay is how long every fake backend takes to answer a call.
const chaosBackendDelay = 2 * time.Millisecond

// chaosEnv is milvus-lb (a process) in front of 3 fake backends (in this process).
type chaosEnv struct {
	bs    []*fakemilvus.Server
	addrs []string
	lb    *proc
	addr  string // milvus-lb's TLS address
	admin string
	cert  *certFiles
}

// RunChaos runs every scenario for about d each and returns their counts.
func RunChaos(ctx context.Context, dir, lbBin string, d time.Duration, logf func(string, ...any)) ([]ChaosResult, error) {
	e, err := startChaos(dir, lbBin)
	if err != nil {
		return nil, err
	}
	defer e.close()
	var out []ChaosResult
	for _, sc := range chaosScenarios(e, d) {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		r, err := e.run(sc, d)
		if err != nil {
			return out, fmt.Errorf("%s: %w", sc.name, err)
		}
		logf("chaos %s: %d calls, %d failed (%d reads, %d writes), %d retried, p99 %v",
			r.Scenario, r.Calls, r.Failed, r.FailedReads, r.FailedWrites, r.Retried, r.P99)
		out = append(out, r)
	}
	return out, nil
}

// scenario is a fault applied while the load runs (during), then undone (after).
type scenario struct {
	name, note string
	writeEvery int
	timeout    time.Duration
	during     func(stop <-chan struct{})
	after      func()
}

func chaosScenarios(e *chaosEnv, d time.Duration) []scenario {
	each := func(stop <-chan struct{}, f func()) {
		for {
			select {
			case <-stop:
				return
			default:
				f()
			}
		}
	}
	pause := func(t time.Duration) { time.Sleep(t) }
	return []scenario{
		{name: "steady", note: "no fault: the baseline", writeEvery: 5, timeout: 10 * time.Second,
			during: func(<-chan struct{}) {}, after: func() {}},
		{name: "rolling restart", note: "each backend in turn stopped gracefully (GOAWAY) and started again, 300 ms apart", writeEvery: 5, timeout: 10 * time.Second,
			during: func(stop <-chan struct{}) {
				i := 0
				each(stop, func() {
					e.bs[i].Stop()
					pause(300 * time.Millisecond)
					_ = e.bs[i].Start(e.addrs[i])
					pause(1500 * time.Millisecond)
					i = (i + 1) % len(e.bs)
				})
			}, after: func() {}},
		{name: "killed backend", note: "one backend killed (no GOAWAY) and started again, every 2 s", writeEvery: 5, timeout: 10 * time.Second,
			during: func(stop <-chan struct{}) {
				each(stop, func() {
					e.bs[0].Kill()
					pause(300 * time.Millisecond)
					_ = e.bs[0].Start(e.addrs[0])
					pause(1700 * time.Millisecond)
				})
			}, after: func() {}},
		{name: "black hole", note: "one backend takes calls and never answers; calls have a 1 s deadline", timeout: time.Second,
			during: func(<-chan struct{}) { e.bs[0].SetDelay(time.Hour) }, after: func() { e.bs[0].SetDelay(chaosBackendDelay) }},
		{name: "slow backend", note: "one backend 20× slower (40 ms), least outstanding requests", timeout: 10 * time.Second,
			during: func(<-chan struct{}) { e.bs[0].SetDelay(20 * chaosBackendDelay) }, after: func() { e.bs[0].SetDelay(chaosBackendDelay) }},
		{name: "not ready", note: "one backend answers every call with Milvus's ServiceNotReady status", timeout: 10 * time.Second,
			during: func(<-chan struct{}) { e.bs[0].SetMilvusError(1, "service not ready") }, after: func() { e.bs[0].SetMilvusError(0, "") }},
	}
}

// run runs one scenario under load for d, then lets the backends recover.
func (e *chaosEnv) run(sc scenario, d time.Duration) (ChaosResult, error) {
	retriedBefore, err := e.metric("milvus_lb_retries_total")
	if err != nil {
		return ChaosResult{}, err
	}
	l, err := loadgen.Start(loadgen.Options{Dial: e.dial, Conns: 2, Callers: 8, WriteEvery: sc.writeEvery, Timeout: sc.timeout})
	if err != nil {
		return ChaosResult{}, err
	}
	time.Sleep(d / 10) // warm-up, counted
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); sc.during(stop) }()
	time.Sleep(d)
	close(stop)
	<-done
	c := l.Stop()
	sc.after()
	for i, b := range e.bs {
		_ = b.Start(e.addrs[i]) // a scenario may have left it stopped; an error means it serves
	}
	retried, err := e.metric("milvus_lb_retries_total")
	if err != nil {
		return ChaosResult{}, err
	}
	// Let ejections from this scenario end before the next.
	time.Sleep(2 * time.Second)
	return ChaosResult{Scenario: sc.name, Note: sc.note, Calls: c.Calls(), Failed: c.Failed(), FailedReads: c.FailedReads,
		Writes: c.Writes, FailedWrites: c.FailedWrites, Retried: retried - retriedBefore,
		P50: c.Quantile(0.5), P99: c.Quantile(0.99)}, nil
}

func (e *chaosEnv) dial() (*grpc.ClientConn, error) {
	return grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: e.cert.pool, ServerName: Host})), grpc.WithDisableRetry())
}

// metric sums the samples of a counter on milvus-lb's /metrics.
func (e *chaosEnv) metric(name string) (int64, error) { return adminMetric(e.admin, name) }

// adminMetric sums the samples of a metric on the /metrics of milvus-lb's admin address.
func adminMetric(admin, name string) (int64, error) {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	var sum float64
	for line := range strings.Lines(buf.String()) {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			var v float64
			f := strings.Fields(line)
			_, _ = fmt.Sscan(f[len(f)-1], &v)
			sum += v
		}
	}
	return int64(sum), nil
}

func (e *chaosEnv) close() {
	if e.lb != nil {
		_ = e.lb.stop()
	}
	for _, b := range e.bs {
		b.Kill()
	}
}

func startChaos(dir, lbBin string) (_ *chaosEnv, err error) {
	e := &chaosEnv{}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	dir = filepath.Join(dir, "chaos")
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return nil, err
	}
	if e.cert, err = newCert(dir); err != nil {
		return nil, err
	}
	for i := range 3 {
		b := fakemilvus.New(fakemilvus.Options{Name: fmt.Sprintf("b%d", i), NoRecord: true})
		if err := b.Start("127.0.0.1:0"); err != nil {
			return nil, err
		}
		b.SetDelay(chaosBackendDelay)
		e.bs = append(e.bs, b)
		e.addrs = append(e.addrs, b.Addr())
	}
	if e.addr, err = freeAddr(); err != nil {
		return nil, err
	}
	if e.admin, err = freeAddr(); err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(e.addr)
	file := filepath.Join(dir, "milvus.yaml")
	// Least outstanding requests; no active check (the scenarios decide which backend is
	// up), so an ejected backend returns when its ejection time (10 s, growing) is over.
	err = writeManifests(file, e.cert, port, e.addrs, cacheAnnotation,
		"alb.ingress.kubernetes.io/target-group-attributes: load_balancing.algorithm.type=least_outstanding_requests",
		"milvus-lb.io/healthcheck-type: none",
		"milvus-lb.io/outlier-detection: base_ejection_time=10s")
	if err != nil {
		return nil, err
	}
	if e.lb, err = startLB(lbBin, dir, file, e.admin); err != nil {
		return nil, err
	}
	return e, nil
}

// startLB runs `milvus-lb serve -f file` on loopback, with its state and log in dir and its
// admin address on admin, and waits until it serves.
func startLB(lbBin, dir, file, admin string) (*proc, error) {
	cmd := exec.Command(lbBin, "serve", "-f", file, "--state-dir", filepath.Join(dir, "state"),
		"--admin-addr", admin, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--log-level", "warn")
	p, err := startProc("milvus-lb", filepath.Join(dir, "milvus-lb.log"), cmd)
	if err != nil {
		return nil, err
	}
	if err := waitReady(admin, p); err != nil {
		_ = p.stop()
		return nil, err
	}
	return p, nil
}

// waitReady waits until milvus-lb (p, with admin address admin) serves its metrics and
// its first configuration.
func waitReady(admin string, p *proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := adminMetric(admin, "milvus_lb_retries_total"); err == nil {
			if resp, err := http.Get("http://" + admin + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
		if p.exited() || time.Now().After(deadline) {
			return fmt.Errorf("milvus-lb did not become ready\n%s", p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
