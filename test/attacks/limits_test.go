package attacks

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
)

// The limits of docs/limits.md, as a gRPC client sees them.

func wantStatus(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Errorf("%s: %v; want %v with %q", what, err, code, msg)
	}
}

func TestMessageSizeLimits(t *testing.T) {
	l := newLB(t, testOptions(), call.Limits{MaxRequestMessageBytes: 1 << 20, MaxResponseMessageBytes: 2 << 20})
	for _, useTLS := range []bool{false, true} {
		c, _ := l.dial(t, useTLS)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		before := l.backend.Count("Insert")
		_, err := c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "c1", PartitionName: strings.Repeat("p", 1<<20)})
		wantStatus(t, "request over the limit", err, codes.ResourceExhausted, "request message larger than 1MiB")
		if n := l.backend.Count("Insert") - before; n != 0 {
			t.Errorf("the backend received %d inserts over the limit", n)
		}
		if _, err := c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "c1", PartitionName: strings.Repeat("p", 1<<19)}); err != nil {
			t.Errorf("request under the limit: %v", err)
		}
		search := func(n int) error {
			_, err := c.Search(ctx, &milvuspb.SearchRequest{CollectionName: "c1", Nq: 1,
				SearchParams: []*commonpb.KeyValuePair{{Key: fakemilvus.ParamResultBytes, Value: strconv.Itoa(n)}}})
			return err
		}
		wantStatus(t, "response over the limit", search(3<<20), codes.ResourceExhausted, "response message larger than 2MiB")
		if err := search(1 << 20); err != nil {
			t.Errorf("response under the limit: %v", err)
		}
	}
}

// TestHeaderListLimit: a header list over max-header-list-size is refused. The balancer
// announces the limit in SETTINGS_MAX_HEADER_LIST_SIZE, so grpc-go refuses to send it;
// the raw case (a client that sends it anyway) is in TestHugeHeaderList.
func TestHeaderListLimit(t *testing.T) {
	o := testOptions()
	o.MaxHeaderBytes = 64 << 10
	l := newLB(t, o, call.DefaultLimits())
	c, _ := l.dial(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
		t.Fatal(err)
	}
	big := metadata.AppendToOutgoingContext(ctx, "x-big", strings.Repeat("b", 100<<10))
	_, err := c.GetVersion(big, &milvuspb.GetVersionRequest{})
	if err == nil {
		t.Fatal("a 100 KiB header list passed a 64 KiB limit")
	}
	t.Logf("100 KiB of metadata against a 64 KiB limit: %v", err)
	if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
		t.Errorf("after a refused header list, the connection no longer serves: %v", err)
	}
}

func TestMaxConnections(t *testing.T) {
	o := testOptions()
	o.MaxConnections = 8
	l := newLB(t, o, call.DefaultLimits())
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range o.MaxConnections {
		c, err := net.Dial("tcp", l.plainAddr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	waitFor(t, "the balancer to count the held connections", func() bool { return l.lm.ConnStats().Open == int64(o.MaxConnections) })
	// One more: accepted and reset at once; on loopback the reset may even beat the end
	// of the client's connect.
	start := time.Now()
	if c, err := net.Dial("tcp", l.plainAddr()); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if err == nil || isTimeout(err) {
			t.Fatalf("a connection over the limit was not closed: %v", err)
		}
	}
	t.Logf("connection over the limit refused after %v", time.Since(start).Round(time.Millisecond))
	waitFor(t, "the rejection to be counted", func() bool { return l.lm.ConnStats().Rejected == 1 })
	if s := l.lm.ConnStats(); s.Rejected != 1 {
		t.Errorf("rejected = %d, want 1", s.Rejected)
	}
	// Room again once one goes.
	held[0].Close()
	held = held[1:]
	waitFor(t, "a slot to free", func() bool { return l.lm.ConnStats().Open < int64(o.MaxConnections) })
	cl, _ := l.dial(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
		t.Errorf("a client under the limit is not served: %v", err)
	}
}

// TestIdleTimeout: a connection with no call in flight whose client pings every few
// seconds (pymilvus does, every 5-10 s) stays; one whose client is silent is closed after
// the idle timeout, though it answers the balancer's own pings.
func TestIdleTimeout(t *testing.T) {
	o := testOptions()
	o.IdleTimeout = 3 * time.Second
	o.PingInterval = 1500 * time.Millisecond // the balancer pings the silent client twice
	l := newLB(t, o, call.DefaultLimits())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	// grpc-go will not ping more often than every 10 s, so the pinging client is raw: a
	// PING every 400 ms (pymilvus's interval scaled as the test's timeouts are), acks read.
	pinger, err := l.dialRaw(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	defer pinger.Close()
	pingerClosed := make(chan string, 1)
	go func() {
		how, _ := pinger.closedBy(time.Now().Add(10*time.Second), 0)
		pingerClosed <- how
	}()
	stopPings := make(chan struct{})
	defer close(stopPings)
	go func() {
		tick := time.NewTicker(400 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopPings:
				return
			case <-tick.C:
			}
			if pinger.fr.WritePing(false, [8]byte{'p'}) != nil || pinger.bw.Flush() != nil {
				return
			}
		}
	}()
	silent, _ := l.dial(t, false)
	if _, err := silent.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
		t.Fatal(err)
	}
	wait := o.IdleTimeout + 1500*time.Millisecond
	select {
	case how := <-pingerClosed:
		t.Fatalf("the pinging client's connection was closed: %s", how)
	case <-time.After(wait):
	}
	s := l.lm.ConnStats()
	t.Logf("after %v without calls: %+v", wait, s)
	if s.IdleClosed != 1 {
		t.Errorf("%d connections closed as idle, want 1 (the silent one)", s.IdleClosed)
	}
	// The silent client reconnects transparently on its next call.
	if _, err := silent.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
		t.Errorf("silent client after its connection was closed as idle: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
