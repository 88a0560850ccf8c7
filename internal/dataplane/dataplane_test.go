package dataplane_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

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

// wait returns the records once there are n (a record is made when its call ends, which
// the client may see first), and fails if there are more.
func (r *records) wait(t *testing.T, n int) []call.Record {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		got := append([]call.Record(nil), r.all...)
		r.mu.Unlock()
		if len(got) == n {
			return got
		}
		if len(got) > n || time.Now().After(deadline) {
			t.Fatalf("the observer saw %d records, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A plane serves the configuration applied to it over TLS, tells its observer about every call
// (what the metrics are built on), and after Close no longer accepts connections.
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
	c := milvuspb.NewMilvusServiceClient(cc)
	md := metadata.AppendToOutgoingContext(ctx, "dbname", "db7", "client-request-id", "r-1", "authorization", "cm9vdDpNaWx2dXM=")
	if _, err := c.Search(md, &milvuspb.SearchRequest{CollectionName: "books", Nq: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.HasCollection(md, &milvuspb.HasCollectionRequest{DbName: "db9", CollectionName: "films"}); err != nil {
		t.Fatal(err)
	}
	recs := obs.wait(t, 3)
	if got := recs[0]; got.Method != "GetVersion" || got.Backend != lbtest.BackendKey || got.Code != codes.OK ||
		got.DB != "default" || got.Attempts != 1 || got.Endpoint != be.Addr() || got.TLSVersion < tls.VersionTLS12 {
		t.Errorf("observed %+v, want GetVersion to %s (%s) over TLS, OK, database default", got, lbtest.BackendKey, be.Addr())
	}
	if got := recs[1]; got.Method != "Search" || got.DB != "db7" || got.Collection != "books" || got.RequestID != "r-1" ||
		got.User != "root" || got.NQ != 1 {
		t.Errorf("Search recorded as %s by %q on %s.%s (request id %q, nq %d), want Search by root on db7.books, r-1, nq 1",
			got.Method, got.User, got.DB, got.Collection, got.RequestID, got.NQ)
	}
	if got := recs[2]; got.DB != "db9" || got.Collection != "films" {
		t.Errorf("a request's db_name must win over the dbname metadata, as in Milvus: recorded %s.%s", got.DB, got.Collection)
	}
	for _, r := range recs {
		if strings.Contains(fmt.Sprintf("%+v", r), "cm9vdDpNaWx2dXM") {
			t.Errorf("a record holds the credentials: %+v", r)
		}
	}

	dp.Close(time.Second)
	dp.Close(0) // a second Close does nothing
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("the TLS port still accepts connections after Close")
	}
}
