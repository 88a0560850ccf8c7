package proxy_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/certs/certtest"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/health"
	"github.com/milvus-lb/milvus-lb/internal/listener"
	"github.com/milvus-lb/milvus-lb/internal/proxy"
)

const host = "milvus-demo.milvus.io"

// lb is a balancer assembled from the real packages, as runDataPlane does, serving one
// h2c port and one TLS port in front of fake Milvus backends.
type lb struct {
	t        *testing.T
	gw       *gateway.Gateway
	reg      *balancer.Registry
	lm       *listener.Manager
	plain    int
	tlsPort  int
	ca       *certtest.CA
	backends []*fakemilvus.Server
	model    *config.Model
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startBackends(t *testing.T, n int, opts fakemilvus.Options) []*fakemilvus.Server {
	t.Helper()
	var out []*fakemilvus.Server
	for i := range n {
		o := opts
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

// newLB serves backends under host. tweak may change the backend before it is applied.
func newLB(t *testing.T, backends []*fakemilvus.Server, tweak func(*config.Backend)) *lb {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	l := &lb{t: t, reg: balancer.NewRegistry(), plain: freePort(t), tlsPort: freePort(t), ca: certtest.NewCA(t), backends: backends}
	tr := proxy.NewTransports()
	t.Cleanup(tr.Close)
	opts := listener.DefaultOptions()
	opts.BindAddress = "127.0.0.1"
	l.lm = listener.NewManager(opts,
		func(port int, isTLS bool) http.Handler {
			return &proxy.Handler{Port: port, TLS: isTLS, Snapshot: func() *gateway.Snapshot { return l.gw.Current() }, Transports: tr, Log: logger, Limits: proxy.DefaultLimits()}
		},
		func(port int) *tls.Config {
			if ls := l.gw.Current().Listeners[port]; ls != nil {
				return ls.TLS
			}
			return nil
		}, logger)
	checker := health.New(l.reg, logger)
	l.gw = gateway.New(l.reg, l.lm, checker, logger)
	t.Cleanup(func() {
		l.lm.Shutdown(time.Second)
		checker.Close()
	})

	certPEM, keyPEM := l.ca.Issue(t, host)
	be := &config.Backend{
		Key: "milvus/milvus-demo:19530", Service: "milvus/milvus-demo", Port: "19530",
		Protocol: config.BackendGRPC, Algorithm: config.RoundRobin,
		HealthCheck:         config.HealthCheck{Kind: config.CheckNone},
		DeregistrationDelay: config.Duration(time.Second),
	}
	for _, b := range backends {
		be.Endpoints = append(be.Endpoints, config.Endpoint{Address: b.Addr(), Ready: true})
	}
	if tweak != nil {
		tweak(be)
	}
	routes := []config.Route{{Host: host, Path: "/", PathType: config.PathPrefix, Backend: be.Key, Ingress: "milvus/milvus-demo"}}
	l.model = &config.Model{
		Backends: map[string]*config.Backend{be.Key: be},
		Listeners: []config.Listener{
			{Port: l.plain, Protocol: config.HTTP, Routes: routes},
			{Port: l.tlsPort, Protocol: config.HTTPS, Routes: routes, Certificates: []config.Certificate{{Ref: "test", CertPEM: certPEM, KeyPEM: keyPEM}}},
		},
	}
	l.apply()
	return l
}

func (l *lb) apply() {
	l.t.Helper()
	if _, err := l.gw.Apply(context.Background(), l.model, nil); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lb) backend() *config.Backend {
	for _, b := range l.model.Backends {
		return b
	}
	return nil
}

// dial returns a MilvusService client over one h2c connection, with the authority set to
// the Ingress host, as pymilvus does with server_name.
func (l *lb) dial(opts ...grpc.DialOption) (milvuspb.MilvusServiceClient, *grpc.ClientConn) {
	l.t.Helper()
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority(host),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30), grpc.MaxCallSendMsgSize(1<<30)),
	}, opts...)
	cc, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(l.plain), opts...)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { cc.Close() })
	return milvuspb.NewMilvusServiceClient(cc), cc
}

// dialTLS is dial over TLS with SNI host and the test CA, as the guide's client does.
func (l *lb) dialTLS(opts ...grpc.DialOption) milvuspb.MilvusServiceClient {
	l.t.Helper()
	creds := credentials.NewTLS(&tls.Config{RootCAs: l.ca.Pool(), ServerName: host})
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30), grpc.MaxCallSendMsgSize(1<<30)),
	}, opts...)
	cc, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(l.tlsPort), opts...)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { cc.Close() })
	return milvuspb.NewMilvusServiceClient(cc)
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, cancel
}

func protoSize(m proto.Message) int { return proto.Size(m) }
