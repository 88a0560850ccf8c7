package call

import (
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// namesObserver reads only the names of a record, as the metrics' labels, the live page
// and traces do.
type namesObserver struct{ records }

func (*namesObserver) RecordFields() milvus.Fields { return milvus.FieldNames }

// searchRequest is a Search of 4 KiB of vectors that names its database and collection
// (fields 2 and 3), and gives topk, nq and its level (fields 9, 12, 14).
func searchRequest() *milvuspb.SearchRequest {
	return &milvuspb.SearchRequest{DbName: "db1", CollectionName: "books",
		SearchInput:  &milvuspb.SearchRequest_PlaceholderGroup{PlaceholderGroup: make([]byte, 4096)},
		SearchParams: []*commonpb.KeyValuePair{{Key: "topk", Value: "10"}}, Nq: 3,
		ConsistencyLevel: commonpb.ConsistencyLevel_Bounded}
}

// The request scanner reads what the call's observers use. With one that reads every
// field (the access log) a Search's record has its counts and level; with observers of
// the names only, the scan wants nothing more once the names are read.
func TestRecordFieldsFollowTheObservers(t *testing.T) {
	msg := framed(t, searchRequest())
	for _, tc := range []struct {
		name      string
		obs       interface{ get() []Record }
		moreAfter bool // the scan wants bytes after the first 64
		want      Record
	}{
		{"every field", &allObserver{}, true, Record{DB: "db1", Collection: "books", Consistency: "Bounded", NQ: 3, TopK: 10}},
		{"names only", &namesObserver{}, false, Record{DB: "db1", Collection: "books"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := testPort(1, tc.obs.(Observer))
			var c Call
			c.Begin(p, search, true, time.Now())
			if f := routeHeaders(&c, "milvus-demo.milvus.io", "", search); f != nil {
				t.Fatal(f)
			}
			if more := c.Request(msg[:64]); more != tc.moreAfter {
				t.Errorf("after the names: wants more %v, want %v", more, tc.moreAfter)
			}
			if tc.moreAfter {
				c.Request(msg[64:])
			}
			c.Finish(time.Now(), "0")
			recs := tc.obs.get()
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			r := recs[0]
			got := Record{DB: r.DB, Collection: r.Collection, Consistency: r.Consistency, NQ: r.NQ, TopK: r.TopK}
			if got != tc.want {
				t.Errorf("record %+v, want %+v", got, tc.want)
			}
		})
	}
}

// allObserver is an Observer that is not a FieldsObserver: it gets every field.
type allObserver struct{ records }

func (a *allObserver) get() []Record   { return a.records }
func (n *namesObserver) get() []Record { return n.records }

// A route that reads the level still gets it when no observer asks for it: a standby
// takes an Eventually read although the observers read the names only.
func TestRouteWidensTheScan(t *testing.T) {
	m := routedModel(nil, config.Route{Backend: "a"})
	m.Backends["a"].Standby = &config.Standby{Backend: "b", Weight: 100, Staleness: config.Duration(5 * time.Second)}
	p := compiledPort(t, m)
	p.Observer = &namesObserver{}
	read := searchRequest()
	read.ConsistencyLevel = commonpb.ConsistencyLevel_Eventually
	if got := routeMessage(t, p, "Search", read); got != "b" {
		t.Errorf("Eventually read went to %q, want the standby b", got)
	}
	read.ConsistencyLevel = commonpb.ConsistencyLevel_Strong
	if got := routeMessage(t, p, "Search", read); got != "a" {
		t.Errorf("Strong read went to %q, want the primary a", got)
	}
}
