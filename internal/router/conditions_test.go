package router

import (
	"net/netip"
	"testing"

	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

func method(name string) *milvus.Method {
	return milvus.Lookup(milvus.ServicePrefix + name)
}

func TestHeadConditions(t *testing.T) {
	src := netip.MustParseAddr("10.1.2.3")
	search := &Request{Path: milvus.ServicePrefix + "Search", Method: "POST", Source: src, Milvus: method("Search"),
		Headers: []hpack.HeaderField{{Name: "dbname", Value: "Tenant_A"}, {Name: "x-team", Value: "ml"}}}
	rest := &Request{Path: "/v2/vectordb/entities/search", Query: "db=a&tag=Blue%20one", Method: "GET", Source: netip.MustParseAddr("::ffff:192.168.0.9")}
	unknown := &Request{Path: milvus.ServicePrefix + "SomethingNew"}
	cases := []struct {
		name string
		c    config.Condition
		r    *Request
		want bool
	}{
		{"header value folds case", config.Condition{Field: config.FieldHTTPHeader, Name: "DBName", Values: []string{"tenant_a"}}, search, true},
		{"header pattern", config.Condition{Field: config.FieldHTTPHeader, Name: "dbname", Values: []string{"x", "tenant_*"}}, search, true},
		{"header absent", config.Condition{Field: config.FieldHTTPHeader, Name: "x-other", Values: []string{"*"}}, search, false},
		{"host", config.Condition{Field: config.FieldHostHeader, Values: []string{"*.milvus.io"}}, search, true},
		{"path pattern", config.Condition{Field: config.FieldPathPattern, Values: []string{"/milvus.proto.milvus.MilvusService/*Search"}}, search, true},
		{"path is case-sensitive", config.Condition{Field: config.FieldPathPattern, Values: []string{"/milvus.proto.milvus.milvusservice/*"}}, search, false},
		{"method", config.Condition{Field: config.FieldMethod, Values: []string{"GET", "HEAD"}}, rest, true},
		{"method no", config.Condition{Field: config.FieldMethod, Values: []string{"GET"}}, search, false},
		{"source ip", config.Condition{Field: config.FieldSourceIP, Values: []string{"10.0.0.0/8"}}, search, true},
		{"source ip mapped v4", config.Condition{Field: config.FieldSourceIP, Values: []string{"192.168.0.0/16"}}, rest, true},
		{"source ip no", config.Condition{Field: config.FieldSourceIP, Values: []string{"172.16.0.0/12", "::1/128"}}, search, false},
		{"query key and value", config.Condition{Field: config.FieldQueryString, Query: []config.QueryValue{{Key: "TAG", Value: "blue*"}}}, rest, true},
		{"query any key", config.Condition{Field: config.FieldQueryString, Query: []config.QueryValue{{Value: "a"}}}, rest, true},
		{"query no", config.Condition{Field: config.FieldQueryString, Query: []config.QueryValue{{Key: "db", Value: "b"}}}, rest, false},
		// Exact (the Gateway API's): with case, * and ? literal.
		{"exact header value with case", config.Condition{Field: config.FieldHTTPHeader, Exact: true, Name: "dbname", Values: []string{"Tenant_A"}}, search, true},
		{"exact header value other case", config.Condition{Field: config.FieldHTTPHeader, Exact: true, Name: "dbname", Values: []string{"tenant_a"}}, search, false},
		{"exact header no wildcard", config.Condition{Field: config.FieldHTTPHeader, Exact: true, Name: "dbname", Values: []string{"Tenant_*"}}, search, false},
		{"exact query", config.Condition{Field: config.FieldQueryString, Exact: true, Query: []config.QueryValue{{Key: "tag", Value: "Blue one"}}}, rest, true},
		{"exact query key case", config.Condition{Field: config.FieldQueryString, Exact: true, Query: []config.QueryValue{{Key: "TAG", Value: "Blue one"}}}, rest, false},
		{"exact query value case", config.Condition{Field: config.FieldQueryString, Exact: true, Query: []config.QueryValue{{Key: "tag", Value: "blue one"}}}, rest, false},
		{"operation read", config.Condition{Field: config.FieldOperation, Values: []string{"read"}}, search, true},
		{"operation write", config.Condition{Field: config.FieldOperation, Values: []string{"write", "ddl"}}, search, false},
		{"unknown method is admin", config.Condition{Field: config.FieldOperation, Values: []string{"admin"}}, unknown, true},
		{"REST has no operation", config.Condition{Field: config.FieldOperation, Values: []string{"read", "write", "ddl", "admin"}}, rest, false},
	}
	for _, c := range cases {
		cs := Compile([]config.Condition{c.c})
		if cs.Need() != 0 {
			t.Errorf("%s: Need() = %v, want 0 for a header condition", c.name, cs.Need())
		}
		if got := cs.Head("db.milvus.io", c.r); got != c.want {
			t.Errorf("%s: Head = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestMessageConditions(t *testing.T) {
	hdr := []hpack.HeaderField{{Name: "dbname", Value: "tenant_b"}}
	r := &Request{Path: milvus.ServicePrefix + "Search", Milvus: method("Search"), Headers: hdr}
	all := NameDB | NameCollection | NameConsistency
	cases := []struct {
		name string
		c    config.Condition
		n    Names
		want bool
	}{
		{"db field", config.Condition{Field: config.FieldDatabase, Values: []string{"tenant_a"}}, Names{DB: "tenant_a", Known: all}, true},
		{"db field beats metadata", config.Condition{Field: config.FieldDatabase, Values: []string{"tenant_b"}}, Names{DB: "tenant_a", Known: all}, false},
		{"db metadata", config.Condition{Field: config.FieldDatabase, Values: []string{"tenant_b"}}, Names{Known: all}, true},
		{"db not read", config.Condition{Field: config.FieldDatabase, Values: []string{"*"}}, Names{Known: NameCollection}, false},
		{"db is case-sensitive", config.Condition{Field: config.FieldDatabase, Values: []string{"Tenant_b"}}, Names{Known: all}, false},
		{"collection glob", config.Condition{Field: config.FieldCollection, Values: []string{"logs_*"}}, Names{Collection: "logs_2024", Known: all}, true},
		{"no collection", config.Condition{Field: config.FieldCollection, Values: []string{"*"}}, Names{Known: all}, false},
		{"consistency", config.Condition{Field: config.FieldConsistency, Values: []string{"Bounded", "Eventually"}}, Names{Consistency: "Eventually", Known: all}, true},
		{"default consistency", config.Condition{Field: config.FieldConsistency, Values: []string{"Strong", "Bounded"}}, Names{Known: all}, false},
	}
	for _, c := range cases {
		cs := Compile([]config.Condition{c.c})
		if !cs.Head("h", r) {
			t.Errorf("%s: a message condition failed at the headers", c.name)
		}
		if got := cs.Message(r, &c.n); got != c.want {
			t.Errorf("%s: Message = %v, want %v", c.name, got, c.want)
		}
	}
	db := Compile([]config.Condition{{Field: config.FieldDatabase, Values: []string{"a"}}, {Field: config.FieldConsistency, Values: []string{"Strong"}}})
	if got := db.Need(); got != NameDB|NameConsistency {
		t.Errorf("Need() = %b, want db and consistency", got)
	}
}

// Find tries the candidates in match order and a condition failing passes to the next.
func TestFindOrder(t *testing.T) {
	tenant := []config.Condition{{Field: config.FieldHTTPHeader, Name: "dbname", Values: []string{"tenant_a"}}}
	entries := []*Entry[string]{
		{Route: config.Route{Host: "h.io", Path: "/", PathType: config.PathPrefix}, Target: "plain"},
		{Route: config.Route{Host: "h.io", Path: "/", PathType: config.PathPrefix, Conditions: tenant}, Target: "tenant"},
		{Route: config.Route{Host: "", Path: "/", PathType: config.PathPrefix, Conditions: tenant}, Target: "any-host-tenant"},
	}
	tab := New(entries)
	var seen []string
	hdr := &Request{Headers: []hpack.HeaderField{{Name: "dbname", Value: "tenant_a"}}}
	got := tab.Find("h.io", "/x", func(e *Entry[string]) bool {
		seen = append(seen, e.Target)
		return e.Cond.Head("h.io", &Request{})
	})
	if got.Target != "plain" || len(seen) != 2 || seen[0] != "tenant" {
		t.Errorf("Find = %s after %v; want plain after the conditioned route", got.Target, seen)
	}
	if got := tab.Find("h.io", "/x", func(e *Entry[string]) bool { return e.Cond.Head("h.io", hdr) }); got.Target != "tenant" {
		t.Errorf("Find with the header = %s, want tenant", got.Target)
	}
	if got := tab.Match("other.io", "/x"); got != nil {
		t.Errorf("Match = %s; routes with conditions are not Match's", got.Target)
	}
}
