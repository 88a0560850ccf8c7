// Package attacks attacks a balancer assembled from the real packages, on 127.0.0.1, with
// raw HTTP/2 clients, while legitimate gRPC clients call a fake Milvus through it.
//
// Method, for every attack (docs/limits.md explains the bounds):
//   - The legitimate client calls GetVersion and Search on a fixed schedule (legitRate
//     calls per second from legitWorkers goroutines over legitConns connections; a call
//     made late, because the one before took longer than its worker's interval, is made
//     at once, so a stall of the shared machine costs latency, not calls). A paced
//     client, unlike a closed loop, asks the same of the machine with and without the
//     attack, so the comparison measures the attack rather than the noise of a shared
//     2-core machine. Its rate is measured over a window before the attack and over the
//     attack itself; under attack it must keep minRatio of the rate before.
//   - Memory is the Go heap of the test process (balancer, backend and clients: the
//     attackers and clients allocate little), sampled every 50 ms: the peak of live heap
//     (as of the last GC) above the live heap before the attack must stay below
//     maxHeapGrowth.
//   - The attacker's connection must be closed by the balancer (GOAWAY, RST_STREAM of the
//     attacking stream, or EOF/reset) within a deadline stated by each test.
//   - After the attack, a new client must still be served.
//
// ATTACK_LOG=1 with -v shows the balancer's log.
package attacks

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/dataplane"
	"github.com/milvus-lb/milvus-lb/internal/listener"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

const (
	host = lbtest.Host

	legitRate    = 200 // calls per second, over all workers
	legitWorkers = 16  // each calls every 80 ms
	legitConns   = 4   // connections the workers share, half TLS, half h2c
	minRatio     = 0.8

	// maxHeapGrowth bounds the live heap an attack may add. One attacking connection can
	// make the balancer hold at most its HTTP/2 receive window (16 MiB per connection),
	// one header list (1 MiB), the state of its open streams (at most 1000, a few KiB
	// each) and 4000 queued handlers (Go's rapid-reset queue): well under 64 MiB. A leak
	// or an unbounded buffer grows past it within seconds at loopback speed.
	maxHeapGrowth = 64 << 20
)

// lb is a balancer serving one h2c port and one TLS port in front of one fake Milvus.
type lb struct {
	lm      *listener.Manager
	plain   int
	tlsPort int
	backend *fakemilvus.Server
	h       *lbtest.LB // nil in an attacker process (attacker_test.go)
	// legitCalls is how many calls the legitimate client of the last underAttack made.
	legitCalls int64
}

// testOptions are the defaults with the timeouts that bound slow attacks shortened, so
// that each test ends within seconds; docs/limits.md gives the bounds with the defaults.
func testOptions() listener.Options {
	o := listener.DefaultOptions()
	o.HandshakeTimeout = 2 * time.Second
	o.PingInterval = time.Second
	o.PingTimeout = time.Second
	o.WriteByteTimeout = 2 * time.Second
	return o
}

// newLB starts a balancer with opts and limits in front of a new fake Milvus.
func newLB(t *testing.T, opts listener.Options, limits call.Limits) *lb {
	t.Helper()
	be := lbtest.Backends(t, 1, fakemilvus.Options{NoRecord: true})[0]
	l := newLBAt(t, opts, limits, be.Addr())
	l.backend = be
	return l
}

// newLBAt starts a balancer (lbtest: the guide's Ingress through the reload pipeline)
// with opts and limits in front of the fake Milvus at addr (of another process: see
// startBackendProcess); l.backend is nil.
func newLBAt(t *testing.T, opts listener.Options, limits call.Limits, addr string) *lb {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() && os.Getenv("ATTACK_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h := lbtest.Start(t, lbtest.Options{Plane: dataplane.Options{Listener: opts, Limits: limits, Log: logger}}, addr)
	return &lb{lm: h.Plane.Listeners, plain: h.Plain, tlsPort: h.TLS, h: h}
}

func (l *lb) plainAddr() string { return "127.0.0.1:" + strconv.Itoa(l.plain) }
func (l *lb) tlsAddr() string   { return "127.0.0.1:" + strconv.Itoa(l.tlsPort) }

func (l *lb) clientTLS() *tls.Config {
	if l.h == nil {
		// An attacker process (attacker_test.go) has no CA, and an attacker would not
		// verify the certificate anyway.
		return &tls.Config{InsecureSkipVerify: true, ServerName: host, NextProtos: []string{"h2"}} //nolint:gosec // the attacker
	}
	c := l.h.ClientTLS()
	c.NextProtos = []string{"h2"}
	return c
}

// dial returns a MilvusService client on one connection of its own, over TLS or h2c.
func (l *lb) dial(t *testing.T, useTLS bool, opts ...grpc.DialOption) (milvuspb.MilvusServiceClient, *grpc.ClientConn) {
	t.Helper()
	return l.h.Dial(t, useTLS, opts...)
}

// checkServes fails t unless a new client on a new connection gets an answer.
func (l *lb) checkServes(t *testing.T) {
	t.Helper()
	for _, useTLS := range []bool{false, true} {
		c, cc := l.dial(t, useTLS)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{})
		cancel()
		cc.Close()
		if err != nil {
			t.Fatalf("after the attack, a new client (TLS %v) is not served: %v", useTLS, err)
		}
	}
}

