package dataplane_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

const host = lbtest.Host

// lb is a balancer started by lbtest from the guide's Ingress, serving one h2c port and
// one TLS port in front of fake Milvus backends.
type lb struct {
	*lbtest.LB
	t       *testing.T
	plain   int
	tlsPort int
	ca      *certtest.CA
	model   *config.Model // a model edited by hand and applied to the gateway (weighted_test.go)
}

// apply applies l.model to the gateway, bypassing translation: for the routes no
// annotation of the guide's Ingress makes.
func (l *lb) apply() {
	l.t.Helper()
	if _, err := l.Plane.Gateway.Apply(context.Background(), l.model, nil); err != nil {
		l.t.Fatal(err)
	}
}

func startBackends(t *testing.T, n int, opts fakemilvus.Options) []*fakemilvus.Server {
	t.Helper()
	return lbtest.Backends(t, n, opts)
}

// newLB serves backends under host; annotations are set on the Ingress.
func newLB(t *testing.T, backends []*fakemilvus.Server, annotations map[string]string) *lb {
	t.Helper()
	l := lbtest.Start(t, lbtest.Options{Annotations: annotations}, lbtest.Addrs(backends)...)
	return &lb{LB: l, t: t, plain: l.Plain, tlsPort: l.TLS, ca: l.CA}
}

// dial returns a MilvusService client over one h2c connection, with the authority set to
// the Ingress host, as pymilvus does with server_name.
func (l *lb) dial(opts ...grpc.DialOption) (milvuspb.MilvusServiceClient, *grpc.ClientConn) {
	l.t.Helper()
	return l.Dial(l.t, false, opts...)
}

// dialTLS is dial over TLS with SNI host and the test CA, as the guide's client does.
func (l *lb) dialTLS(opts ...grpc.DialOption) milvuspb.MilvusServiceClient {
	l.t.Helper()
	c, _ := l.Dial(l.t, true, opts...)
	return c
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
