package relay_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/milvus-lb/milvus-lb/internal/relay"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

// Clients that call less often than connections park (many clients, a call now and
// then each) have every call served on a parked connection. The finished stream of such
// a call serves the next call of any connection: calls in turn on parked connections,
// over TLS and h2c, make no new stream. Before, each such call allocated its stream
// (1.1 KB), half of what that workload allocated.
func TestParkedConnectionsShareStreams(t *testing.T) {
	l := lbtest.Start(t, lbtest.Options{}, lbtest.Addrs(lbtest.Backends(t, 1, fakemilvus.Options{NoRecord: true}))...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var clients []milvuspb.MilvusServiceClient
	for i := range 4 {
		c, _ := l.Dial(t, i%2 == 0)
		clients = append(clients, c)
	}
	call := func(c milvuspb.MilvusServiceClient) {
		t.Helper()
		if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	// The first call dials the backend, and the dial keeps its stream (pinned, reuse.go).
	call(clients[0])
	before := len(relay.SpareStreams())
	for _, c := range clients {
		call(c)
	}
	// Each call took a spare stream if one was kept (calls in turn) and gave it back.
	spares := waitSpares(t, max(before, len(clients)))
	for round := range 3 {
		for i, c := range clients {
			call(c)
			// The same streams, in any order: a connection parking while waitSpares
			// takes the list out and puts it back lands below the others.
			if got := waitSpares(t, len(spares)); !sameStreams(got, spares) {
				t.Fatalf("round %d, client %d: the spare streams changed after a call on a parked connection (%d kept, %d before): a stream was made for it",
					round+1, i+1, len(got), len(spares))
			}
		}
	}
}

// sameStreams reports whether a and b hold the same streams.
func sameStreams(a, b []any) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(st any) bool { return !slices.Contains(b, st) })
}

// waitSpares waits until the relay keeps n spare streams (the connections of the calls
// parked), and returns them.
func waitSpares(t *testing.T, n int) []any {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := relay.SpareStreams()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("%d spare streams, want %d", len(got), n)
			}
			return got
		}
	}
}
