package gateway

import (
	"reflect"

	"github.com/milvus-lb/milvus-lb/internal/cache"
	"github.com/milvus-lb/milvus-lb/internal/config"
)

// Cache is an Ingress's reply cache, compiled: its settings and the store of its entries.
// The store outlives snapshots while the Ingress's settings stay the same, so a reload
// that changes something else keeps the entries (and every invalidation already made).
type Cache struct {
	config.Cache
	Store   *cache.Cache
	methods map[string]bool
}

// Serves reports whether the cache answers method (a MilvusService method name).
func (c *Cache) Serves(method string) bool { return c.methods[method] }

// compileCaches makes the caches of m, keeping prev's stores whose settings did not
// change.
func compileCaches(m map[string]*config.Cache, prev map[string]*Cache) map[string]*Cache {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]*Cache, len(m))
	for ing, cfg := range m {
		if old := prev[ing]; old != nil && reflect.DeepEqual(old.Cache, *cfg) {
			out[ing] = old
			continue
		}
		out[ing] = NewCache(cfg)
	}
	return out
}

// NewCache makes an empty cache with the settings cfg.
func NewCache(cfg *config.Cache) *Cache {
	c := &Cache{Cache: *cfg, Store: cache.New(cfg.MaxBytes, cfg.MaxEntryBytes), methods: map[string]bool{}}
	for _, name := range cfg.Methods {
		c.methods[name] = true
	}
	return c
}
