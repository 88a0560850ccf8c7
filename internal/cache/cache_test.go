package cache

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"
)

var (
	coll    = Scope{"be", "db", "c"}
	other   = Scope{"be", "db", "d"}
	dbWide  = Scope{"be", "db", "*"}
	scopesC = [Scopes]Scope{coll, dbWide, {"be", "*", "*"}}
	scopesD = [Scopes]Scope{other, dbWide, {"be", "*", "*"}}
)

func TestPutGet(t *testing.T) {
	c := New(1<<20, 1<<10)
	now := time.Now()
	if c.Get([]byte("k")) != nil {
		t.Fatal("empty cache served an entry")
	}
	if !c.Put([]byte("k"), []byte("reply"), now, 7, c.Begin(scopesC)) {
		t.Fatal("Put refused a small entry")
	}
	e := c.Get([]byte("k"))
	if e == nil || string(e.Value) != "reply" || !e.Made.Equal(now) || e.TS != 7 {
		t.Fatalf("Get = %+v", e)
	}
	if st := c.Stats(); st.Stores != 1 || st.Entries != 1 || st.Bytes != int64(len("k")+len("reply")+entryOverhead) {
		t.Fatalf("stats %+v", st)
	}
}

func TestEntryCap(t *testing.T) {
	c := New(1<<20, 1000)
	big := bytes.Repeat([]byte("x"), 1000)
	if c.Put([]byte("k"), big, time.Now(), 0, c.Begin(scopesC)) {
		t.Fatal("an entry over the entry cap was stored")
	}
	if c.Get([]byte("k")) != nil || c.Stats().Refused != 1 {
		t.Fatalf("stats %+v", c.Stats())
	}
	if !c.Put([]byte("k"), big[:int(c.MaxEntry())-1], time.Now(), 0, c.Begin(scopesC)) {
		t.Fatal("an entry within MaxEntry was refused")
	}
}

// Under a stream of distinct entries the cache never holds more than its total, and keeps
// the most recently used.
func TestTotalBoundAndLRU(t *testing.T) {
	const total = 10_000
	c := New(total, 2000)
	val := bytes.Repeat([]byte("v"), 500)
	for i := range 1000 {
		c.Put(fmt.Appendf(nil, "k%d", i), val, time.Now(), 0, c.Begin(scopesC))
		if i > 0 && c.Get([]byte("k0")) == nil {
			t.Fatalf("k0, used after every store, was evicted at %d", i)
		}
		if st := c.Stats(); st.Bytes > total {
			t.Fatalf("holds %d bytes, more than %d", st.Bytes, total)
		}
	}
	st := c.Stats()
	if st.Evictions == 0 || st.Entries < 2 {
		t.Fatalf("stats %+v", st)
	}
	if c.Get([]byte("k1")) != nil {
		t.Fatal("the least recently used entry was kept")
	}
}

func TestInvalidate(t *testing.T) {
	c := New(1<<20, 1<<10)
	now := time.Now()
	c.Put([]byte("c"), []byte("1"), now, 0, c.Begin(scopesC))
	c.Put([]byte("d"), []byte("2"), now, 0, c.Begin(scopesD))
	c.Invalidate("write", coll)
	if c.Get([]byte("c")) != nil {
		t.Fatal("an entry of an invalidated collection was served")
	}
	if c.Get([]byte("d")) == nil {
		t.Fatal("another collection's entry was dropped")
	}
	c.Invalidate("alias", dbWide)
	if c.Get([]byte("d")) != nil {
		t.Fatal("an entry of an invalidated database was served")
	}
	if st := c.Stats(); st.Entries != 0 || st.Bytes != 0 || st.Invalidations["write"] != 1 || st.Invalidations["alias"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A reply whose call began before a write is refused: it may not show the write.
func TestPutAfterInvalidateRefused(t *testing.T) {
	c := New(1<<20, 1<<10)
	tok := c.Begin(scopesC)
	c.Invalidate("write", coll)
	if c.Put([]byte("c"), []byte("old"), time.Now(), 0, tok) {
		t.Fatal("a reply from before the invalidation was stored")
	}
	if !c.Put([]byte("c"), []byte("new"), time.Now(), 0, c.Begin(scopesC)) {
		t.Fatal("a reply from after the invalidation was refused")
	}
}

// Past maxScopes the table starts again; a token from before is still refused, even for
// a scope whose count started again from the same number.
func TestScopeTableBound(t *testing.T) {
	c := New(1<<20, 1<<10)
	c.Invalidate("write", coll)
	tok := c.Begin(scopesC) // coll at 1
	for i := range maxScopes {
		c.Invalidate("write", Scope{"be", "db", fmt.Sprint(i)})
	}
	c.Invalidate("write", coll)
	if c.Put([]byte("c"), []byte("old"), time.Now(), 0, tok) {
		t.Fatal("a token from before the table was cleared was accepted")
	}
	if len(c.gens) > maxScopes {
		t.Fatalf("%d scopes kept", len(c.gens))
	}
}

func TestConcurrent(t *testing.T) {
	c := New(50_000, 1000)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := fmt.Appendf(nil, "k%d", i%300)
				if c.Get(k) == nil {
					c.Put(k, k, time.Now(), 0, c.Begin(scopesC))
				}
				if i%97 == g {
					c.Invalidate("write", coll)
				}
			}
		}()
	}
	wg.Wait()
	if st := c.Stats(); st.Bytes > 50_000 {
		t.Fatalf("stats %+v", st)
	}
}

func BenchmarkGetHit(b *testing.B) {
	c := New(1<<20, 1<<16)
	key := bytes.Repeat([]byte("k"), 200)
	c.Put(key, make([]byte, 4096), time.Now(), 0, c.Begin(scopesC))
	b.ReportAllocs()
	for b.Loop() {
		if c.Get(key) == nil {
			b.Fatal("miss")
		}
	}
}
