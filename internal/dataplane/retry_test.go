package dataplane_test

import (
	"net"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

// A Milvus proxy that is not serving answers UNAVAILABLE ("not ready yet" while it
// starts), and one shutting down cancels the calls it has not started (grpc-python,
// milvus-lite's server, answers CANCELLED). Reads go to another endpoint and succeed; a
// write gets the proxy's own answer, because the balancer cannot know it was not applied.
func TestNotServingBackendReadsGoElsewhere(t *testing.T) {
	for _, tc := range []struct {
		code codes.Code
		msg  string
	}{{codes.Unavailable, "not ready yet"}, {codes.Canceled, "server shutting down"}} {
		t.Run(tc.code.String(), func(t *testing.T) { notServingReadsGoElsewhere(t, tc.code, tc.msg) })
	}
}

func notServingReadsGoElsewhere(t *testing.T, code codes.Code, msg string) {
	bs := startBackends(t, 2, fakemilvus.Options{})
	// Outlier detection off, so that the failing backend keeps taking its share; a retry
	// budget that this quick loop cannot use up.
	l := newLB(t, bs, map[string]string{"milvus-lb.io/outlier-detection": "disabled",
		"milvus-lb.io/retry-budget": "percent=20, min_per_second=1000"})
	bs[0].SetFailure(code, msg)
	c := l.dialTLS()
	ctx := ctxTimeout(t, 20*time.Second)
	for i := range 20 {
		if _, err := c.Search(ctx, searchReq(nil)); err != nil {
			t.Fatalf("search %d: %v; want it answered by the serving backend", i, err)
		}
		if _, err := c.HasCollection(ctx, &milvuspb.HasCollectionRequest{CollectionName: "c1"}); err != nil {
			t.Fatalf("has-collection %d: %v", i, err)
		}
	}
	var failed, ok int
	for range 10 {
		_, err := c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "c1", NumRows: 1})
		switch status.Code(err) {
		case codes.OK:
			ok++
		case code:
			failed++
			if s, _ := status.FromError(err); s.Message() != msg {
				t.Errorf("insert on the failing backend: %q, want the backend's own message %q", s.Message(), msg)
			}
		default:
			t.Fatalf("insert: %v", err)
		}
	}
	if failed == 0 || ok == 0 {
		t.Errorf("inserts: %d OK, %d %v; want both (round robin, writes never retried)", ok, failed, code)
	}
	if n := bs[0].Count("/milvus.proto.milvus.MilvusService/Insert") + bs[1].Count("/milvus.proto.milvus.MilvusService/Insert"); n != 10 {
		t.Errorf("backends saw %d inserts for 10 calls: a write was sent twice", n)
	}
}

// A proxy that is not serving may also answer gRPC OK with Milvus's "not ready" Status in
// the reply (code 1, ServiceNotReady). The balancer holds a read's reply headers until
// that Status is read, and sends the read to another endpoint; a write gets the reply as
// it came.
func TestNotReadyStatusReadsGoElsewhere(t *testing.T) {
	bs := startBackends(t, 2, fakemilvus.Options{})
	l := newLB(t, bs, map[string]string{"milvus-lb.io/outlier-detection": "disabled",
		"milvus-lb.io/retry-budget": "percent=20, min_per_second=1000"})
	bs[0].SetMilvusError(1, "service not ready")
	c := l.dialTLS()
	ctx := ctxTimeout(t, 20*time.Second)
	for i := range 20 {
		r, err := c.Search(ctx, searchReq(nil))
		if err != nil || r.GetStatus().GetCode() != 0 {
			t.Fatalf("search %d: %v, Milvus status %v; want it answered by the serving backend", i, err, r.GetStatus())
		}
		h, err := c.HasCollection(ctx, &milvuspb.HasCollectionRequest{CollectionName: "c1"})
		if err != nil || h.GetStatus().GetCode() != 0 {
			t.Fatalf("has-collection %d: %v, Milvus status %v", i, err, h.GetStatus())
		}
	}
	if n := bs[0].Count("/milvus.proto.milvus.MilvusService/Search"); n == 0 {
		t.Fatal("the backend that is not serving got no Search: nothing was retried")
	}
	var notReady, ok int
	for range 10 {
		r, err := c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "c1", NumRows: 1})
		switch {
		case err != nil:
			t.Fatalf("insert: %v", err)
		case r.GetStatus().GetCode() == 1:
			notReady++
		default:
			ok++
		}
	}
	if notReady == 0 || ok == 0 {
		t.Errorf("inserts: %d OK, %d not ready; want both (round robin, writes never retried)", ok, notReady)
	}
	if n := bs[0].Count("/milvus.proto.milvus.MilvusService/Insert") + bs[1].Count("/milvus.proto.milvus.MilvusService/Insert"); n != 10 {
		t.Errorf("backends saw %d inserts for 10 calls: a write was sent twice", n)
	}
}

// A server that stops closes its listening socket, and the kernel resets the connections
// still in its accept queue: connections it never read. The balancer writes a call on a
// new connection right after its preface, before the server's SETTINGS come (RFC 9113
// §3.4), so such a reset cuts calls the server never saw, writes too, and they go to
// another endpoint; so do those above the last stream id of a GOAWAY. Once the server
// has sent its SETTINGS it may have read the call: a write cut then fails, UNAVAILABLE,
// and is not sent again.
func TestUnreadWritesGoElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name             string
		settings, goAway bool
	}{{"reset unread", false, false}, {"goaway before it", true, true}, {"reset after settings", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			good := startBackends(t, 1, fakemilvus.Options{})[0]
			l := lbtest.Start(t, lbtest.Options{Annotations: map[string]string{
				"milvus-lb.io/outlier-detection": "disabled",
				"milvus-lb.io/retry-budget":      "percent=20, min_per_second=1000"}},
				closingBackend(t, tc.settings, tc.goAway), good.Addr())
			c, _ := l.Dial(t, false)
			ctx := ctxTimeout(t, 30*time.Second)
			unread := !tc.settings || tc.goAway
			ok := 0
			for i := range 10 {
				_, err := c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "c1", NumRows: 1})
				switch {
				case err == nil:
					ok++
				case unread:
					t.Errorf("insert %d: %v; want it sent to the other endpoint", i, err)
				case status.Code(err) != codes.Unavailable:
					t.Errorf("insert %d: %v; want UNAVAILABLE", i, err)
				}
			}
			if n := good.Count("/milvus.proto.milvus.MilvusService/Insert"); n != int64(ok) {
				t.Errorf("the serving backend took %d Inserts, %d succeeded", n, ok)
			}
			if !unread && (ok == 0 || ok == 10) {
				t.Errorf("%d of 10 Inserts succeeded; want those sent to the closing endpoint (round robin) failed", ok)
			}
		})
	}
}

// closingBackend accepts connections, sends an empty SETTINGS frame if settings, and
// reads until nothing has come for 100 ms. Then it sends GOAWAY with last stream id 0
// and closes the connection if goAway, else resets it (SO_LINGER 0).
func closingBackend(t *testing.T, settings, goAway bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				fr := http2.NewFramer(nc, nil)
				if settings {
					_ = fr.WriteSettings()
				}
				buf := make([]byte, 64<<10)
				for {
					_ = nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
					if _, err := nc.Read(buf); err != nil {
						break
					}
				}
				if goAway {
					_ = fr.WriteGoAway(0, http2.ErrCodeNo, nil)
				} else {
					_ = nc.(*net.TCPConn).SetLinger(0)
				}
				nc.Close()
			}()
		}
	}()
	return ln.Addr().String()
}