// legit is a paced legitimate client: legitWorkers goroutines over legitConns
// connections, each calling at legitRate/legitWorkers calls per second.
type legit struct {
	ok, failed atomic.Int64
	stop       context.CancelFunc
	done       sync.WaitGroup
	lastErr    atomic.Value
}

func startLegit(t *testing.T, l *lb) *legit {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := &legit{stop: cancel}
	interval := time.Duration(legitWorkers) * time.Second / legitRate
	var clients []milvuspb.MilvusServiceClient
	for i := range legitConns {
		// Half the connections are TLS, half h2c: both listeners must hold.
		c, _ := l.dial(t, i%2 == 1)
		clients = append(clients, c)
	}
	for i := range legitWorkers {
		c := clients[i%legitConns]
		g.done.Add(1)
		go func() {
			defer g.done.Done()
			search := &milvuspb.SearchRequest{CollectionName: "c1", Nq: 1,
				SearchParams: []*commonpb.KeyValuePair{{Key: "topk", Value: "10"}}}
			due := time.Now()
			for n := 0; ; n++ {
				// Calls keep a schedule: one late because the machine stalled is made up
				// at once, so that a stall shows as latency and only a balancer that
				// cannot keep up loses rate.
				due = due.Add(interval)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(due)):
				}
				cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
				var err error
				if n%2 == 0 {
					_, err = c.GetVersion(cctx, &milvuspb.GetVersionRequest{})
				} else {
					_, err = c.Search(cctx, search)
				}
				ccancel()
				switch {
				case err == nil:
					g.ok.Add(1)
				case ctx.Err() == nil:
					g.failed.Add(1)
					g.lastErr.Store(err.Error())
				}
			}
		}()
	}
	t.Cleanup(g.close)
	return g
}

func (g *legit) close() { g.stop(); g.done.Wait() }

// rate counts successful calls over d.
func (g *legit) rate(d time.Duration) float64 {
	start, n0 := time.Now(), g.ok.Load()
	time.Sleep(d)
	return float64(g.ok.Load()-n0) / time.Since(start).Seconds()
}

// memSampler records the peak heap while it runs.
type memSampler struct {
	baseLive, peakLive, peakInuse uint64
	stop                          chan struct{}
	done                          chan struct{}
}

var memMetrics = []string{"/gc/heap/live:bytes", "/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes"}

func readMem() (live, inuse uint64) {
	s := make([]metrics.Sample, len(memMetrics))
	for i, n := range memMetrics {
		s[i].Name = n
	}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64() + s[2].Value.Uint64()
}

