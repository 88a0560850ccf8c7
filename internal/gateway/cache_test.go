package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
)

// A reload keeps the entries of a cache whose settings it does not change, and starts a
// cache whose settings changed empty.
func TestApplyKeepsCacheStores(t *testing.T) {
	g := New(balancer.NewRegistry(), &fakeListeners{}, nil, nil)
	m := model(80, "10.0.0.1:1")
	cfg := config.Cache{Methods: []string{"Search"}, MaxAge: config.Duration(time.Minute), MaxEntryBytes: 1 << 10, MaxBytes: 1 << 20}
	m.Caches = map[string]*config.Cache{"ns/ing": &cfg}
	if _, err := g.Apply(context.Background(), m, nil); err != nil {
		t.Fatal(err)
	}
	first := g.Current().Caches["ns/ing"]
	if !first.Serves("Search") || first.Serves("Query") {
		t.Fatal("methods not compiled")
	}
	m2 := model(80, "10.0.0.1:1")
	same := cfg
	m2.Caches = map[string]*config.Cache{"ns/ing": &same}
	if _, err := g.Apply(context.Background(), m2, nil); err != nil {
		t.Fatal(err)
	}
	if g.Current().Caches["ns/ing"].Store != first.Store {
		t.Error("an unchanged cache lost its entries on reload")
	}
	changed := cfg
	changed.MaxAge = config.Duration(time.Second)
	m2.Caches = map[string]*config.Cache{"ns/ing": &changed}
	if _, err := g.Apply(context.Background(), m2, nil); err != nil {
		t.Fatal(err)
	}
	if g.Current().Caches["ns/ing"].Store == first.Store {
		t.Error("a changed cache kept the old store")
	}
	if _, err := g.Apply(context.Background(), model(80, "10.0.0.1:1"), nil); err != nil {
		t.Fatal(err)
	}
	if g.Current().Caches != nil {
		t.Error("a cache turned off is still there")
	}
}
