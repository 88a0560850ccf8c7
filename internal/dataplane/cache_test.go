package dataplane_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
)

// cached starts one fake backend behind a balancer whose Ingress has milvus-lb.io/cache.
const describeMethod = "/milvus.proto.milvus.MilvusService/DescribeCollection"

func cached(t *testing.T, settings string) (milvuspb.MilvusServiceClient, *fakemilvus.Server) {
	t.Helper()
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, map[string]string{ingress.AnnotationCache: settings})
	c, _ := l.dial()
	return c, bs[0]
}

func searchAt(level commonpb.ConsistencyLevel, guarantee uint64) *milvuspb.SearchRequest {
	return &milvuspb.SearchRequest{CollectionName: "c1", Dsl: "id > 0", Nq: 1,
		SearchParams:       []*commonpb.KeyValuePair{{Key: "topk", Value: "3"}},
		ConsistencyLevel:   level,
		GuaranteeTimestamp: guarantee,
		Base:               &commonpb.MsgBase{MsgID: time.Now().UnixNano()}}
}

// A repeated Search is answered without reaching the backend, with the same reply; a
// Strong one always reaches it.
func TestCacheAnswersRepeatedSearch(t *testing.T) {
	c, be := cached(t, `{}`)
	ctx := ctxTimeout(t, 20*time.Second)
	first, err := c.Search(ctx, searchAt(commonpb.ConsistencyLevel_Eventually, 1))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Search(ctx, searchAt(commonpb.ConsistencyLevel_Eventually, 1))
	if err != nil {
		t.Fatal(err)
	}
	if n := be.Count(searchMethod); n != 1 {
		t.Fatalf("backend got %d searches, want 1: the second one was not answered from the cache", n)
	}
	if !proto.Equal(first, second) {
		t.Fatalf("the cached reply differs:\n%v\n%v", first, second)
	}
	for range 2 {
		if _, err := c.Search(ctx, searchAt(commonpb.ConsistencyLevel_Strong, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if n := be.Count(searchMethod); n != 3 {
		t.Fatalf("backend got %d searches, want 3: a Strong search was answered from the cache", n)
	}
}

// Session: an entry made before the last write the client saw is not served.
func TestCacheSessionGuarantee(t *testing.T) {
	c, be := cached(t, `{}`)
	ctx := ctxTimeout(t, 20*time.Second)
	before := uint64(time.Now().Add(-time.Minute).UnixMilli()) << 18
	for range 2 {
		if _, err := c.Search(ctx, searchAt(commonpb.ConsistencyLevel_Session, before)); err != nil {
			t.Fatal(err)
		}
	}
	if n := be.Count(searchMethod); n != 1 {
		t.Fatalf("backend got %d searches, want 1", n)
	}
	later := uint64(time.Now().Add(time.Minute).UnixMilli()) << 18
	if _, err := c.Search(ctx, searchAt(commonpb.ConsistencyLevel_Session, later)); err != nil {
		t.Fatal(err)
	}
	if n := be.Count(searchMethod); n != 2 {
		t.Fatalf("backend got %d searches, want 2: an entry older than the client's last write was served", n)
	}
}

// Bounded: an entry is served within the bound only.
func TestCacheBoundedExpiry(t *testing.T) {
	c, be := cached(t, `{"boundedStaleness":"1s"}`)
	ctx := ctxTimeout(t, 20*time.Second)
	// The entry is dated when the balancer took the first call: after start, before
	// stored (the first call's return).
	start := time.Now()
	var stored time.Time
	for range 2 {
		if _, err := c.Search(ctx, searchAt(commonpb.ConsistencyLevel_Bounded, 2)); err != nil {
			t.Fatal(err)
		}
		if stored.IsZero() {
			stored = time.Now()
		}
	}
	if n := be.Count(searchMethod); n != 1 && time.Since(start) < time.Second {
		t.Fatalf("backend got %d searches within the bound, want 1", n)
	}
	time.Sleep(time.Until(stored.Add(1100 * time.Millisecond)))
	if _, err := c.Search(ctx, searchAt(commonpb.ConsistencyLevel_Bounded, 2)); err != nil {
		t.Fatal(err)
	}
	if n := be.Count(searchMethod); n < 2 {
		t.Fatalf("backend got %d searches, want 2: an entry older than the bound was served", n)
	}
}

// A write through the balancer drops the entries it may change before its reply reaches
// the client; users do not share entries; failed replies are not stored.
func TestCacheWriteInvalidatesAndUsers(t *testing.T) {
	c, be := cached(t, `{}`)
	ctx := ctxTimeout(t, 20*time.Second)
	alice := metadata.AppendToOutgoingContext(ctx, "authorization", base64.StdEncoding.EncodeToString([]byte("alice:pw")))
	bob := metadata.AppendToOutgoingContext(ctx, "authorization", base64.StdEncoding.EncodeToString([]byte("bob:pw")))
	do := func(ctx context.Context) {
		t.Helper()
		if _, err := c.Search(ctx, searchAt(commonpb.ConsistencyLevel_Eventually, 1)); err != nil {
			t.Fatal(err)
		}
	}
	do(alice)
	do(alice)
	do(bob)
	if n := be.Count(searchMethod); n != 2 {
		t.Fatalf("backend got %d searches, want 2 (one per user)", n)
	}
	if _, err := c.Insert(alice, &milvuspb.InsertRequest{CollectionName: "c1", NumRows: 1}); err != nil {
		t.Fatal(err)
	}
	do(alice)
	if n := be.Count(searchMethod); n != 3 {
		t.Fatalf("backend got %d searches, want 3: a search after an insert was answered from the cache", n)
	}

	want := func(n int64, why string) {
		t.Helper()
		if got := be.Count(searchMethod); got != n {
			t.Fatalf("backend got %d searches, want %d: %s", got, n, why)
		}
	}
	be.SetMilvusError(100, "collection not loaded")
	do(bob) // bob's entry was made before the insert: dropped with alice's
	want(4, "an entry from before an insert was served")
	do(bob)
	want(5, "a failed reply was stored and served")
	be.SetMilvusError(0, "")
	do(bob)
	do(bob)
	want(6, "a successful reply after failed ones was not stored")
}

// A reply over maxEntryBytes is never stored.
func TestCacheEntryCap(t *testing.T) {
	c, be := cached(t, `{"maxEntryBytes":"4Ki"}`)
	ctx := ctxTimeout(t, 20*time.Second)
	big := searchAt(commonpb.ConsistencyLevel_Eventually, 1)
	big.SearchParams = append(big.SearchParams, &commonpb.KeyValuePair{Key: fakemilvus.ParamResultBytes, Value: "8192"})
	for range 2 {
		if _, err := c.Search(ctx, big); err != nil {
			t.Fatal(err)
		}
	}
	if n := be.Count(searchMethod); n != 2 {
		t.Fatalf("backend got %d searches, want 2: a reply over maxEntryBytes was stored", n)
	}
}

// Each kind of DDL through the balancer drops the searches and descriptions it may change.
func TestCacheDDLInvalidates(t *testing.T) {
	c, be := cached(t, `{}`)
	ctx := ctxTimeout(t, 30*time.Second)
	for _, tc := range []struct {
		name string
		ddl  func() error
	}{
		{"create", func() error {
			_, err := c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: "c1"})
			return err
		}},
		{"release", func() error {
			_, err := c.ReleaseCollection(ctx, &milvuspb.ReleaseCollectionRequest{CollectionName: "c1"})
			return err
		}},
		{"index", func() error {
			_, err := c.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: "c1", FieldName: "v"})
			return err
		}},
		{"alias", func() error {
			_, err := c.AlterAlias(ctx, &milvuspb.AlterAliasRequest{CollectionName: "c2", Alias: "c1"})
			return err
		}},
		{"rename", func() error {
			_, err := c.RenameCollection(ctx, &milvuspb.RenameCollectionRequest{OldName: "c0", NewName: "c1"})
			return err
		}},
		{"drop", func() error {
			_, err := c.DropCollection(ctx, &milvuspb.DropCollectionRequest{CollectionName: "c1"})
			return err
		}},
	} {
		for range 2 {
			if _, err := c.Search(ctx, searchAt(commonpb.ConsistencyLevel_Eventually, 1)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: "c1"}); err != nil {
				t.Fatal(err)
			}
		}
		searches, describes := be.Count(searchMethod), be.Count(describeMethod)
		if err := tc.ddl(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if _, err := c.Search(ctx, searchAt(commonpb.ConsistencyLevel_Eventually, 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: "c1"}); err != nil {
			t.Fatal(err)
		}
		// Both were in the cache before the DDL; after it, both reach the backend. (Drop
		// is last: a description of a collection that is not there is an error, never
		// stored.)
		if n := be.Count(searchMethod) - searches; n != 1 {
			t.Errorf("%s: the search after it was answered from the cache", tc.name)
		}
		if n := be.Count(describeMethod) - describes; n != 1 {
			t.Errorf("%s: the description after it was answered from the cache", tc.name)
		}
	}
}