func startMem() *memSampler {
	runtime.GC()
	m := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	m.baseLive, _ = readMem()
	go func() {
		defer close(m.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			live, inuse := readMem()
			m.peakLive, m.peakInuse = max(m.peakLive, live), max(m.peakInuse, inuse)
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

// finish stops sampling; one last GC makes the live figure include everything the attack
// left behind.
func (m *memSampler) finish() {
	runtime.GC()
	close(m.stop)
	<-m.done
}

func (m *memSampler) growth() int64 { return int64(m.peakLive) - int64(m.baseLive) }

// attack describes one attack for underAttack.
type attack struct {
	// duration of the attack; run must return by itself once ctx ends.
	duration time.Duration
	run      func(ctx context.Context) error
}

// underAttack runs a against l beside a paced legitimate client, and checks the rate
// ratio, the memory bound and that l still serves afterwards. It returns run's error.
func underAttack(t *testing.T, l *lb, a attack) error {
	t.Helper()
	g := startLegit(t, l)
	time.Sleep(300 * time.Millisecond) // connections up, first calls made
	window := 2 * time.Second
	before := g.rate(window)
	failedBefore := g.failed.Load()

	mem := startMem()
	ctx, cancel := context.WithTimeout(context.Background(), a.duration)
	defer cancel()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- a.run(ctx) }()
	// Measure over the attack, from a moment after it started (the first connections are
	// up) to its end.
	time.Sleep(min(a.duration/10, 500*time.Millisecond))
	during := g.rate(a.duration - time.Since(start))
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("the attacker did not stop 10 s after its deadline")
	}
	mem.finish()
	g.close()
	l.legitCalls = g.ok.Load() + g.failed.Load()

	ratio := during / before
	t.Logf("legitimate calls/s: %.0f before, %.0f under attack (ratio %.2f; %d failed under attack, last: %v)",
		before, during, ratio, g.failed.Load()-failedBefore, g.lastErr.Load())
	t.Logf("heap: live %.1f MiB before, peak live %.1f MiB (+%.1f MiB), peak in use %.1f MiB",
		mib(mem.baseLive), mib(mem.peakLive), float64(mem.growth())/(1<<20), mib(mem.peakInuse))
	if before < 0.5*legitRate {
		t.Logf("warning: the machine could not sustain the paced rate even without the attack")
	}
	if ratio < minRatio && raceBuild {
		t.Logf("race build: legitimate clients kept %.0f%% of their rate; not asserted (see race_on_test.go)", 100*ratio)
	} else if ratio < minRatio {
		t.Errorf("legitimate clients kept %.0f%% of their rate under attack, want at least %.0f%%", 100*ratio, 100*minRatio)
	}
	if mem.growth() > maxHeapGrowth {
		t.Errorf("live heap grew by %.1f MiB under attack, want at most %d MiB", float64(mem.growth())/(1<<20), maxHeapGrowth>>20)
	}
	l.checkServes(t)
	return err
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// rawConn is an attacker's HTTP/2 connection, driven frame by frame.
type rawConn struct {
	net.Conn
	bw *bufio.Writer
	fr *http2.Framer
}

// dialRaw opens a connection to the h2c port, or the TLS port with ALPN h2, and sends
// the client preface (and, unless noSettings, an empty SETTINGS frame).
func (l *lb) dialRaw(ctx context.Context, useTLS bool, settings ...http2.Setting) (*rawConn, error) {
	var d net.Dialer
	addr := l.plainAddr()
	if useTLS {
		addr = l.tlsAddr()
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if useTLS {
		tc := tls.Client(nc, l.clientTLS())
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	c := &rawConn{Conn: nc, bw: bufio.NewWriterSize(nc, 64<<10)}
	c.fr = http2.NewFramer(c.bw, nc)
	c.fr.SetMaxReadFrameSize(1 << 24)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 64 << 20
	if _, err := c.bw.WriteString(http2.ClientPreface); err != nil {
		nc.Close()
		return nil, err
	}
	if err := c.fr.WriteSettings(settings...); err != nil {
		nc.Close()
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// grpcHeaders is a complete header block for a gRPC call of method, encoded on its own
// (literals only), so that it can be sent any number of times.
func grpcHeaders(method string, extra ...hpack.HeaderField) []byte {
	var buf bytesBuffer
	enc := hpack.NewEncoder(&buf)
	fields := []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/milvus.proto.milvus.MilvusService/" + method},
		{Name: ":authority", Value: host},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	}
	for _, f := range append(fields, extra...) {
		_ = enc.WriteField(f)
	}
	return buf.b
}

type bytesBuffer struct{ b []byte }

func (b *bytesBuffer) Write(p []byte) (int, error) { b.b = append(b.b, p...); return len(p), nil }

// closedBy reads frames until the balancer closes the connection, a GOAWAY arrives, or
// stream (if not 0) is reset or ended; it reports which, or an error if the deadline
// passes first.
func (c *rawConn) closedBy(deadline time.Time, stream uint32) (string, error) {
	_ = c.SetReadDeadline(deadline)
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return "", fmt.Errorf("connection still open at the deadline")
			}
			return "connection closed (" + shortErr(err) + ")", nil
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			return "GOAWAY " + f.ErrCode.String(), nil
		case *http2.RSTStreamFrame:
			if stream != 0 && f.StreamID == stream {
				return "RST_STREAM " + f.ErrCode.String(), nil
			}
		}
	}
}
