// Package lbtest starts a milvus-lb balancer inside the test process, configured as a user
// configures one: the guide's Ingress (test/testdata/guide/ingress.yaml) with its Service,
// EndpointSlices and an imported certificate, taken through the reload pipeline that
// `milvus-lb serve` runs (internal/reload) into the data plane it runs
// (internal/dataplane). It serves Host on 127.0.0.1 on two ports: HTTP (h2c and HTTP/1.1)
// and HTTPS with a certificate of a test CA.
package lbtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/dataplane"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/listener"
	"github.com/milvus-lb/milvus-lb/internal/reload"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// Host is the guide's host, which the balancer serves.
const Host = "milvus-demo.milvus.io"

// BackendKey is the key of the guide's one backend.
const BackendKey = testenv.GuideBackendKey

// Options change the balancer from what `milvus-lb serve` runs with by default.
type Options struct {
	// Plane configures the data plane. A zero Listener or Limits means serve's defaults
	// (listener.DefaultOptions, call.DefaultLimits); BindAddress is always 127.0.0.1. A
	// nil Log discards the log, or with -v writes it to stderr at debug level.
	Plane dataplane.Options
	// Annotations are set on the guide's Ingress over its own and over the one lbtest
	// adds, milvus-lb.io/healthcheck-type: none (a test decides which backend is up).
	Annotations map[string]string
	// Observer, if set, receives a record of every finished call.
	Observer call.Observer
	// CertValidity is how long the HTTPS certificate is valid from now (default a day).
	CertValidity time.Duration
}

// LB is a running balancer. Its methods may be called from the test's goroutine.
type LB struct {
	Plain, TLS int          // the HTTP and HTTPS ports on 127.0.0.1
	CA         *certtest.CA // issued the HTTPS certificate
	Plane      *dataplane.Plane
	Pipeline   *reload.Pipeline

	t    testing.TB
	cert *certs.Certificate
	ann  map[string]string
}

// Start serves the guide's Ingress in front of endpoints (host:port); the balancer stops
// when the test ends. Start fails t if the configuration is refused.
func Start(t testing.TB, o Options, endpoints ...string) *LB {
	t.Helper()
	po := o.Plane
	if po.Listener.MaxConcurrentStreams == 0 && po.Listener.ListenFunc == nil {
		po.Listener = listener.DefaultOptions()
	}
	po.Listener.BindAddress = "127.0.0.1"
	if po.Limits == (call.Limits{}) {
		po.Limits = call.DefaultLimits()
	}
	if po.Log == nil {
		po.Log = testLog()
	}
	dp := dataplane.New(po)
	t.Cleanup(func() { dp.Close(time.Second) })
	if o.Observer != nil {
		dp.SetObserver(o.Observer)
	}
	l := &LB{Plain: testenv.FreePort(t), TLS: testenv.FreePort(t), CA: certtest.NewCA(t), Plane: dp, t: t,
		ann: map[string]string{ingress.AnnotationHealthCheckType: "none"}}
	l.Pipeline = reload.New(reload.Options{Gateway: dp.Gateway, RejectOnError: true, Log: po.Log})
	for k, v := range o.Annotations {
		l.ann[k] = v
	}
	certPEM, keyPEM := l.CA.Issue(t, Host)
	if o.CertValidity > 0 {
		certPEM, keyPEM = l.CA.IssueTemplate(t, &x509.Certificate{Subject: pkix.Name{CommonName: Host}, DNSNames: []string{Host},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(o.CertValidity),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	}
	c, err := certs.Import(certPEM, l.CA.CertPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatalf("lbtest: cert import: %v", err)
	}
	l.cert = c
	l.Reload(l.Objects(endpoints...))
	return l
}

func testLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Objects are what the balancer serves with the Service's endpoints set to endpoints.
// A test may change them and Reload.
func (l *LB) Objects(endpoints ...string) ingress.Objects {
	l.t.Helper()
	return testenv.GuideObjects(l.t, testenv.GuideSetup{
		ListenPorts: `[{"HTTP":` + strconv.Itoa(l.Plain) + `},{"HTTPS":` + strconv.Itoa(l.TLS) + `}]`,
		Certificate: l.cert, Annotations: l.ann, Endpoints: endpoints,
	})
}

// Reload takes objs through the pipeline, as a file edit would, and fails the test if it
// is refused.
func (l *LB) Reload(objs ingress.Objects) reload.Result {
	l.t.Helper()
	res := l.Pipeline.Reload(context.Background(), objs, nil)
	if res.Err != nil {
		l.t.Fatalf("lbtest: configuration refused: %v\n%s", res.Err, res.Problems.Report())
	}
	return res
}

// SetEndpoints reloads with the Service's endpoints set to endpoints (none: it has none).
func (l *LB) SetEndpoints(endpoints ...string) { l.t.Helper(); l.Reload(l.Objects(endpoints...)) }

// PlainAddr and TLSAddr are the addresses of the HTTP and HTTPS ports.
func (l *LB) PlainAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Plain)) }
func (l *LB) TLSAddr() string   { return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.TLS)) }

// ClientTLS is what the guide's client sets: SNI Host, and the test CA as the root.
func (l *LB) ClientTLS() *tls.Config { return &tls.Config{RootCAs: l.CA.Pool(), ServerName: Host} }

// Dial returns a MilvusService client on a connection of its own, over TLS as the guide's
// client connects, or h2c with the authority set to Host; opts come after lbtest's and
// override them. Messages of any size are allowed, as pymilvus allows them.
func (l *LB) Dial(t testing.TB, useTLS bool, opts ...grpc.DialOption) (milvuspb.MilvusServiceClient, *grpc.ClientConn) {
	t.Helper()
	creds, addr := insecure.NewCredentials(), l.PlainAddr()
	if useTLS {
		creds, addr = credentials.NewTLS(l.ClientTLS()), l.TLSAddr()
	}
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithAuthority(Host),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30), grpc.MaxCallSendMsgSize(1<<30)),
	}, opts...)
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return milvuspb.NewMilvusServiceClient(cc), cc
}

// Backends starts n fake Milvus servers on 127.0.0.1, named b0, b1, ..., stopped when the
// test ends.
func Backends(t testing.TB, n int, o fakemilvus.Options) []*fakemilvus.Server {
	t.Helper()
	var out []*fakemilvus.Server
	for i := range n {
		o := o
		o.Name = "b" + strconv.Itoa(i)
		s := fakemilvus.New(o)
		if err := s.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		out = append(out, s)
	}
	return out
}

// Addrs are the addresses of backends, for Start and SetEndpoints.
func Addrs(backends []*fakemilvus.Server) []string {
	var out []string
	for _, b := range backends {
		out = append(out, b.Addr())
	}
	return out
}
