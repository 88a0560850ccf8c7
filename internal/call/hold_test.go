package call

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/protobuf/proto"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

func framed(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(b))), b...)
}

// The decision waits for the names its routes read, taking the request's bytes as they
// come, and is made as soon as they are read: not before, not later.
func TestHoldDecidesOnceTheNamesAreRead(t *testing.T) {
	p := routedPort(t, nil, config.Route{Backend: "b", Conditions: []config.Condition{cond(config.FieldDatabase, "tenant_b")}}, config.Route{Backend: "a"})
	msg := framed(t, &milvuspb.SearchRequest{DbName: "tenant_b", CollectionName: "c1", Dsl: "x > 1"})
	var c Call
	c.Begin(p, grpcRequest("Search").Path, true, time.Now())
	if d := c.Route(grpcRequest("Search")); !d.Wait {
		t.Fatalf("decided at the headers: %+v", d)
	}
	if _, ready := c.Hold(msg[:8], false); ready {
		t.Fatal("decided before the database was read")
	}
	d, ready := c.Hold(msg[8:20], false)
	if !ready || !d.Go() || c.Backend().Key != "b" {
		t.Fatalf("ready %v, %+v, backend %v; want b once db_name is read", ready, d, c.Backend())
	}
}

// A request that ends, or a data path that may hold no more, decides with what was read:
// the names not read are unknown, and their conditions do not hold.
func TestHoldLastDecidesWithWhatWasRead(t *testing.T) {
	p := routedPort(t, nil, config.Route{Backend: "b", Conditions: []config.Condition{cond(config.FieldCollection, "c*")}}, config.Route{Backend: "a"})
	msg := framed(t, &milvuspb.SearchRequest{CollectionName: "c1"})
	var c Call
	c.Begin(p, grpcRequest("Search").Path, true, time.Now())
	c.Route(grpcRequest("Search"))
	if d, ready := c.Hold(msg[:3], true); !ready || !d.Go() || c.Backend().Key != "a" {
		t.Fatalf("ready %v, %+v, backend %v; want a", ready, d, c.Backend())
	}
}

// Past HoldLimit bytes the decision is made without the names that did not come.
func TestHoldLimit(t *testing.T) {
	p := routedPort(t, nil, config.Route{Backend: "b", Conditions: []config.Condition{cond(config.FieldConsistency, "Bounded")}}, config.Route{Backend: "a"})
	big := make([]byte, 100<<10)
	msg := framed(t, &milvuspb.SearchRequest{CollectionName: "c1", Dsl: string(big), ConsistencyLevel: 2})
	var c Call
	c.Begin(p, grpcRequest("Search").Path, true, time.Now())
	c.Route(grpcRequest("Search"))
	if _, ready := c.Hold(msg[:HoldLimit-1], false); ready {
		t.Fatal("decided before HoldLimit")
	}
	if d, ready := c.Hold(msg[HoldLimit-1:HoldLimit], false); !ready || !d.Go() || c.Backend().Key != "a" {
		t.Fatalf("ready %v, %+v, backend %v; want a at HoldLimit", ready, d, c.Backend())
	}
}

// Over its limit a held call is answered with Milvus's reply, and has no backend.
func TestHoldRateLimited(t *testing.T) {
	p := routedPort(t, []config.RateLimit{{Name: "c1", Collections: []string{"c1"}, Calls: 0.001, Burst: 1000}}, config.Route{Backend: "a"})
	msg := framed(t, &milvuspb.SearchRequest{CollectionName: "c1"})
	for i, wantReply := range []bool{false, true} {
		var c Call
		c.Begin(p, grpcRequest("Search").Path, true, time.Now())
		if d := c.Route(grpcRequest("Search")); !d.Wait {
			t.Fatalf("call %d decided at the headers", i)
		}
		d, ready := c.Hold(msg, false)
		if !ready || (d.Reply != nil) != wantReply || d.Go() == wantReply || (c.Backend() == nil) != wantReply {
			t.Errorf("call %d: ready %v, %+v; want reply %v", i, ready, d, wantReply)
		}
	}
}

// The Route step of a Search, with the relay's part of holding (giving the first message
// to Hold): on a route without Milvus conditions, and on one with a collection condition
// (the budget: 3 µs of CPU per Search more). Not the bytes' queueing, which the
// relay does for every call until it connects.
func BenchmarkRouteHold(b *testing.B) {
	vec := make([]byte, 3<<10)
	msg := framed(b, &milvuspb.SearchRequest{DbName: "default", CollectionName: "books", Dsl: "id > 0", Nq: 1,
		SearchInput: &milvuspb.SearchRequest_PlaceholderGroup{PlaceholderGroup: vec}})
	for _, bc := range []struct {
		name   string
		routes []config.Route
	}{
		{"no conditions", []config.Route{{Backend: "a"}}},
		{"collection", []config.Route{{Backend: "b", Conditions: []config.Condition{cond(config.FieldCollection, "logs_*")}}, {Backend: "a"}}},
	} {
		p := routedPort(b, nil, bc.routes...)
		req := grpcRequest("Search")
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var c Call
				c.Begin(p, req.Path, true, time.Time{})
				if d := c.Route(req); d.Wait {
					if _, ready := c.Hold(msg, true); !ready {
						b.Fatal("not decided")
					}
				}
			}
		})
	}
}
