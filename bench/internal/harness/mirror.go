package harness

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/loadgen"
)

// Mirror is the workload that measures what milvus-lb.io/mirror costs the clients: their
// latency through milvus-lb with no mirror, and with every read copied to a mirror that
// is healthy, slow, or down (issue 14: "a slow or failing mirror never slows or fails a
// client call"). milvus-lb alone, in front of a primary and a mirror fake Milvus in the
// bench process; the scenarios are interleaved in every round, so that each is compared
// with "no mirror" measured moments before or after it.
const Mirror = "mirror"

// MirrorResult is one scenario over every round.
type MirrorResult struct {
	Scenario string `json:"scenario"`
	Note     string `json:"note"`
	Calls    int64  `json:"calls"`
	Failed   int64  `json:"failed"`
	// Median over the rounds of the clients' p50 and p99, and of their ratio to the
	// "no mirror" scenario's in the same round.
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	P50Ratio float64       `json:"p50_ratio"`
	P99Ratio float64       `json:"p99_ratio"`
	// Copies sent (whatever came of them: a code, a timeout, a transport error), and
	// copies not sent, from milvus-lb's milvus_lb_mirror_requests_total and
	// milvus_lb_mirror_dropped_total.
	Copies  int64 `json:"copies"`
	Dropped int64 `json:"dropped"`
	// CallsPerSec is the calls the clients made a second, median over the rounds.
	CallsPerSec float64 `json:"calls_per_sec"`
}

// Timings of the mirror workload.
const (
	mirrorPrimaryDelay = 2 * time.Millisecond   // the primary's answer
	mirrorSlowDelay    = 200 * time.Millisecond // the slow mirror's
	mirrorWarmUp       = 500 * time.Millisecond // load before each measured window, not counted
)

// mirrorScenario sets the mirror up (annotated: copies go to it) and puts it back after.
type mirrorScenario struct {
	name, note string
	annotated  bool
	before     func(m *fakemilvus.Server)
	after      func(m *fakemilvus.Server, addr string)
}

func mirrorScenarios() []mirrorScenario {
	nothing := func(*fakemilvus.Server) {}
	restore := func(*fakemilvus.Server, string) {}
	return []mirrorScenario{
		{name: "no mirror", note: "the annotation absent: the baseline", before: nothing, after: restore},
		{name: "healthy mirror", note: "every read copied to a mirror answering in 2 ms", annotated: true,
			before: nothing, after: restore},
		{name: "slow mirror", note: "the mirror answers in 200 ms", annotated: true,
			before: func(m *fakemilvus.Server) { m.SetDelay(mirrorSlowDelay) },
			after:  func(m *fakemilvus.Server, _ string) { m.SetDelay(mirrorPrimaryDelay) }},
		{name: "mirror down", note: "the mirror's process is gone (connections refused)", annotated: true,
			before: func(m *fakemilvus.Server) { m.Kill() },
			after:  func(m *fakemilvus.Server, addr string) { _ = m.Start(addr) }},
	}
}

// mirrorEnv is milvus-lb (a process) in front of a primary and a mirror (in this process).
type mirrorEnv struct {
	primary, mirror *fakemilvus.Server
	mirrorAddr      string
	lb              *proc
	addr, admin     string
	port            string
	file            string
	cert            *certFiles
	// configured and mirrored are what the manifests in file say.
	configured, mirrored bool
}

// RunMirror runs rounds of every scenario, each measured for d, and returns them.
func RunMirror(ctx context.Context, dir, lbBin string, d time.Duration, rounds int, logf func(string, ...any)) ([]MirrorResult, error) {
	e, err := startMirror(dir, lbBin)
	if err != nil {
		return nil, err
	}
	defer e.close()
	scs := mirrorScenarios()
	per := make([][]loadgen.Counts, len(scs)) // by scenario, by round
	copies, dropped := make([]int64, len(scs)), make([]int64, len(scs))
	for r := range rounds {
		for k := range scs {
			i := (k + r) % len(scs) // each round starts one scenario later
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c, cp, dr, err := e.run(scs[i], d)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", scs[i].name, err)
			}
			logf("mirror round %d %s: %d calls, %d failed, p50 %v, p99 %v, %d copies sent, %d dropped",
				r+1, scs[i].name, c.Calls(), c.Failed(), c.Quantile(0.5), c.Quantile(0.99), cp, dr)
			per[i] = append(per[i], c)
			copies[i] += cp
			dropped[i] += dr
		}
	}
	return summarizeMirror(scs, per, copies, dropped, d), nil
}

func summarizeMirror(scs []mirrorScenario, per [][]loadgen.Counts, copies, dropped []int64, d time.Duration) []MirrorResult {
	var out []MirrorResult
	for i, sc := range scs {
		res := MirrorResult{Scenario: sc.name, Note: sc.note, Copies: copies[i], Dropped: dropped[i]}
		var p50, p99, r50, r99, rate []float64
		for r, c := range per[i] {
			res.Calls += c.Calls()
			res.Failed += c.Failed()
			p50 = append(p50, float64(c.Quantile(0.5)))
			p99 = append(p99, float64(c.Quantile(0.99)))
			base := per[0][r]
			r50 = append(r50, float64(c.Quantile(0.5))/float64(base.Quantile(0.5)))
			r99 = append(r99, float64(c.Quantile(0.99))/float64(base.Quantile(0.99)))
			rate = append(rate, float64(c.Calls())/d.Seconds())
		}
		res.P50, res.P99 = time.Duration(median(p50)), time.Duration(median(p99))
		res.P50Ratio, res.P99Ratio, res.CallsPerSec = median(r50), median(r99), median(rate)
		out = append(out, res)
	}
	return out
}

