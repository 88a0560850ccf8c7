package health

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
)

// userAgent names the prober in backend logs, as the ALB's ELB-HealthChecker/2.0 does.
const userAgent = "milvus-lb-healthcheck"

// probe checks one address until stopped. Its goroutine runs run; stop and status may
// be called from any goroutine.
type probe struct {
	spec               spec
	ep                 *balancer.Endpoint
	log                *slog.Logger
	interval, timeout  time.Duration
	healthyN, unhealth int

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	stopped bool // no more writes to ep
	checked bool
	healthy bool
	// everHealthy is false until the first pass. Until then the endpoint is starting (a
	// Milvus proxy answers "not ready yet" for seconds after it listens), so it is probed
	// every startingInterval and its first pass counts at once: it takes traffic as soon as
	// it is ready, not HealthyThreshold × Interval later (30 s with the ALB defaults).
	everHealthy bool
	streak      int // consecutive results that disagree with healthy
	reason      string
	last        time.Time
}

func newProbe(s spec, ep *balancer.Endpoint, log *slog.Logger) *probe {
	p := &probe{
		spec:     s,
		ep:       ep,
		log:      log,
		interval: orDefault(s.hc.Interval.D(), DefaultInterval),
		timeout:  orDefault(s.hc.Timeout.D(), DefaultTimeout),
		healthyN: orDefault(s.hc.HealthyThreshold, DefaultThreshold),
		unhealth: orDefault(s.hc.UnhealthyThreshold, DefaultThreshold),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

func orDefault[T int | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// stop ends the probe. After it returns the probe writes nothing more to its endpoint;
// with markUnhealthy it leaves the endpoint unhealthy, for an address that left the
// configuration (so a later return does not inherit a stale verdict).
func (p *probe) stop(markUnhealthy bool) {
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.ep.SetProbed(false)
	if markUnhealthy {
		p.ep.SetHealthy(false)
	}
}

func (p *probe) run() {
	p.mu.Lock()
	if !p.stopped {
		// From now on an ejected endpoint returns at a passing check (balancer/outlier.go).
		p.ep.SetProbed(true)
	}
	p.mu.Unlock()
	chk := newCheck(p.spec, p.timeout)
	defer chk.close()
	t := time.NewTimer(0) // the first check at once: it alone decides the initial state
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
		err := chk.check(ctx)
		cancel()
		if p.ctx.Err() != nil {
			return
		}
		p.observe(err)
		// The interval runs from the end of a check, so checks never overlap.
		t.Reset(p.nextInterval())
	}
}

// observe feeds one result (nil = pass) to the state machine.
func (p *probe) observe(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	ok := err == nil
	p.last = time.Now()
	p.reason = ""
	if !ok {
		p.reason = err.Error()
	} else if p.ep.Passed(p.last) {
		p.log.Info("endpoint returned after ejection", "address", p.spec.addr, "backend", p.spec.backend, "check", string(p.spec.hc.Kind))
	}
	initial := !p.checked || (ok && !p.everHealthy)
	if ok {
		p.everHealthy = true
	}
	if !initial {
		if ok == p.healthy {
			p.streak = 0
			return
		}
		p.streak++
		need := p.unhealth
		if ok {
			need = p.healthyN
		}
		if p.streak < need {
			return
		}
	}
	p.checked, p.healthy, p.streak = true, ok, 0
	p.ep.SetHealthy(ok)
	attrs := []any{"address", p.spec.addr, "backend", p.spec.backend, "check", string(p.spec.hc.Kind), "initial", initial}
	if ok {
		p.log.Info("endpoint healthy", attrs...)
	} else {
		p.log.Warn("endpoint unhealthy", append(attrs, "reason", p.reason)...)
	}
}

// startingInterval is the probe interval of an endpoint that has never passed.
const startingInterval = time.Second

func (p *probe) nextInterval() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.everHealthy {
		return min(p.interval, startingInterval)
	}
	return p.interval
}

func (p *probe) status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Status{
		Address:   p.spec.addr,
		Backend:   p.spec.backend,
		Kind:      p.spec.hc.Kind,
		Healthy:   p.healthy,
		Checked:   p.checked,
		Reason:    p.reason,
		LastCheck: p.last,
	}
}

// check is one kind of active check, used by one probe goroutine only.
type check interface {
	// check returns nil when the endpoint passes, else why not.
	check(ctx context.Context) error
	close()
}

func newCheck(s spec, timeout time.Duration) check {
	switch s.hc.Kind {
	case config.CheckMilvus:
		return &milvusCheck{conn: newConn(s)}
	case config.CheckGRPCHealth:
		return &grpcHealthCheck{conn: newConn(s)}
	case config.CheckGRPC:
		path := cmp.Or(s.hc.Path, DefaultGRPCPath)
		codes, err := ParseCodes(cmp.Or(s.hc.SuccessCodes, DefaultGRPCCodes))
		return &grpcCodeCheck{conn: newConn(s), path: path, codes: codes, err: err}
	case config.CheckHTTP:
		return newHTTPCheck(s, timeout)
	}
	return failing{fmt.Errorf("unknown health check kind %q", s.hc.Kind)}
}

// failing is a check that cannot run, such as one with an unknown kind.
type failing struct{ err error }

func (f failing) check(context.Context) error { return f.err }
func (failing) close()                        {}

// conn is the probe's gRPC connection, made on first use and dropped after a transport
// failure so that the next check dials afresh instead of waiting out grpc-go's reconnect
// backoff (up to two minutes) after the backend comes back.
//
// No keepalive is configured: probes alone keep the connection busy, and Milvus's
// enforcement (MinTime 5 s) could otherwise close it with too_many_pings.
type conn struct {
	target string
	opts   []grpc.DialOption
	cc     *grpc.ClientConn
}

