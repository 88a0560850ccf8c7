package call

import (
	"encoding/base64"
	"encoding/binary"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// cachePort is testPort with milvus-lb.io/cache '{}' on its one route.
func cachePort(t testing.TB) *Port {
	t.Helper()
	p, _ := testPort(1, nil)
	snap := *p.Snapshot()
	l := *snap.Listeners[443]
	e := l.Routes.Find("milvus-demo.milvus.io", "/", func(*router.Entry[*gateway.Backend]) bool { return true })
	e.Route.Ingress = "ns/ing"
	cfg := &config.Cache{Methods: milvus.CacheMethods, MaxAge: config.Duration(10 * time.Second),
		BoundedStaleness: config.Duration(5 * time.Second), MaxEntryBytes: 1 << 16, MaxBytes: 1 << 20}
	snap.Caches = map[string]*gateway.Cache{"ns/ing": gateway.NewCache(cfg)}
	p.Snapshot = func() *gateway.Snapshot { return &snap }
	return p
}

func frame(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, PrefixLen, PrefixLen+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	return append(out, b...)
}

// cacheClient makes calls through the cache the way the relay does, with a backend that
// answers with reply.
type cacheClient struct {
	t     *testing.T
	p     *Port
	user  string
	reply proto.Message
	sent  int // calls that reached the backend
}

// call makes one call of method with request req at now; it reports whether the cache
// answered and what it recorded.
func (cc *cacheClient) call(method string, req proto.Message, now time.Time) (hit bool, result string) {
	path := milvus.ServicePrefix + method
	var c Call
	c.Begin(cc.p, path, true, now)
	if cc.user != "" {
		c.Metadata([]hpack.HeaderField{{Name: "authorization", Value: base64.StdEncoding.EncodeToString([]byte(cc.user + ":pw"))}})
	}
	if f := routeHeaders(&c, "milvus-demo.milvus.io", "", path); f != nil {
		cc.t.Fatal(f)
	}
	msg := frame(cc.t, req)
	c.Request(msg)
	if c.CacheHold() > 0 {
		if r := c.CacheLookup(msg, now); r != nil {
			c.Finish(now, "")
			return true, c.Rec.Cache
		}
	}
	if _, f := c.Pick(); f != nil {
		cc.t.Fatal(f)
	}
	cc.sent++
	reply := frame(cc.t, cc.reply)
	c.Response(reply)
	if c.CacheKeep() > 0 {
		c.CacheStore(reply, "0")
	}
	rec := c.Rec.Cache
	c.Finish(now, "0")
	return false, rec
}

func searchReq(level commonpb.ConsistencyLevel, g uint64) *milvuspb.SearchRequest {
	return &milvuspb.SearchRequest{CollectionName: "books", Dsl: "id > 0", ConsistencyLevel: level, GuaranteeTimestamp: g,
		Base: &commonpb.MsgBase{MsgID: int64(g) + 7}}
}

var okResults = &milvuspb.SearchResults{Status: &commonpb.Status{}, CollectionName: "books"}

func TestCacheLevels(t *testing.T) {
	t0 := time.Now()
	tso := func(d time.Duration) uint64 { return uint64(t0.Add(d).UnixMilli()) << 18 }
	for _, tc := range []struct {
		name  string
		level commonpb.ConsistencyLevel
		g     uint64        // guarantee of the second call
		after time.Duration // when the second call comes
		hit   bool
	}{
		{"eventually", commonpb.ConsistencyLevel_Eventually, 1, 9 * time.Second, true},
		{"eventually past max age", commonpb.ConsistencyLevel_Eventually, 1, 10 * time.Second, false},
		{"bounded within the bound", commonpb.ConsistencyLevel_Bounded, 2, 4 * time.Second, true},
		{"bounded past the bound", commonpb.ConsistencyLevel_Bounded, 2, 5 * time.Second, false},
		{"session, no write since", commonpb.ConsistencyLevel_Session, tso(-time.Second), time.Second, true},
		{"session, a write after the entry", commonpb.ConsistencyLevel_Session, tso(time.Second), 2 * time.Second, false},
		{"strong", commonpb.ConsistencyLevel_Strong, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := &cacheClient{t: t, p: cachePort(t), reply: okResults}
			if hit, res := cc.call("Search", searchReq(tc.level, 1), t0); hit || (res != CacheMiss && res != CacheBypass) {
				t.Fatalf("first call: hit %v, %s", hit, res)
			}
			hit, res := cc.call("Search", searchReq(tc.level, tc.g), t0.Add(tc.after))
			if hit != tc.hit {
				t.Fatalf("second call: hit %v (%s), want %v", hit, res, tc.hit)
			}
			if tc.level == commonpb.ConsistencyLevel_Strong && res != CacheBypass {
				t.Fatalf("strong: %s, want bypass", res)
			}
		})
	}
}

// A write through the balancer makes the collection's entries stale before its reply
// reaches the client; another user never gets an entry made for another.
func TestCacheInvalidationAndUsers(t *testing.T) {
	now := time.Now()
	cc := &cacheClient{t: t, p: cachePort(t), reply: okResults, user: "alice"}
	req := searchReq(commonpb.ConsistencyLevel_Eventually, 1)
	cc.call("Search", req, now)
	if hit, _ := cc.call("Search", req, now); !hit {
		t.Fatal("a repeated search was not answered from the cache")
	}
	bob := &cacheClient{t: t, p: cc.p, reply: okResults, user: "bob"}
	if hit, _ := bob.call("Search", req, now); hit {
		t.Fatal("bob got alice's entry")
	}
	w := &cacheClient{t: t, p: cc.p, reply: &milvuspb.MutationResult{Status: &commonpb.Status{}}}
	w.call("Insert", &milvuspb.InsertRequest{CollectionName: "books", NumRows: 1}, now)
	if hit, _ := cc.call("Search", req, now); hit {
		t.Fatal("a search after an insert was answered from the cache")
	}
	if hit, _ := cc.call("Search", req, now); !hit {
		t.Fatal("the search after the insert was not stored")
	}
}

