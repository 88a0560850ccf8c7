package call

import (
	"testing"

	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// memoDecide is decide with the connection's memo in the request.
func memoDecide(t *testing.T, p *Port, m *RouteMemo, headers ...hpack.HeaderField) string {
	t.Helper()
	req := grpcRequest("Search", headers...)
	req.Memo = m
	be, need, f := decide(p, req, nil)
	if need != 0 || f != nil {
		t.Fatalf("need %b failure %v", need, f)
	}
	return be
}

// A connection's calls go where they would go without the memo: a route with conditions
// is never remembered (the next call's headers may say otherwise), and a reload is seen
// at the next call.
func TestRouteMemo(t *testing.T) {
	tenant := func(db string) hpack.HeaderField { return hpack.HeaderField{Name: "dbname", Value: db} }
	byHeader := routedPort(t, nil,
		config.Route{Backend: "a"},
		config.Route{Backend: "b", Conditions: []config.Condition{{Field: config.FieldHTTPHeader, Name: "dbname", Values: []string{"tenant_b"}}}})
	var m RouteMemo
	for i, tc := range []struct {
		db, want string
	}{{"tenant_c", "a"}, {"tenant_b", "b"}, {"", "a"}, {"tenant_b", "b"}} {
		var hs []hpack.HeaderField
		if tc.db != "" {
			hs = append(hs, tenant(tc.db))
		}
		if got := memoDecide(t, byHeader, &m, hs...); got != tc.want {
			t.Errorf("call %d (dbname %q): backend %q, want %q", i, tc.db, got, tc.want)
		}
		if m.e != nil {
			t.Errorf("call %d: a route chosen beside a route with conditions was remembered", i)
		}
	}

	plain := routedPort(t, nil, config.Route{Backend: "a"})
	if got := memoDecide(t, plain, &m); got != "a" || m.e == nil {
		t.Fatalf("plain route: backend %q, remembered %v; want a, remembered", got, m.e != nil)
	}
	if got := memoDecide(t, plain, &m); got != "a" {
		t.Errorf("plain route from the memo: backend %q, want a", got)
	}
	// A reload: the same memo, a snapshot that routes elsewhere.
	reloaded := routedPort(t, nil, config.Route{Backend: "c"})
	if got := memoDecide(t, reloaded, &m); got != "c" {
		t.Errorf("after a reload: backend %q, want c", got)
	}
	other := grpcRequest("Search")
	other.Authority, other.Memo = "other.example", &m
	if be, _, f := decide(reloaded, other, nil); be != "" || f == nil {
		t.Errorf("another host on the remembered connection: backend %q failure %v; want no rule", be, f)
	}
	m.Forget()
	if m.e != nil || m.snap != nil {
		t.Error("Forget kept the route")
	}
}
