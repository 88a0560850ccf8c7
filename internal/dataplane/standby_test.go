package dataplane_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// editBackend applies the model with blue's or green's backend changed by edit.
func (l *lb) editBackend(key string, edit func(*config.Backend)) {
	l.t.Helper()
	m := *l.model
	m.Backends = maps.Clone(m.Backends)
	be := *m.Backends[key]
	edit(&be)
	m.Backends[key] = &be
	l.model = &m
	l.apply()
}

// The primary (blue) has a standby (green): reads that accept stale data go there, the
// rest of the calls stay on the primary.
func TestStandbyTakesStaleReads(t *testing.T) {
	l, blue, green := routed(t, nil)
	l.editBackend(blueKey, func(b *config.Backend) { b.Standby = &config.Standby{Backend: greenKey, Weight: 100} })
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	for _, lvl := range []commonpb.ConsistencyLevel{commonpb.ConsistencyLevel_Bounded, commonpb.ConsistencyLevel_Eventually} {
		search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: "c1", ConsistencyLevel: lvl})
	}
	wentTo(t, blue, green, 0, 2)
	for _, lvl := range []commonpb.ConsistencyLevel{commonpb.ConsistencyLevel_Strong, commonpb.ConsistencyLevel_Session} {
		search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: "c1", ConsistencyLevel: lvl})
	}
	search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: "c1", ConsistencyLevel: commonpb.ConsistencyLevel_Bounded, UseDefaultConsistency: true})
	wentTo(t, blue, green, 3, 0)
	if _, err := c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "c1", NumRows: 1}); err != nil {
		t.Fatal(err)
	}
	if n := green.Count("/milvus.proto.milvus.MilvusService/Insert"); n != 0 {
		t.Errorf("the standby got %d writes", n)
	}

	// Shared by weight: 30 % of the stale-tolerant reads.
	l.editBackend(blueKey, func(b *config.Backend) { b.Standby.Weight = 30 })
	for range 100 {
		search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: "c1", ConsistencyLevel: commonpb.ConsistencyLevel_Eventually})
	}
	wentTo(t, blue, green, 70, 30)
}

// When one side has no endpoint: the standby's reads go to the primary; with the primary
// gone, reads of every level keep working on the standby, and writes fail naming the
// primary.
func TestStandbyWhenASideIsDown(t *testing.T) {
	l, blue, green := routed(t, nil)
	l.editBackend(blueKey, func(b *config.Backend) { b.Standby = &config.Standby{Backend: greenKey, Weight: 100} })
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)

	greenEndpoints := l.model.Backends[greenKey].Endpoints
	l.editBackend(greenKey, func(b *config.Backend) { b.Endpoints = nil })
	search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: "c1", ConsistencyLevel: commonpb.ConsistencyLevel_Bounded})
	wentTo(t, blue, green, 1, 0)

	l.editBackend(greenKey, func(b *config.Backend) { b.Endpoints = greenEndpoints })
	l.editBackend(blueKey, func(b *config.Backend) { b.Endpoints = nil })
	for _, lvl := range []commonpb.ConsistencyLevel{commonpb.ConsistencyLevel_Strong, commonpb.ConsistencyLevel_Bounded} {
		search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: "c1", ConsistencyLevel: lvl})
	}
	wentTo(t, blue, green, 0, 2)
	_, err := c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "c1", NumRows: 1})
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "milvus-blue") {
		t.Errorf("a write with the primary down: %v; want UNAVAILABLE naming milvus-blue", err)
	}
}
