package call

import (
	"bytes"
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
	scopeAll        = "\x00all"        // every entry of a database (or, as its DB, of a backend)
	scopeListing    = "\x00listing"    // what lists a database's collections and aliases
	scopeData       = "\x00data"       // every Search, Query and HybridSearch of a database
	scopeUnresolved = "\x00unresolved" // those of names not known to be a collection or an alias
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
	key   []byte // from keyBufs, until Finish
	tok   cache.Token
	store bool         // a miss whose reply may be stored
	learn bool         // a DescribeCollection: its reply tells the collection's default level
	ltok  *cache.Token // what is learnt: DescribeCollection only (a Token is 224 B)
	names milvus.Names
}

// keyBufs hold the keys of calls: a Search's (its vectors) is a few KiB.
var keyBufs = bufs.New(256, 16<<10)

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
	if c.cache.learn = c.method.Name == "DescribeCollection" && r.Collection != ""; c.cache.learn {
		ltok := ch.Store.Begin(entryScopes(c.be.Key, db, "", "", false))
		c.cache.ltok = &ltok
	}
	level, kn, knownRead := r.Consistency, knowledge{}, false
	if r.HasLevel && level == "" {
		kn, knownRead = c.known(ch, db, r.Collection, now), true
		level = kn.level
	}
	if r.Iterator || r.HasLevel && !servedLevel(level) {
		// Strong (never stale), Customized, a default not known, an iterator's page.
		c.Rec.Cache = CacheBypass
		return nil
	}
	if e := ch.Store.Get(key); e != nil && fresh(ch, e, level, r.Guarantee, now) {
		c.Rec.Cache = CacheHit
		return e.Value
	}
	if r.HasLevel && !knownRead {
		kn = c.known(ch, db, r.Collection, now)
	}
	c.cache.tok = c.missToken(ch, db, r.Collection, kn.collection, r.HasLevel, now)
	c.cache.store = true
	c.Rec.Cache = CacheMiss
	return nil
}

// missToken is the token of a miss: the generations of what its entry will depend on,
// taken before the call is sent (a hit needs none: Get checked its entry's own). When the
// scopes come from what was known of the name (resolved), that is read again after the
// generations: an alias change between the two reads would leave an entry depending on
// the collection the alias named before, so then the entry depends on every write.
func (c *Call) missToken(ch *gateway.Cache, db, name, resolved string, data bool, now time.Time) cache.Token {
	tok := ch.Store.Begin(entryScopes(c.be.Key, db, name, resolved, data))
	if data && resolved != "" && c.known(ch, db, name, now).collection != resolved {
		tok = ch.Store.Begin(entryScopes(c.be.Key, db, name, "", data))
	}
	return tok
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
		level = c.known(ch, milvus.ResolveDB(r.DB, c.dbMeta), r.Collection, now).level
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

// entryScopes are what an entry of a call naming db and collection depends on. A read
// of results (data: Search, Query, HybridSearch) of a name known to resolve to a
// collection (resolved: the name itself, or the collection the alias names) depends on
// the writes to that collection by the names known to resolve to it, and on the writes
// by names not known; of a name not known, on every write to the database: it may be an
// alias of any collection of it.
func entryScopes(be, db, collection, resolved string, data bool) [cache.Scopes]cache.Scope {
	s := [cache.Scopes]cache.Scope{
		{Backend: be, DB: db, Collection: collection},
		{Backend: be, DB: db, Collection: scopeAll},
		{Backend: be, DB: scopeAll, Collection: scopeAll},
		{Backend: be, DB: db, Collection: scopeAll}, // a repeat: nothing more
	}
	switch {
	case data && resolved != "":
		s[0].Collection, s[3].Collection = resolved, scopeData
	case data:
		s[0].Collection = scopeUnresolved
	case collection == "":
		s[0].Collection = scopeListing
	}
	return s
}

// appendKeyPart appends s with its length, so that parts cannot run into each other.
func appendKeyPart(key []byte, s string) []byte {
	key = binary.AppendUvarint(key, uint64(len(s)))
	return append(key, s...)
}

// knowledge is what DescribeCollection replies that passed through milvus-lb told of a
// name: the collection's default consistency level, and the collection the name
// resolves to (itself, or the collection of an alias; "" when not told).
type knowledge struct {
	level, collection string
}

// knownKey appends to dst the key of what is known of a collection or alias name in its
// Ingress's cache. The entry (level, 0, collection) depends on its database's listings,
// which every DDL on a collection of it changes (an AlterCollection may change the
// level, a drop and create the name's meaning), and on alias changes (which drop every
// entry of the database), but not on writes.
func knownKey(dst []byte, be, db, name string) []byte {
	dst = append(dst, "\x00known"...)
	return appendKeyPart(appendKeyPart(appendKeyPart(dst, be), db), name)
}

// known is what a DescribeCollection reply told of name within the maximum age, with no
// DDL on a collection of db or alias change since; zero when nothing is known.
func (c *Call) known(ch *gateway.Cache, db, name string, now time.Time) knowledge {
	var buf [128]byte
	e := ch.Store.Get(knownKey(buf[:0], c.be.Key, db, name))
	if e == nil || now.Sub(e.Made) >= time.Duration(ch.MaxAge) {
		return knowledge{}
	}
	level, collection, _ := bytes.Cut(e.Value, []byte{0})
	return knowledge{level: levelName(level), collection: string(collection)}
}

// levelName is the consistency level named b, as a constant: no allocation on a hit.
func levelName(b []byte) string {
	for _, l := range [...]string{"Strong", "Session", "Bounded", "Eventually", "Customized"} {
		if string(b) == l {
			return l
		}
	}
	return ""
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
	if cc.learn && (info.Collection == "" || info.Collection == cc.names.Collection || info.Collection == info.Resolved) {
		// Milvus answers with the name asked for (an alias stays an alias), milvus-lite
		// with the collection's: either is the call's.
		cc.c.Store.Put(knownKey(nil, c.be.Key, cc.names.DB, cc.names.Collection),
			[]byte(info.Consistency+"\x00"+info.Resolved), c.Rec.Start, 0, *cc.ltok)
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
	now := time.Now()
	for _, ch := range caches {
		ch.Store.Invalidate(inv.String(), c.staleScopes(ch, inv, db, r.Collection, now)...)
	}
}

// staleScopes are the scopes a call that changes inv of name (a collection or an alias)
// in db makes stale in ch: the name's metadata, the results of the names not known (any
// may be an alias of the collection), and those of every name known to resolve to the
// same collection, or, when the name is not known, those of every name of the database.
func (c *Call) staleScopes(ch *gateway.Cache, inv milvus.Invalidation, db, name string, now time.Time) []cache.Scope {
	be := c.be.Key
	scope := func(collection string) cache.Scope { return cache.Scope{Backend: be, DB: db, Collection: collection} }
	switch inv {
	case milvus.InvalidateDatabase:
		return []cache.Scope{scope(scopeAll)}
	case milvus.InvalidateBackend:
		return []cache.Scope{{Backend: be, DB: scopeAll, Collection: scopeAll}}
	}
	s := []cache.Scope{scope(name), scope(scopeUnresolved), scope(scopeData)}
	if to := c.known(ch, db, name, now).collection; to != "" {
		s[2] = scope(to)
	}
	if inv == milvus.InvalidateCollectionDDL {
		s = append(s, scope(scopeListing))
	}
	return s
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