func newConn(s spec) *conn {
	creds := insecure.NewCredentials()
	if s.tls {
		// The ALB does not verify target certificates, and neither do health checks:
		// backends behind a balancer commonly serve self-signed certificates, and the
		// check asks "is it up", not "is it who it claims" (traffic TLS is the proxy's).
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // see above
	}
	return &conn{
		target: "passthrough:///" + s.target(),
		opts: []grpc.DialOption{
			grpc.WithTransportCredentials(creds),
			grpc.WithUserAgent(userAgent),
			grpc.WithDisableRetry(),
		},
	}
}

func (c *conn) get() (*grpc.ClientConn, error) {
	if c.cc == nil {
		cc, err := grpc.NewClient(c.target, c.opts...)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", c.target, err)
		}
		c.cc = cc
	}
	return c.cc, nil
}

// failed drops the connection after an error that says it may be broken.
func (c *conn) failed(err error) {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		c.close()
	}
}

func (c *conn) close() {
	if c.cc != nil {
		c.cc.Close()
		c.cc = nil
	}
}

// milvusCheck calls MilvusService/CheckHealth: healthy iff gRPC OK, the body's Status
// says success and is_healthy is true.
type milvusCheck struct{ conn *conn }

func (m *milvusCheck) check(ctx context.Context) error {
	cc, err := m.conn.get()
	if err != nil {
		return err
	}
	resp, err := milvuspb.NewMilvusServiceClient(cc).CheckHealth(ctx, &milvuspb.CheckHealthRequest{})
	if err != nil {
		m.conn.failed(err)
		return fmt.Errorf("CheckHealth: %w", err)
	}
	if st := resp.GetStatus(); st.GetCode() != 0 || st.GetErrorCode() != commonpb.ErrorCode_Success {
		return fmt.Errorf("CheckHealth: status %d (%s): %s", st.GetCode(), st.GetErrorCode(), st.GetReason())
	}
	if !resp.GetIsHealthy() {
		return fmt.Errorf("CheckHealth: not healthy: %s", strings.Join(resp.GetReasons(), "; "))
	}
	return nil
}

func (m *milvusCheck) close() { m.conn.close() }

// grpcHealthCheck calls grpc.health.v1.Health/Check for the whole server: healthy iff
// OK and SERVING in the body (Milvus answers NOT_SERVING inside an OK response).
type grpcHealthCheck struct{ conn *conn }

func (g *grpcHealthCheck) check(ctx context.Context) error {
	cc, err := g.conn.get()
	if err != nil {
		return err
	}
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		g.conn.failed(err)
		return fmt.Errorf("Health/Check: %w", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("Health/Check: %s", resp.GetStatus())
	}
	return nil
}

func (g *grpcHealthCheck) close() { g.conn.close() }

// grpcCodeCheck calls path with an empty message and compares the status code, as the
// ALB does. Its default (/AWS.ALB/healthcheck, UNIMPLEMENTED) only proves that something
// speaks gRPC there.
type grpcCodeCheck struct {
	conn  *conn
	path  string
	codes Codes
	err   error // from parsing the codes
}

func (g *grpcCodeCheck) check(ctx context.Context) error {
	if g.err != nil {
		return g.err
	}
	cc, err := g.conn.get()
	if err != nil {
		return err
	}
	err = cc.Invoke(ctx, g.path, &emptypb.Empty{}, &emptypb.Empty{})
	code := status.Code(err)
	if g.codes.Match(int(code)) {
		return nil
	}
	g.conn.failed(err)
	if err == nil {
		return fmt.Errorf("%s: OK, want codes %s", g.path, g.codes)
	}
	return fmt.Errorf("%s: %w, want codes %s", g.path, err, g.codes)
}

func (g *grpcCodeCheck) close() { g.conn.close() }

// httpCheck sends GET and compares the HTTP status, without following redirects (the
// ALB does not either).
type httpCheck struct {
	url    string
	client *http.Client
	codes  Codes
	err    error
}

func newHTTPCheck(s spec, timeout time.Duration) *httpCheck {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	path := cmp.Or(s.hc.Path, DefaultHTTPPath)
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	codes, err := ParseCodes(cmp.Or(s.hc.SuccessCodes, DefaultHTTPCodes))
	tr := &http.Transport{
		Proxy:       nil, // a probe goes to the endpoint itself, whatever HTTP_PROXY says
		DialContext: (&net.Dialer{Timeout: timeout}).DialContext,
		// Not verified, as the ALB does not verify target certificates (see newConn).
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
	}
	return &httpCheck{
		url: scheme + "://" + s.target() + path,
		client: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		codes: codes,
		err:   err,
	}
}

func (h *httpCheck) check(ctx context.Context) error {
	if h.err != nil {
		return h.err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", h.url, err)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := h.client.Do(req)
	if err != nil {
		if uerr, ok := errors.AsType[*url.Error](err); ok {
			err = uerr.Err // url.Error repeats the method and URL
		}
		return fmt.Errorf("GET %s: %w", h.url, err)
	}
	// Drain a little so the connection can be reused; a huge body is not our business.
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
	if !h.codes.Match(resp.StatusCode) {
		return fmt.Errorf("GET %s: %s, want codes %s", h.url, resp.Status, h.codes)
	}
	return nil
}

func (h *httpCheck) close() { h.client.CloseIdleConnections() }
