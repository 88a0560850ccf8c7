package milvus

import (
	"bytes"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/proto"
)

func cacheKeyOf(t *testing.T, method string, msg proto.Message) ([]byte, CacheRequest) {
	t.Helper()
	b, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	key, r, ok := CacheKey(nil, methods[method], b)
	if !ok {
		t.Fatalf("CacheKey(%s) not ok", method)
	}
	return key, r
}

// The base header and guarantee_timestamp change from call to call without changing the
// answer: two such calls have one key. Anything else that differs makes another key.
func TestCacheKeyLeavesOutBaseAndGuarantee(t *testing.T) {
	a := pymilvusSearch(1, 8, commonpb.ConsistencyLevel_Session, false)
	a.Base = &commonpb.MsgBase{MsgID: 1, Timestamp: 100}
	a.GuaranteeTimestamp = 5 << 18
	b := proto.Clone(a).(*milvuspb.SearchRequest)
	b.Base = &commonpb.MsgBase{MsgID: 2, Timestamp: 200}
	b.GuaranteeTimestamp = 9 << 18
	ka, ra := cacheKeyOf(t, "Search", a)
	kb, rb := cacheKeyOf(t, "Search", b)
	if !bytes.Equal(ka, kb) {
		t.Fatal("keys differ by base and guarantee_timestamp")
	}
	if ra.Guarantee != 5<<18 || rb.Guarantee != 9<<18 {
		t.Fatalf("guarantee %d %d", ra.Guarantee, rb.Guarantee)
	}
	want := CacheRequest{Names: Names{DB: "db1", Collection: "books"}, Consistency: "Session", HasLevel: true, Guarantee: 5 << 18}
	if ra != want {
		t.Fatalf("request %+v, want %+v", ra, want)
	}
	c := proto.Clone(a).(*milvuspb.SearchRequest)
	c.Dsl = "year > 2001"
	if kc, _ := cacheKeyOf(t, "Search", c); bytes.Equal(ka, kc) {
		t.Fatal("another filter has the same key")
	}
	d := proto.Clone(a).(*milvuspb.SearchRequest)
	d.ConsistencyLevel = commonpb.ConsistencyLevel_Eventually
	if kd, _ := cacheKeyOf(t, "Search", d); bytes.Equal(ka, kd) {
		t.Fatal("another consistency level has the same key")
	}
}

func TestCacheKeyLevels(t *testing.T) {
	_, r := cacheKeyOf(t, "Search", pymilvusSearch(1, 8, 0, true))
	if r.Consistency != "" || !r.HasLevel {
		t.Fatalf("use_default: %+v", r)
	}
	_, r = cacheKeyOf(t, "Query", &milvuspb.QueryRequest{CollectionName: "c", Expr: "id > 0", ConsistencyLevel: commonpb.ConsistencyLevel_Strong})
	if r.Consistency != "Strong" || r.Collection != "c" {
		t.Fatalf("query: %+v", r)
	}
	_, r = cacheKeyOf(t, "DescribeCollection", &milvuspb.DescribeCollectionRequest{DbName: "d", CollectionName: "c"})
	if r.HasLevel || r.Consistency != "" || r.Names != (Names{"d", "c"}) {
		t.Fatalf("describe: %+v", r)
	}
}

func TestCacheKeyIterator(t *testing.T) {
	_, r := cacheKeyOf(t, "Query", &milvuspb.QueryRequest{CollectionName: "c", QueryParams: []*commonpb.KeyValuePair{kv("limit", "10"), kv("iterator", "True")}})
	if !r.Iterator {
		t.Fatal("a query iterator's call not seen")
	}
	_, r = cacheKeyOf(t, "Search", pymilvusSearch(1, 8, 0, true))
	if r.Iterator {
		t.Fatal("a search taken for an iterator's")
	}
}