// Under a stream of distinct searches the cache stays within maxBytes.
func TestCacheStaysWithinMaxBytes(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, map[string]string{ingress.AnnotationCache: `{"maxBytes":"16Ki","maxEntryBytes":"4Ki"}`})
	c, _ := l.dial()
	ctx := ctxTimeout(t, 30*time.Second)
	for i := range 300 {
		req := searchAt(commonpb.ConsistencyLevel_Eventually, 1)
		req.Dsl = "id > " + strconv.Itoa(i)
		if _, err := c.Search(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	for ing, ch := range l.Plane.Gateway.Current().Caches {
		st := ch.Store.Stats()
		t.Logf("%s: %+v", ing, st)
		if st.Bytes > 16<<10 || st.Evictions == 0 || st.Stores != 300 {
			t.Fatalf("%s holds %d bytes (max 16Ki) after %d stores, %d evictions", ing, st.Bytes, st.Stores, st.Evictions)
		}
	}
}

// A REST write through the balancer drops the gRPC calls' entries too (its names are in a
// JSON body that is not read: every entry of the backend).
func TestCacheRESTWriteInvalidates(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{REST: true})
	l := newLB(t, bs, map[string]string{ingress.AnnotationCache: `{}`})
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	for range 2 {
		if _, err := c.Search(ctx, searchAt(commonpb.ConsistencyLevel_Eventually, 1)); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(l.plain)+"/v2/vectordb/entities/insert",
		strings.NewReader(`{"collectionName":"c1","data":[{"id":1}]}`))
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if _, err := c.Search(ctx, searchAt(commonpb.ConsistencyLevel_Eventually, 1)); err != nil {
		t.Fatal(err)
	}
	if n := bs[0].Count(searchMethod); n != 2 {
		t.Fatalf("backend got %d searches, want 2: a search after a REST insert was answered from the cache", n)
	}
}

// The cache works without retries too (the request is kept for the lookup, not only for
// a replay).
func TestCacheWithoutRetries(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, map[string]string{ingress.AnnotationCache: `{}`, ingress.AnnotationMaxAttempts: "1"})
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	for range 2 {
		if _, err := c.Search(ctx, searchAt(commonpb.ConsistencyLevel_Eventually, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := bs[0].Count(searchMethod); n != 1 {
		t.Fatalf("backend got %d searches, want 1", n)
	}
}
