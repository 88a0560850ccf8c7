package dataplane_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

type records struct {
	mu  sync.Mutex
	all []call.Record
}

func (r *records) Observe(rec *call.Record) {
	r.mu.Lock()
	r.all = append(r.all, *rec)
	r.mu.Unlock()
}

// A plane serves the configuration applied to it over TLS, tells its observer about every
// call (what the metrics are built on), and after Close no longer accepts connections.
func TestPlaneServesAndObserves(t *testing.T) {
	be := lbtest.Backends(t, 1, fakemilvus.Options{})[0]
	var obs records
	l := lbtest.Start(t, lbtest.Options{Observer: &obs}, be.Addr())
	dp := l.Plane

	addr := l.TLSAddr()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(l.ClientTLS())))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := milvuspb.NewMilvusServiceClient(cc).GetVersion(ctx, &milvuspb.GetVersionRequest{})
	if err != nil || resp.GetVersion() != "b0" {
		t.Fatalf("GetVersion through the plane: %v, %v; want the version of backend b0", resp, err)
	}
	// The record is made when the call ends, which the client may see first.
	deadline := time.Now().Add(5 * time.Second)
	for {
		obs.mu.Lock()
		n := len(obs.all)
		var got call.Record
		if n > 0 {
			got = obs.all[0]
		}
		obs.mu.Unlock()
		if n == 1 {
			if got.Method != "GetVersion" || got.Backend != lbtest.BackendKey || got.Code != codes.OK {
				t.Errorf("observed %+v, want GetVersion to %s, OK", got, lbtest.BackendKey)
			}
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("the observer saw %d records for one call", n)
		}
		time.Sleep(10 * time.Millisecond)
	}

	dp.Close(time.Second)
	dp.Close(0) // a second Close does nothing
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("the TLS port still accepts connections after Close")
	}
}
