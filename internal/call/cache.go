package call

import (
	"encoding/binary"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/bufs"
	"github.com/milvus-lb/milvus-lb/internal/cache"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// The reply cache's rules (issue 15, docs/cache.md), for the calls of an Ingress with
// milvus-lb.io/cache. The data path, for a call CacheHold says to hold:
//
//  1. holds the whole request (one gRPC message, up to CacheHold bytes) before Pick, and
//     gives it to CacheLookup; a reply it returns is the call's answer (grpc-status 0);
//  2. otherwise sends the call, keeps up to CacheKeep bytes of the reply, and gives the
//     whole reply to CacheStore when the call ends.
//
// A call that changes something makes the entries it may change stale before its reply
// reaches the client (Response and Finish call invalidate), in every Ingress's cache: the
// entries are per Ingress, the data is the backend's.

// CacheResult is what the cache did for a call, for the record and the metrics.
const (
	CacheHit    = "hit"    // answered from the cache
	CacheMiss   = "miss"   // cacheable, not in the cache (or too stale to serve)
	CacheBypass = "bypass" // not cacheable: Strong, Customized, unknown default level, ...
)

// Scope names that no Milvus name can be (Milvus names are letters, digits, _ and $).
const (
	scopeAll     = "\x00all"     // every entry of a database (or, as its DB, of a backend)
	scopeListing = "\x00listing" // what lists a database's collections and aliases
	scopeData    = "\x00data"    // every Search, Query and HybridSearch of a database
)

// cacheCall is a call's part of the cache. What CacheLookup prepares for CacheStore
// (about 540 bytes) is allocated only for a call it makes a key for: inline, it made every
// call's allocation half as large again, cached or not.
type cacheCall struct {
	c           *gateway.Cache // the routed Ingress's cache; nil when it has none
	invalid     bool           // the call's invalidation was made at its first reply bytes
	*cacheKeyed                // nil until CacheLookup makes the call's key
}

// cacheKeyed is what CacheLookup prepared for CacheStore.
type cacheKeyed struct {
	key    []byte // from keyBufs, until Finish
	tok    cache.Token
	store  bool        // a miss whose reply may be stored
	learn  bool        // a DescribeCollection: its reply tells the collection's default level
	ltok   cache.Token // the token of the level learnt
	names  milvus.Names
	scopes [cache.Scopes]cache.Scope
}

// keyBufs hold the keys of calls: a Search's (its vectors) is a few KiB.
var keyBufs = bufs.List{Max: 256, Size: 16 << 10}

// CacheHold is how many bytes of the request the data path holds before Pick for the
// cache to look it up; 0 when the call is not one the cache may answer (no cache on its
// route, a method it does not serve, a stream). A request longer than that goes to the
// backend uncached.
func (c *Call) CacheHold() int {
	ch := c.cache.c
	if ch == nil || c.method == nil || c.method.Streaming || !ch.Serves(c.method.Name) {
		return 0
	}
	// At most what a routing decision holds (HoldLimit: HTTP/2's initial stream window, so
	// a client can always send all of it; a 768-dimension Search of up to 21 vectors).
	return min(int(ch.Store.MaxEntry())+PrefixLen, HoldLimit)
}

// CacheLookup looks the call up by its whole request msg (one gRPC message, its prefix
// included) at now. It returns the framed reply to answer with (grpc-status 0), or nil:
// the call goes to the backend, its reply stored when CacheStore allows.
func (c *Call) CacheLookup(msg []byte, now time.Time) []byte {
	ch := c.cache.c
	if ch == nil || len(msg) < PrefixLen || msg[0] != 0 || int(binary.BigEndian.Uint32(msg[1:PrefixLen])) != len(msg)-PrefixLen {
		c.Rec.Cache = CacheBypass // compressed, or not one whole message
		return nil
	}
	if c.method.HasConsistency() && !c.cacheableLevel(ch, now) {
		c.Rec.Cache = CacheBypass // known from the scan of the request: no key to make
		return nil
	}
	key, r, ok := milvus.CacheKey(keyBufs.Get(), c.method, msg[PrefixLen:])
	if !ok {
		keyBufs.Put(key)
		c.Rec.Cache = CacheBypass
		return nil
	}
	db := milvus.ResolveDB(r.DB, c.dbMeta)
	key = appendKeyPart(appendKeyPart(appendKeyPart(appendKeyPart(key, c.be.Key), c.method.Name), db), c.Rec.User)
	c.cache.cacheKeyed = &cacheKeyed{key: key}
	c.cache.names = milvus.Names{DB: db, Collection: r.Collection}
	c.cache.scopes = entryScopes(c.be.Key, db, r.Collection, r.HasLevel)
	if c.cache.learn = c.method.Name == "DescribeCollection" && r.Collection != ""; c.cache.learn {
		c.cache.ltok = ch.Store.Begin(entryScopes(c.be.Key, db, "", false))
	}
	level := r.Consistency
	if r.HasLevel && level == "" {
		level = c.defaultLevel(ch, db, r.Collection, now)
	}
	if r.Iterator || r.HasLevel && !servedLevel(level) {
		// Strong (never stale), Customized, a default not known, an iterator's page.
		c.Rec.Cache = CacheBypass
		return nil
	}
	c.cache.tok = ch.Store.Begin(c.cache.scopes)
	c.cache.store = true
	if e := ch.Store.Get(key); e != nil && fresh(ch, e, level, r.Guarantee, now) {
		c.Rec.Cache = CacheHit
		c.cache.store = false
		return e.Value
	}
	c.Rec.Cache = CacheMiss
	return nil
}

// servedLevel reports whether the cache may serve a read at level: Strong is never
// stale, Customized is not Milvus's to define, "" is a default not known.
func servedLevel(level string) bool {
	return level == "Session" || level == "Bounded" || level == "Eventually"
}

// cacheableLevel reports whether the level the request scan read (or the collection's
// default) is one the cache serves; true when the scan did not get that far.
func (c *Call) cacheableLevel(ch *gateway.Cache, now time.Time) bool {
	r, known := c.request()
	if known&(milvus.FieldConsistency|milvus.FieldNames) != milvus.FieldConsistency|milvus.FieldNames {
		return true
	}
	level := r.Consistency
	if level == "" {
		level = c.defaultLevel(ch, milvus.ResolveDB(r.DB, c.dbMeta), r.Collection, now)
	}
	return servedLevel(level)
}

// fresh reports whether entry e may answer a read at level (""  for a method without one)
// with guarantee timestamp g, at now: Milvus's consistency levels, and the cache's
// maximum age over all of them.
func fresh(ch *gateway.Cache, e *cache.Entry, level string, g uint64, now time.Time) bool {
	age := now.Sub(e.Made)
	if age >= time.Duration(ch.MaxAge) {
		return false
	}
	switch level {
	case "Session":
		// The entry's reply ran at or after the last write this client saw.
		return e.TS >= g
	case "Bounded":
		return age < time.Duration(ch.BoundedStaleness)
	}
	return true // Eventually, and metadata within the maximum age
}

// entryScopes are what an entry of a call naming db and collection depends on.
func entryScopes(be, db, collection string, data bool) [cache.Scopes]cache.Scope {
	s := [cache.Scopes]cache.Scope{
		{Backend: be, DB: db, Collection: collection},
		{Backend: be, DB: db, Collection: scopeAll},
		{Backend: be, DB: scopeAll, Collection: scopeAll},
	}
	if collection == "" {
		s[0].Collection = scopeListing
	}
	if data {
		// A write to a collection drops the results of every collection of its
		// database: the name a search gave may be an alias of the one written to.
		s[0].Collection = scopeData
	}
	return s
}

// appendKeyPart appends s with its length, so that parts cannot run into each other.
func appendKeyPart(key []byte, s string) []byte {
	key = binary.AppendUvarint(key, uint64(len(s)))
	return append(key, s...)
}

// levelKey is the key of a collection's default consistency level (learnt from
// DescribeCollection replies) in its Ingress's cache. The entry depends on its
// database's listings, which every DDL on a collection of it changes (an
// AlterCollection may change the level), but not on writes.
// It is appended to dst.
func levelKey(dst []byte, be, db, collection string) []byte {
	k := append(dst, "\x00level"...)
	return appendKeyPart(appendKeyPart(appendKeyPart(k, be), db), collection)
}

// defaultLevel is the collection's default consistency level, if a DescribeCollection
// reply told it within the maximum age and no DDL on the collection came since; "" when
// not known.
func (c *Call) defaultLevel(ch *gateway.Cache, db, collection string, now time.Time) string {
	// Looked up for every call that names its collection and no level (the bench's
	// Search): the key is built on the stack, the lookup only reads it.
	var buf [128]byte
	e := ch.Store.Get(levelKey(buf[:0], c.be.Key, db, collection))
	if e == nil || now.Sub(e.Made) >= time.Duration(ch.MaxAge) {
		return ""
	}
	return string(e.Value)
}

// CacheKeep is how many bytes of the reply the data path keeps for CacheStore; 0 when
// nothing is to be stored.
func (c *Call) CacheKeep() int {
	if c.cache.cacheKeyed == nil || !c.cache.store && !c.cache.learn {
		return 0
	}
	return int(c.cache.c.Store.MaxEntry()) + PrefixLen
}

// CacheStore takes the whole reply of a call that CacheKeep said to keep, once the call
// ended with grpc-status grpcStatus. Only a whole, uncompressed, successful reply (gRPC
// OK and a Milvus Status of success) within the entry cap is stored. The cache keeps
// reply: the caller must not change it after.
func (c *Call) CacheStore(reply []byte, grpcStatus string) {
	cc := &c.cache
	if cc.cacheKeyed == nil || (!cc.store && !cc.learn) || grpcStatus != "0" || len(reply) < PrefixLen || reply[0] != 0 ||
		int(binary.BigEndian.Uint32(reply[1:PrefixLen])) != len(reply)-PrefixLen {
		return
	}
	msg := reply[PrefixLen:]
	if st, ok := milvus.ReadStatus(c.method, msg, true); !ok || !st.OK() {
		return
	}
	info := milvus.ReadCacheReply(c.method, msg)
	if cc.learn && (info.Collection == "" || info.Collection == cc.names.Collection) {
		cc.c.Store.Put(levelKey(nil, c.be.Key, cc.names.DB, cc.names.Collection), []byte(info.Consistency), c.Rec.Start, 0, cc.ltok)
	}
	if !cc.store {
		return
	}
	ts := info.SessionTS
	if ts == 0 {
		// Milvus's hybrid timestamps are milliseconds << 18: the call's start is a time
		// its reply is at least as new as.
		ts = uint64(c.Rec.Start.UnixMilli()) << 18
	}
	cc.c.Store.Put(cc.key, reply, c.Rec.Start, ts, cc.tok)
}

// invalidate makes stale, in every cache of the configuration in force, the entries the
// call may change: what its method changes (milvus.Invalidates), in the database and
// collection its request names (more when they are not known).
func (c *Call) invalidate() {
	if c.be == nil {
		return
	}
	var inv milvus.Invalidation
	switch {
	case c.method != nil:
		inv = c.method.Invalidates()
	case !c.Rec.GRPC:
		inv = milvus.RESTInvalidates(c.Rec.Method) // a REST call: its path
	}
	if inv == milvus.InvalidateNone {
		return
	}
	caches := c.port.Snapshot().Caches
	if len(caches) == 0 {
		return
	}
	r, known := c.request()
	db := milvus.ResolveDB(r.DB, c.dbMeta)
	if known&milvus.FieldDB == 0 {
		inv = milvus.InvalidateBackend
	} else if known&milvus.FieldCollection == 0 || r.Collection == "" {
		inv = max(inv, milvus.InvalidateDatabase)
	}
	be := c.be.Key
	scope := func(db, collection string) cache.Scope {
		return cache.Scope{Backend: be, DB: db, Collection: collection}
	}
	var scopes []cache.Scope
	switch inv {
	case milvus.InvalidateCollection:
		scopes = []cache.Scope{scope(db, r.Collection), scope(db, scopeData)}
	case milvus.InvalidateCollectionDDL:
		scopes = []cache.Scope{scope(db, r.Collection), scope(db, scopeData), scope(db, scopeListing)}
	case milvus.InvalidateDatabase:
		scopes = []cache.Scope{scope(db, scopeAll)}
	default:
		scopes = []cache.Scope{scope(scopeAll, scopeAll)}
	}
	for _, ch := range caches {
		ch.Store.Invalidate(inv.String(), scopes...)
	}
}

// finishCache ends the call's part of the cache: the last invalidation (a reply with no
// DATA, such as an error, ends a write too), the key's buffer back.
func (c *Call) finishCache() {
	if c.Rec.Attempts > 0 {
		c.invalidate()
	}
	if c.cache.cacheKeyed != nil && c.cache.key != nil {
		keyBufs.Put(c.cache.key)
	}
	c.cache = cacheCall{}
}