// run applies one scenario, loads milvus-lb for a warm-up and then for d, and puts the
// mirror back. It returns the measured load and the mirror's counts over it.
func (e *mirrorEnv) run(sc mirrorScenario, d time.Duration) (loadgen.Counts, int64, int64, error) {
	if err := e.configure(sc.annotated); err != nil {
		return loadgen.Counts{}, 0, 0, err
	}
	sc.before(e.mirror)
	defer sc.after(e.mirror, e.mirrorAddr)
	opts := loadgen.Options{Dial: e.dial, Conns: 2, Callers: 4, Timeout: 10 * time.Second}
	warm, err := loadgen.Start(opts)
	if err != nil {
		return loadgen.Counts{}, 0, 0, err
	}
	time.Sleep(mirrorWarmUp)
	warm.Stop()
	copies0, err := adminMetric(e.admin, "milvus_lb_mirror_requests_total")
	if err != nil {
		return loadgen.Counts{}, 0, 0, err
	}
	dropped0, _ := adminMetric(e.admin, "milvus_lb_mirror_dropped_total")
	l, err := loadgen.Start(opts)
	if err != nil {
		return loadgen.Counts{}, 0, 0, err
	}
	time.Sleep(d)
	c := l.Stop()
	copies, err := adminMetric(e.admin, "milvus_lb_mirror_requests_total")
	if err != nil {
		return loadgen.Counts{}, 0, 0, err
	}
	dropped, _ := adminMetric(e.admin, "milvus_lb_mirror_dropped_total")
	return c, copies - copies0, dropped - dropped0, nil
}

func (e *mirrorEnv) dial() (*grpc.ClientConn, error) {
	return grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: e.cert.pool, ServerName: Host})), grpc.WithDisableRetry())
}

// configure writes the manifests, the primary (Service milvus) and the mirror (Service
// milvus-next), each one fake backend, and an Ingress to the primary with the mirror
// annotation when mirror is set, and waits until milvus-lb serves them (its configuration
// generation moves on). No health checks: the scenarios decide whether the mirror is up,
// and milvus-lb learns it only from the copies, as between a pod's end and the removal of
// its endpoint.
func (e *mirrorEnv) configure(mirror bool) error {
	if e.configured && e.mirrored == mirror {
		return nil
	}
	annotations := []string{"milvus-lb.io/healthcheck-type: none"}
	if mirror {
		annotations = append(annotations, `milvus-lb.io/mirror: '{"serviceName":"milvus-next","servicePort":19530,"percent":100}'`)
	}
	gen, _ := adminMetric(e.admin, "milvus_lb_config_generation")
	svcs := []manifestService{service("milvus", e.primary.Addr()), service("milvus-next", e.mirrorAddr)}
	if err := writeServices(e.file, e.cert, e.port, svcs, annotations...); err != nil {
		return err
	}
	e.configured, e.mirrored = true, mirror
	if e.lb == nil {
		return nil // not started yet
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		if g, err := adminMetric(e.admin, "milvus_lb_config_generation"); err == nil && g > gen {
			return nil
		}
		if e.lb.exited() || time.Now().After(deadline) {
			return fmt.Errorf("milvus-lb did not take the new manifests\n%s", e.lb.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *mirrorEnv) close() {
	if e.lb != nil {
		_ = e.lb.stop()
	}
	for _, b := range []*fakemilvus.Server{e.primary, e.mirror} {
		if b != nil {
			b.Kill()
		}
	}
}

func startMirror(dir, lbBin string) (_ *mirrorEnv, err error) {
	e := &mirrorEnv{}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	dir = filepath.Join(dir, "mirror")
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return nil, err
	}
	if e.cert, err = newCert(dir); err != nil {
		return nil, err
	}
	for i, b := range []**fakemilvus.Server{&e.primary, &e.mirror} {
		*b = fakemilvus.New(fakemilvus.Options{Name: fmt.Sprintf("m%d", i), NoRecord: true})
		if err := (*b).Start("127.0.0.1:0"); err != nil {
			return nil, err
		}
		(*b).SetDelay(mirrorPrimaryDelay)
	}
	e.mirrorAddr = e.mirror.Addr()
	if e.addr, err = freeAddr(); err != nil {
		return nil, err
	}
	if e.admin, err = freeAddr(); err != nil {
		return nil, err
	}
	_, e.port, _ = net.SplitHostPort(e.addr)
	e.file = filepath.Join(dir, "milvus.yaml")
	if err := e.configure(false); err != nil {
		return nil, err
	}
	if e.lb, err = startLB(lbBin, dir, e.file, e.admin); err != nil {
		return nil, err
	}
	return e, nil
}
