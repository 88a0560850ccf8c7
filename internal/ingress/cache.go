package ingress

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// AnnotationCache turns on milvus-lb's reply cache for the calls an Ingress routes
// (docs/cache.md): a JSON object, '{}' for the defaults,
//
//	'{"methods":["Search","Query"],"maxAge":"30s","boundedStaleness":"5s","maxEntryBytes":"1Mi","maxBytes":"256Mi"}'
const AnnotationCache = "milvus-lb.io/cache"

// The cache's defaults. boundedStaleness is Milvus's own default bound for Bounded reads
// (common.gracefulTime, 5000 ms).
const (
	defaultCacheMaxAge    = 10 * time.Second
	defaultCacheBounded   = 5 * time.Second
	defaultCacheMaxEntry  = 1 << 20
	defaultCacheMaxBytes  = 64 << 20
	minCacheBytes         = 1 << 10
	maxCacheBytes         = 64 << 30
	maxCacheAge           = 24 * time.Hour
	cacheAnnotationSample = `{"maxAge":"30s","maxBytes":"256Mi"}`
)

// cacheJSON is the annotation's object.
type cacheJSON struct {
	Methods          []string        `json:"methods"`
	MaxAge           string          `json:"maxAge"`
	BoundedStaleness string          `json:"boundedStaleness"`
	MaxEntryBytes    json.RawMessage `json:"maxEntryBytes"`
	MaxBytes         json.RawMessage `json:"maxBytes"`
}

// parseCache reads the annotation: nil when it is absent or malformed (reported).
func parseCache(a annotations) *config.Cache {
	v, ok := a.get(AnnotationCache)
	if !ok {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	var j cacheJSON
	if err := dec.Decode(&j); err != nil {
		a.errorf(AnnotationCache, "invalid cache settings: want a JSON object such as %s ('{}' for the defaults): %v", cacheAnnotationSample, err)
		return nil
	}
	c, why := cacheSettings(j)
	if why != "" {
		a.errorf(AnnotationCache, "%s", why)
		return nil
	}
	return c
}

// cacheSettings checks the object and fills in the defaults; why starts with the JSON
// field it is about.
func cacheSettings(j cacheJSON) (*config.Cache, string) {
	c := &config.Cache{Methods: milvus.CacheMethods,
		MaxAge: config.Duration(defaultCacheMaxAge), BoundedStaleness: config.Duration(defaultCacheBounded),
		MaxEntryBytes: defaultCacheMaxEntry, MaxBytes: defaultCacheMaxBytes}
	if j.Methods != nil {
		if len(j.Methods) == 0 {
			return nil, ".methods: empty: name at least one method, or leave the annotation out"
		}
		for i, m := range j.Methods {
			if !milvus.Cacheable(m) || slices.Index(j.Methods, m) != i {
				return nil, fmt.Sprintf(".methods[%d]: %q: must be one of %s, each once", i, m, strings.Join(milvus.CacheMethods, ", "))
			}
		}
		c.Methods = j.Methods
	}
	for _, d := range []struct {
		field string
		s     string
		dst   *config.Duration
	}{{"maxAge", j.MaxAge, &c.MaxAge}, {"boundedStaleness", j.BoundedStaleness, &c.BoundedStaleness}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil || v <= 0 || v > maxCacheAge {
			return nil, fmt.Sprintf(".%s: %q: must be a duration more than 0 and at most 24h, such as 30s", d.field, d.s)
		}
		*d.dst = config.Duration(v)
	}
	if c.BoundedStaleness > c.MaxAge {
		return nil, fmt.Sprintf(".boundedStaleness: %s is more than maxAge (%s), which bounds every entry", time.Duration(c.BoundedStaleness), time.Duration(c.MaxAge))
	}
	for _, q := range []struct {
		field string
		raw   json.RawMessage
		dst   *int64
	}{{"maxEntryBytes", j.MaxEntryBytes, &c.MaxEntryBytes}, {"maxBytes", j.MaxBytes, &c.MaxBytes}} {
		if q.raw == nil {
			continue
		}
		n, ok := cacheQuantity(q.raw)
		if !ok {
			return nil, fmt.Sprintf(".%s: %s: must be a size from 1Ki to 64Gi, such as \"256Mi\" or 1048576", q.field, q.raw)
		}
		*q.dst = n
	}
	if c.MaxEntryBytes > c.MaxBytes {
		return nil, fmt.Sprintf(".maxEntryBytes: %d is more than maxBytes (%d)", c.MaxEntryBytes, c.MaxBytes)
	}
	return c, ""
}

// cacheQuantity reads a size: a number of bytes, or a Kubernetes quantity in a string.
func cacheQuantity(raw json.RawMessage) (int64, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return 0, false
		}
		s = n.String()
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, false
	}
	n, exact := q.AsInt64()
	return n, exact && n >= minCacheBytes && n <= maxCacheBytes
}

// cachesOf are the caches of the served Ingresses, by ns/name; nil when none has one.
func cachesOf(accepted []*plan) map[string]*config.Cache {
	var out map[string]*config.Cache
	for _, p := range accepted {
		if p.cache != nil {
			if out == nil {
				out = map[string]*config.Cache{}
			}
			out[p.key] = p.cache
		}
	}
	return out
}
