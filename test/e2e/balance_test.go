package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// TestPerRequestBalancingRealMilvus is the guide's reason to use a Layer-7 balancer, with
// real Milvus servers: one client connection, many calls, and the calls spread over both
// proxies (a Layer-4 balancer would pin them all to one). Then one proxy dies, and after at
// most a few failed calls every call goes to the other.
//
// The two milvus-lite servers have separate data; a collection that only the first one has
// tells which one answered each call.
func TestPerRequestBalancingRealMilvus(t *testing.T) {
	g := prepareGuide(t, testenv.FreePort(t))
	a, b := g.lite, testenv.StartMilvusLite(t)
	writeFile(t, g.milvusFile(), proxiesYAML(a.Port, b.Port))
	g.serve(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const marker = "only_on_a"
	if err := createCollection(ctx, dial(t, a.Addr, nil), marker); err != nil {
		t.Fatalf("create %s on proxy A: %v", marker, err)
	}

	client := dial(t, fmt.Sprintf("%s:%d", g.address, g.port), g.tlsConfig(t)) // one connection
	const calls = 40
	onA := 0
	for range calls {
		if hasCollection(ctx, t, client, marker) {
			onA++
		}
	}
	t.Logf("%d of %d calls on one connection reached proxy A", onA, calls)
	// Round robin (the default) alternates; allow for a health check or two in between.
	if onA < calls/4 || onA > calls*3/4 {
		t.Fatalf("%d of %d calls reached proxy A, %d proxy B: not balanced per call", onA, calls, calls-onA)
	}

	// Proxy B dies without a goodbye.
	b.Kill()
	failed, consecutiveA := 0, 0
	deadline := time.Now().Add(30 * time.Second)
	for consecutiveA < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("30 s after proxy B died: %d calls failed, last run of calls to A only %d long", failed, consecutiveA)
		}
		resp, err := client.HasCollection(ctx, &milvuspb.HasCollectionRequest{CollectionName: marker})
		switch {
		case err != nil && status.Code(err) == codes.Unavailable:
			// Calls in flight to, or picked for, the dead proxy before it is ejected.
			failed++
			consecutiveA = 0
		case err != nil:
			t.Fatalf("after proxy B died: HasCollection: %v (want UNAVAILABLE or success)", err)
		case !resp.GetValue():
			t.Fatalf("after proxy B died, a call still reached a proxy without %s", marker)
		default:
			consecutiveA++
		}
	}
	t.Logf("after proxy B died: %d calls failed with UNAVAILABLE, then 20 in a row reached proxy A", failed)
	if failed > 5 {
		t.Errorf("%d calls failed after proxy B died; a balancer should stop picking a refused endpoint sooner", failed)
	}
}