func TestCacheKeyBad(t *testing.T) {
	if _, _, ok := CacheKey(nil, methods["Search"], []byte{0x12, 0x10, 'a'}); ok {
		t.Fatal("a cut message was read")
	}
}

func TestReadCacheReply(t *testing.T) {
	b, _ := proto.Marshal(&milvuspb.SearchResults{Status: &commonpb.Status{}, CollectionName: "c", SessionTs: 42})
	if r := ReadCacheReply(methods["Search"], b); r.SessionTS != 42 {
		t.Fatalf("search reply %+v", r)
	}
	b, _ = proto.Marshal(&milvuspb.DescribeCollectionResponse{CollectionName: "c", DbName: "d", ConsistencyLevel: commonpb.ConsistencyLevel_Bounded})
	if r := ReadCacheReply(methods["DescribeCollection"], b); r.Consistency != "Bounded" || r.Names != (Names{"d", "c"}) {
		t.Fatalf("describe reply %+v", r)
	}
	b, _ = proto.Marshal(&milvuspb.DescribeCollectionResponse{CollectionName: "c"})
	if r := ReadCacheReply(methods["DescribeCollection"], b); r.Consistency != "Strong" || r.Resolved != "" {
		t.Fatalf("describe reply without a level %+v", r)
	}
	// An alias described: Milvus gives the name asked for, and the collection's in the schema.
	b, _ = proto.Marshal(&milvuspb.DescribeCollectionResponse{CollectionName: "latest", Aliases: []string{"latest"},
		Schema: &schemapb.CollectionSchema{Name: "books", Fields: []*schemapb.FieldSchema{{Name: "id"}}}})
	if r := ReadCacheReply(methods["DescribeCollection"], b); r.Collection != "latest" || r.Resolved != "books" {
		t.Fatalf("describe reply of an alias %+v", r)
	}
}

func TestInvalidates(t *testing.T) {
	for name, want := range map[string]Invalidation{
		"Search": InvalidateNone, "DescribeCollection": InvalidateNone, "ShowCollections": InvalidateNone,
		"Insert": InvalidateCollection, "Upsert": InvalidateCollection, "Delete": InvalidateCollection, "Import": InvalidateCollection,
		"Flush":          InvalidateDatabase,
		"DropCollection": InvalidateCollectionDDL, "CreateCollection": InvalidateCollectionDDL, "ReleaseCollection": InvalidateCollectionDDL,
		"LoadCollection": InvalidateCollectionDDL, "CreateIndex": InvalidateCollectionDDL, "DropIndex": InvalidateCollectionDDL,
		"TruncateCollection": InvalidateCollectionDDL, "DropPartition": InvalidateCollectionDDL,
		"CreateAlias": InvalidateDatabase, "AlterAlias": InvalidateDatabase, "DropAlias": InvalidateDatabase,
		"RenameCollection": InvalidateBackend, "DropDatabase": InvalidateBackend, "AlterDatabase": InvalidateBackend,
		"OperatePrivilege": InvalidateBackend, "DeleteCredential": InvalidateBackend,
	} {
		if got := methods[name].Invalidates(); got != want {
			t.Errorf("%s invalidates %d, want %d", name, got, want)
		}
	}
	for _, name := range CacheMethods {
		m := methods[name]
		if m == nil || !m.ReadOnly || m.Streaming || m.Invalidates() != InvalidateNone {
			t.Errorf("cache method %s: %+v", name, m)
		}
	}
}

func TestRESTInvalidates(t *testing.T) {
	for path, want := range map[string]Invalidation{
		"/v2/vectordb/entities/search": InvalidateNone, "/v2/vectordb/collections/describe": InvalidateNone,
		"/v2/vectordb/entities/insert": InvalidateBackend, "/v2/vectordb/collections/drop": InvalidateBackend,
		"/v2/vectordb/aliases/alter": InvalidateBackend, "/healthz": InvalidateNone,
	} {
		if got := RESTInvalidates(path); got != want {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
}
