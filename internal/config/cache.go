package config

// Cache is an Ingress's milvus-lb.io/cache: the reply cache for the calls its routes take
// (docs/cache.md). Every field is resolved: defaults filled in.
type Cache struct {
	// Methods are the MilvusService methods served from the cache.
	Methods []string `json:"methods"`
	// MaxAge is the oldest entry served at all, whatever the consistency level: the
	// staleness allowed for writes that do not pass through the balancer.
	MaxAge Duration `json:"maxAge"`
	// BoundedStaleness is the oldest entry served to a Bounded read.
	BoundedStaleness Duration `json:"boundedStaleness"`
	// MaxEntryBytes is the largest entry stored; MaxBytes what the cache holds in all.
	MaxEntryBytes int64 `json:"maxEntryBytes"`
	MaxBytes      int64 `json:"maxBytes"`
}
