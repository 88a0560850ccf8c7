// Package cache is the store behind milvus-lb's reply cache (issue 15): a bounded LRU of
// immutable replies by key, measured in bytes, with invalidation by scope. It knows
// nothing of Milvus: what is cacheable, the key, and when an entry may be served are the
// per-call decision's (internal/call, cache.go); this package only keeps entries within
// their bounds and says which are still valid.
//
// Invalidation is by generation: every entry names the scopes it depends on (a
// collection, its database, its backend) and remembers their generations when its call
// began; invalidating a scope increments its generation, so every entry that depends on it
// is stale at once (and dropped when next looked up or evicted), and a reply whose call
// began before the invalidation is refused when it comes to be stored. That is what makes
// a write that passes through the balancer visible to the next read: no entry made from a
// read that may have run before the write survives it.
package cache

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// Scope is what an entry depends on: a backend, a database of it, a collection of it.
// Any string may stand for "the whole database" or "the database's listings" (the call
// package chooses names that no Milvus collection can have).
type Scope struct {
	Backend, DB, Collection string
}

// Scopes is the number of scopes an entry depends on.
const Scopes = 4

// Token is the generations of an entry's scopes when its call began: taken before the
// call is sent, stored with the reply, and compared at every lookup.
type Token struct {
	scopes [Scopes]Scope
	gens   [Scopes]uint64
}

// Entry is one stored reply. Immutable once stored; shared by the calls it answers.
type Entry struct {
	Value []byte    // the reply as sent to the client (gRPC length-prefixed message)
	Made  time.Time // when the call that made it began
	TS    uint64    // the Milvus timestamp the reply is as of (Session consistency)
	key   string
	tok   Token
	size  int64
}

// entryOverhead is what an entry costs beside its key and value: the entry, its list
// element and its map slot. Counted so that many tiny entries also stay within maxBytes.
const entryOverhead = 160

// maxScopes bounds the generations kept: past it, everything is dropped and counting
// starts again, which is always correct (an empty cache serves nothing stale) and keeps a
// stream of writes to ever new collection names from growing the table.
const maxScopes = 1 << 16

// Stats are a cache's counters since it was made.
type Stats struct {
	Stores, Evictions, Refused int64
	Invalidations              map[string]int64 // by cause
	Entries, Bytes             int64
}

// Cache is a bounded LRU of replies. Safe for concurrent use.
type Cache struct {
	maxBytes, maxEntry int64

	mu      sync.Mutex
	entries map[string]*list.Element // of *Entry
	lru     list.List                // front: most recently used
	bytes   int64
	gens    map[Scope]uint64
	base    uint64 // the generation of a scope not in gens (see Invalidate)

	invalidations map[string]int64 // by cause; guarded by mu

	stores, evictions, refused atomic.Int64
}

// New returns a cache that holds at most maxBytes in all and maxEntry per entry (key and
// value and overhead).
func New(maxBytes, maxEntry int64) *Cache {
	return &Cache{maxBytes: maxBytes, maxEntry: min(maxEntry, maxBytes),
		entries: map[string]*list.Element{}, gens: map[Scope]uint64{}}
}

// MaxEntry is the largest entry the cache stores, key and value included.
func (c *Cache) MaxEntry() int64 { return c.maxEntry - entryOverhead }

// Begin takes the token of a call that depends on scopes, before it is sent.
func (c *Cache) Begin(scopes [Scopes]Scope) Token {
	t := Token{scopes: scopes}
	c.mu.Lock()
	for i, s := range scopes {
		t.gens[i] = c.genLocked(s)
	}
	c.mu.Unlock()
	return t
}

// validLocked reports whether no scope of t was invalidated since t was taken.
func (c *Cache) validLocked(t *Token) bool {
	for i, s := range t.scopes {
		if c.genLocked(s) != t.gens[i] {
			return false
		}
	}
	return true
}

// Get returns the entry stored under key, if one is and none of its scopes was
// invalidated since its call began. The key is only read.
func (c *Cache) Get(key []byte) *Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[string(key)]
	if !ok {
		return nil
	}
	e := el.Value.(*Entry)
	if !c.validLocked(&e.tok) {
		c.removeLocked(el)
		return nil
	}
	c.lru.MoveToFront(el)
	return e
}

// Drop removes the entry under key (one found too stale to serve, which a fresh reply
// will replace).
func (c *Cache) Drop(key []byte) {
	c.mu.Lock()
	if el, ok := c.entries[string(key)]; ok {
		c.removeLocked(el)
	}
	c.mu.Unlock()
}

// Put stores value under key, made by a call that began at made with token t, as of the
// Milvus timestamp ts. It reports false, storing nothing, when the entry is over the
// entry cap or a scope of t was invalidated since (the reply may predate a write). Older
// entries are evicted to make room. value is kept: the caller must not change it after.
func (c *Cache) Put(key, value []byte, made time.Time, ts uint64, t Token) bool {
	size := int64(len(key)+len(value)) + entryOverhead
	if size > c.maxEntry {
		c.refused.Add(1)
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.validLocked(&t) {
		c.refused.Add(1)
		return false
	}
	if el, ok := c.entries[string(key)]; ok {
		c.removeLocked(el)
	}
	for c.bytes+size > c.maxBytes {
		c.removeLocked(c.lru.Back())
		c.evictions.Add(1)
	}
	e := &Entry{Value: value, Made: made, TS: ts, key: string(key), tok: t, size: size}
	c.entries[e.key] = c.lru.PushFront(e)
	c.bytes += size
	c.stores.Add(1)
	return true
}

func (c *Cache) removeLocked(el *list.Element) {
	e := c.lru.Remove(el).(*Entry)
	delete(c.entries, e.key)
	c.bytes -= e.size
}

// Invalidate makes every entry that depends on one of scopes stale, and refuses the
// replies of calls that began before it. cause names why, for the counters (a few
// fixed names).
func (c *Cache) Invalidate(cause string, scopes ...Scope) {
	c.mu.Lock()
	if c.invalidations == nil {
		c.invalidations = map[string]int64{}
	}
	c.invalidations[cause]++
	if len(c.gens)+len(scopes) > maxScopes {
		c.gens = map[Scope]uint64{}
		c.entries = map[string]*list.Element{}
		c.lru.Init()
		c.bytes = 0
		// Tokens taken before now hold generations of the old table: count from a value
		// none of them holds, so that every one of them is refused.
		c.base += 1 << 32
	}
	for _, s := range scopes {
		c.gens[s] = c.genLocked(s) + 1
	}
	c.mu.Unlock()
}

func (c *Cache) genLocked(s Scope) uint64 {
	if g, ok := c.gens[s]; ok {
		return g
	}
	return c.base
}

// Stats returns the counters and what the cache holds now.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	n, b := int64(len(c.entries)), c.bytes
	inv := make(map[string]int64, len(c.invalidations))
	for k, v := range c.invalidations {
		inv[k] = v
	}
	c.mu.Unlock()
	return Stats{Stores: c.stores.Load(), Evictions: c.evictions.Load(), Invalidations: inv,
		Refused: c.refused.Load(), Entries: n, Bytes: b}
}