func TestCacheStoresOnlySuccess(t *testing.T) {
	now := time.Now()
	cc := &cacheClient{t: t, p: cachePort(t), reply: &milvuspb.SearchResults{Status: &commonpb.Status{Code: 100, Reason: "collection not loaded"}}}
	req := searchReq(commonpb.ConsistencyLevel_Eventually, 1)
	cc.call("Search", req, now)
	if hit, _ := cc.call("Search", req, now); hit || cc.sent != 2 {
		t.Fatal("a failed reply was served from the cache")
	}
}

// "Use the collection's default": bypassed until a DescribeCollection tells the level.
func TestCacheDefaultLevel(t *testing.T) {
	now := time.Now()
	p := cachePort(t)
	cc := &cacheClient{t: t, p: p, reply: okResults}
	req := &milvuspb.SearchRequest{CollectionName: "books", Dsl: "id > 0", UseDefaultConsistency: true}
	if _, res := cc.call("Search", req, now); res != CacheBypass {
		t.Fatalf("default level not known: %s, want bypass", res)
	}
	d := &cacheClient{t: t, p: p, reply: &milvuspb.DescribeCollectionResponse{Status: &commonpb.Status{}, CollectionName: "books",
		ConsistencyLevel: commonpb.ConsistencyLevel_Bounded}}
	d.call("DescribeCollection", &milvuspb.DescribeCollectionRequest{CollectionName: "books"}, now)
	if _, res := cc.call("Search", req, now); res != CacheMiss {
		t.Fatalf("default level Bounded: %s, want miss", res)
	}
	if hit, _ := cc.call("Search", req, now.Add(time.Second)); !hit {
		t.Fatal("a Bounded search within the bound was not a hit")
	}
	if hit, _ := cc.call("Search", req, now.Add(6*time.Second)); hit {
		t.Fatal("a Bounded search past the bound was a hit")
	}
	ddl := &cacheClient{t: t, p: p, reply: &commonpb.Status{}}
	ddl.call("AlterCollection", &milvuspb.AlterCollectionRequest{CollectionName: "books"}, now)
	if _, res := cc.call("Search", req, now); res != CacheBypass {
		t.Fatalf("after AlterCollection the default level is known still: %s", res)
	}
}

// Aliases: a write drops the results of the names known (from DescribeCollection
// replies) to resolve to the collection it writes to, whether it names the collection or
// an alias of it, and those of every name not known; it leaves those of other
// collections. A write by a name not known drops every result of the database; an alias
// change drops every entry of the database, and what was known of its names.
func TestCacheAliases(t *testing.T) {
	now := time.Now()
	p := cachePort(t)
	describe := func(name, collection string) {
		// As Milvus answers: collection_name is the name asked for, the schema's the collection's.
		d := &cacheClient{t: t, p: p, reply: &milvuspb.DescribeCollectionResponse{Status: &commonpb.Status{}, CollectionName: name,
			Schema: &schemapb.CollectionSchema{Name: collection}, ConsistencyLevel: commonpb.ConsistencyLevel_Bounded}}
		d.call("DescribeCollection", &milvuspb.DescribeCollectionRequest{CollectionName: name}, now)
	}
	describe("books", "books")
	describe("latest", "books") // an alias
	describe("films", "films")
	s := &cacheClient{t: t, p: p, reply: okResults}
	search := func(name string) bool {
		req := searchReq(commonpb.ConsistencyLevel_Eventually, 1)
		req.CollectionName = name
		hit, _ := s.call("Search", req, now)
		return hit
	}
	write := func(name string) {
		w := &cacheClient{t: t, p: p, reply: &milvuspb.MutationResult{Status: &commonpb.Status{}}}
		w.call("Insert", &milvuspb.InsertRequest{CollectionName: name, NumRows: 1}, now)
	}
	names := []string{"books", "latest", "films", "other"}
	check := func(step string, want map[string]bool) {
		t.Helper()
		for _, n := range names {
			if got := search(n); got != want[n] {
				t.Errorf("%s: a search of %s was a hit: %v, want %v", step, n, got, want[n])
			}
		}
		for _, n := range names {
			if !search(n) {
				t.Fatalf("%s: the search of %s was not stored", step, n)
			}
		}
	}
	check("first", map[string]bool{})
	write("films")
	check("insert into films", map[string]bool{"books": true, "latest": true})
	write("latest")
	check("insert through the alias latest", map[string]bool{"films": true})
	write("books")
	check("insert into books", map[string]bool{"films": true})
	write("unknown")
	check("insert through a name not known", map[string]bool{})
	ddl := &cacheClient{t: t, p: p, reply: &commonpb.Status{}}
	ddl.call("AlterAlias", &milvuspb.AlterAliasRequest{Alias: "latest", CollectionName: "films"}, now)
	check("latest altered to films", map[string]bool{})
	// Nothing is known of the database's names after an alias change: a write drops every
	// result, until DescribeCollection replies tell them again.
	write("books")
	check("insert into books, nothing known", map[string]bool{})
	describe("books", "books")
	describe("latest", "films")
	describe("films", "films")
	write("films") // the entries made while nothing was known go with any write
	check("described again", map[string]bool{})
	write("books")
	check("insert into books, latest now films", map[string]bool{"latest": true, "films": true})
}
