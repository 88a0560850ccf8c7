package ratelimit

import (
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

const second = int64(time.Second)

// offer sends calls evenly spaced at offered calls/s for d on a fake clock from t0 and
// counts the admitted ones.
func offer(s *Set, c *Call, offered float64, t0, d int64) (admitted int) {
	n := int(offered * float64(d) / float64(second))
	for i := range n {
		now := t0 + int64(float64(i)*float64(second)/offered)
		if s.Admit(c, now) == nil {
			admitted++
		}
	}
	return admitted
}

// Over 20 s the admitted rate is within 5 % of the limit, whatever the overload, for call
// rates from 1/s to 20,000/s and for the bytes of writes.
func TestAdmittedRateOver20Seconds(t *testing.T) {
	read := &Call{User: "alice", Class: milvus.Read}
	write := &Call{User: "alice", Class: milvus.Write, Bytes: 4096}
	cases := []struct {
		name    string
		spec    config.RateLimit
		c       *Call
		offered float64 // calls/s
		rate    float64 // the limit in calls/s
	}{
		{"1 call/s, 3x", config.RateLimit{Name: "a", Calls: 1}, read, 3, 1},
		{"100 calls/s, 2x", config.RateLimit{Name: "a", Calls: 100}, read, 200, 100},
		{"100 calls/s, 10x", config.RateLimit{Name: "a", Calls: 100}, read, 1000, 100},
		{"20000 calls/s, 1.5x", config.RateLimit{Name: "a", Calls: 20000}, read, 30000, 20000},
		{"1 MiB/s of 4 KiB writes, 2x", config.RateLimit{Name: "a", Bytes: 1 << 20}, write, 512, 256},
		{"burst 2 s", config.RateLimit{Name: "a", Calls: 500, Burst: 2}, read, 1000, 500},
	}
	for _, tc := range cases {
		s := Compile([]config.RateLimit{tc.spec}, nil, 0)
		got := float64(offer(s, tc.c, tc.offered, 0, 20*second)) / 20
		maxErr := 0.05
		if tc.spec.Burst > 1 {
			maxErr = 0.11 // a full 2 s bucket is 10 % of 20 s, by choice
		}
		if math.Abs(got-tc.rate)/tc.rate > maxErr {
			t.Errorf("%s: admitted %.2f/s over 20 s, limit %v/s: off by more than %.0f %%", tc.name, got, tc.rate, maxErr*100)
		}
	}
}

// Below the limit nothing is refused.
func TestUnderTheLimitAllIsAdmitted(t *testing.T) {
	s := Compile([]config.RateLimit{{Name: "a", Calls: 100}}, nil, 0)
	c := &Call{Class: milvus.Read}
	if got := offer(s, c, 90, 0, 20*second); got != 1800 {
		t.Errorf("admitted %d of 1800 calls offered at 90/s under a 100/s limit", got)
	}
}

func TestPerUserBuckets(t *testing.T) {
	s := Compile([]config.RateLimit{{Name: "each-user", Per: []string{"user"}, Calls: 10}}, nil, 0)
	alice, bob := &Call{User: "alice"}, &Call{User: "bob"}
	for range 5 {
		s.Admit(alice, 0)
	}
	r := s.Admit(alice, 0)
	if r == nil {
		t.Fatal("alice's sixth call in the same instant was admitted; her bucket holds 5")
	}
	want := `rate limit exceeded[rate=10]: milvus-lb rate limit "each-user" allows 10 calls/s for user alice`
	if r.Reason() != want {
		t.Errorf("reason %q, want %q", r.Reason(), want)
	}
	if r := s.Admit(bob, 0); r != nil {
		t.Errorf("bob refused by alice's bucket: %s", r.Reason())
	}
}

func TestSelectors(t *testing.T) {
	s := Compile([]config.RateLimit{{Name: "tenant-a-writes", Databases: []string{"tenant_a"}, Collections: []string{"logs_*"},
		Operations: []string{"write"}, Calls: 1, Burst: 1}}, nil, 0)
	cases := []struct {
		name    string
		c       Call
		limited bool
	}{
		{"matching write", Call{Database: "tenant_a", Collection: "logs_1", Class: milvus.Write}, true},
		{"a read", Call{Database: "tenant_a", Collection: "logs_1", Class: milvus.Read}, false},
		{"another database", Call{Database: "tenant_b", Collection: "logs_1", Class: milvus.Write}, false},
		{"database not read", Call{Collection: "logs_1", Class: milvus.Write}, false},
		{"another collection", Call{Database: "tenant_a", Collection: "users", Class: milvus.Write}, false},
	}
	for _, tc := range cases {
		s := Compile([]config.RateLimit{s.limits[0].spec}, nil, 0)
		s.Admit(&tc.c, 0)
		if limited := s.Admit(&tc.c, 0) != nil; limited != tc.limited {
			t.Errorf("%s: second call refused = %v, want %v", tc.name, limited, tc.limited)
		}
	}
}

// A call refused by one limit costs nothing in the others.
func TestRefusalTakesNothing(t *testing.T) {
	s := Compile([]config.RateLimit{{Name: "wide", Calls: 100}, {Name: "narrow", Per: []string{"user"}, Calls: 1, Burst: 1}}, nil, 0)
	alice := &Call{User: "alice"}
	s.Admit(alice, 0)
	for range 50 {
		if r := s.Admit(alice, 0); r == nil || r.Limit != "narrow" {
			t.Fatalf("refusal %+v, want by narrow", r)
		}
	}
	admitted := 0
	for i := range 100 {
		if s.Admit(&Call{User: "u" + string(rune('a'+i%26)) + string(rune('a'+i/26))}, 0) == nil {
			admitted++
		}
	}
	if admitted != 49 { // wide's 50-call bucket less alice's one admitted call
		t.Errorf("wide admitted %d other calls after alice's refusals, want 49", admitted)
	}
}

// Bytes are limited for writes only, and a write larger than the bucket still passes
// when the bucket is full, then the rate is owed.
func TestBytesOfWrites(t *testing.T) {
	s := Compile([]config.RateLimit{{Name: "bytes", Bytes: 1000, Burst: 1}}, nil, 0)
	if r := s.Admit(&Call{Class: milvus.Read, Bytes: 1 << 20}, 0); r != nil {
		t.Errorf("a read was limited by a bytes rate: %s", r.Reason())
	}
	if r := s.Admit(&Call{Class: milvus.Write, Bytes: 5000}, 0); r != nil {
		t.Errorf("a 5000-byte write into a full 1000-byte bucket was refused: %s", r.Reason())
	}
	if r := s.Admit(&Call{Class: milvus.Write, Bytes: 1}, 4*second); r == nil {
		t.Errorf("a write 4 s after a 5000-byte one at 1000 B/s was admitted; the debt is not paid")
	} else if !strings.Contains(r.Reason(), "1000 bytes/s of writes") {
		t.Errorf("reason %q does not name the bytes rate", r.Reason())
	}
	if r := s.Admit(&Call{Class: milvus.Write, Bytes: 1}, 6*second); r != nil {
		t.Errorf("a write 6 s later was refused: %s", r.Reason())
	}
}

// A new configuration keeps the buckets of unchanged limits and starts changed ones full.
func TestCompileKeepsUnchangedBuckets(t *testing.T) {
	specs := []config.RateLimit{{Name: "a", Calls: 10, Burst: 1}, {Name: "b", Calls: 10, Burst: 1}}
	s1 := Compile(specs, nil, 0)
	c := &Call{}
	for range 10 {
		s1.Admit(c, 0)
	}
	specs2 := []config.RateLimit{specs[0], {Name: "b", Calls: 20, Burst: 1}}
	s2 := Compile(specs2, s1, 0)
	if s2.limits[0] != s1.limits[0] || s2.limits[1] == s1.limits[1] {
		t.Fatal("unchanged limit a was not kept, or changed limit b was")
	}
	if r := s2.Admit(c, 0); r == nil || r.Limit != "a" {
		t.Errorf("after a reload, refusal %+v; want a's emptied bucket to refuse", r)
	}
}

func TestBucketsAreBounded(t *testing.T) {
	s := Compile([]config.RateLimit{{Name: "each", Per: []string{"collection"}, Calls: 1, Burst: 1}}, nil, 0)
	for i := range maxBuckets + 100 {
		s.Admit(&Call{Collection: "c" + itoa(i)}, 0)
	}
	if n := len(s.limits[0].calls.m); n > maxBuckets {
		t.Errorf("%d buckets kept, want at most %d", n, maxBuckets)
	}
	// Much later every bucket is full again: they are forgotten to make room.
	s.Admit(&Call{Collection: "late"}, 10*second)
	if n := len(s.limits[0].calls.m); n != 1 {
		t.Errorf("%d buckets after the idle ones were forgotten, want 1", n)
	}
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		if i /= 10; i == 0 {
			return string(b)
		}
	}
}

// Concurrent callers never get more than the bucket and the refill allow.
func TestConcurrentAdmit(t *testing.T) {
	s := Compile([]config.RateLimit{{Name: "a", Calls: 1000, Burst: 1}}, nil, Clock())
	var mu sync.Mutex
	admitted := 0
	var wg sync.WaitGroup
	t0 := Clock()
	for range 8 {
		wg.Go(func() {
			n := 0
			for range 2000 {
				if s.Admit(&Call{}, Clock()) == nil {
					n++
				}
			}
			mu.Lock()
			admitted += n
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := float64(Clock()-t0) / float64(second)
	if limit := 1000 + 1000*elapsed + 1; float64(admitted) > limit {
		t.Errorf("admitted %d calls in %.3f s; the most a 1000/s bucket of 1000 allows is %.0f", admitted, elapsed, limit)
	}
}

func BenchmarkAdmit(b *testing.B) {
	s := Compile([]config.RateLimit{{Name: "each-user", Per: []string{"user"}, Operations: []string{"read"}, Calls: 1e9}}, nil, 0)
	c := &Call{User: "alice", Class: milvus.Read}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Admit(c, int64(i))
	}
}
