package proxy_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/dataplane"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/listener"
	"github.com/milvus-lb/milvus-lb/internal/proxy"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

const host = "milvus-demo.milvus.io"

// lb is a balancer assembled as milvus-lb serve assembles it (dataplane.New), serving one
// h2c port and one TLS port in front of fake Milvus backends.
type lb struct {
	t        *testing.T
	gw       *gateway.Gateway
	plain    int
	tlsPort  int
	ca       *certtest.CA
	backends []*fakemilvus.Server
	model    *config.Model
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
	l := &lb{t: t, plain: testenv.FreePort(t), tlsPort: testenv.FreePort(t), ca: certtest.NewCA(t), backends: backends}
	opts := listener.DefaultOptions()
	opts.BindAddress = "127.0.0.1"
	dp := dataplane.New(dataplane.Options{Listener: opts, Limits: proxy.DefaultLimits(), Log: logger})
	t.Cleanup(func() { dp.Close(time.Second) })
	l.gw = dp.Gateway

	certPEM, keyPEM := l.ca.Issue(t, host)
	var addrs []string
	for _, b := range backends {
		addrs = append(addrs, b.Addr())
	}
	l.model = testenv.DemoModel(host, l.plain, l.tlsPort, certPEM, keyPEM, addrs...)
	if tweak != nil {
		tweak(l.model.Backends[testenv.DemoBackendKey])
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
