// Package ratelimit holds the rate limits of milvus-lb.io/rate-limits: token buckets per
// user, database, collection and operation class, in calls per second and, for writes,
// request bytes per second. A Set is one Ingress's limits with their buckets; a new
// configuration keeps the buckets of the limits it leaves unchanged, so a reload neither
// refills nor empties them. Limits hold per milvus-lb process.
package ratelimit

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/glob"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// Call is what the limits see of one call.
type Call struct {
	User       string // from the authorization metadata; "" when none
	Database   string // resolved as Milvus resolves it; "" when it could not be read
	Collection string // "" when the call names none or it could not be read
	Class      milvus.Class
	Bytes      int64 // the request message's length, for the bytes rate of writes
}

var start = time.Now()

// Clock is the time limits are kept in: monotonic nanoseconds.
func Clock() int64 { return int64(time.Since(start)) }

// Set is the compiled limits of one Ingress. Safe for concurrent use.
type Set struct {
	limits []*limit
	need   Need
}

// Need says which facts of a call, beyond its headers, Admit reads: the data path reads
// them from the call's first request message before it asks.
type Need struct {
	Database, Collection, Bytes bool
}

type limit struct {
	spec                          config.RateLimit
	users, databases, collections []glob.Pattern
	ops                           [4]bool // by milvus.Class; all false: every class
	per                           [4]bool // user, database, collection, operation
	calls, bytes                  *buckets
}

// Compile compiles specs, taking over from prev (the same Ingress's Set in the previous
// configuration, or nil) the buckets of every limit whose spec did not change.
func Compile(specs []config.RateLimit, prev *Set, now int64) *Set {
	if len(specs) == 0 {
		return nil
	}
	s := &Set{}
	for _, sp := range specs {
		l := prev.find(sp)
		if l == nil {
			l = newLimit(sp, now)
		}
		s.limits = append(s.limits, l)
		s.need.Database = s.need.Database || len(sp.Databases) > 0 || l.per[1]
		s.need.Collection = s.need.Collection || len(sp.Collections) > 0 || l.per[2]
		s.need.Bytes = s.need.Bytes || sp.Bytes > 0
	}
	return s
}

// CompileAll compiles the limits of every Ingress (by ns/name) against the previous ones.
func CompileAll(m map[string][]config.RateLimit, prev map[string]*Set, now int64) map[string]*Set {
	out := make(map[string]*Set, len(m))
	for ing, specs := range m {
		if s := Compile(specs, prev[ing], now); s != nil {
			out[ing] = s
		}
	}
	return out
}

func (s *Set) find(sp config.RateLimit) *limit {
	if s == nil {
		return nil
	}
	for _, l := range s.limits {
		if reflect.DeepEqual(l.spec, sp) {
			return l
		}
	}
	return nil
}

// Need is what Admit reads of a call; the zero Need for a nil Set.
func (s *Set) Need() Need {
	if s == nil {
		return Need{}
	}
	return s.need
}

var perNames = [4]string{"user", "database", "collection", "operation"}

func newLimit(sp config.RateLimit, now int64) *limit {
	l := &limit{spec: sp}
	for _, u := range sp.Users {
		l.users = append(l.users, glob.New(u, false))
	}
	for _, d := range sp.Databases {
		l.databases = append(l.databases, glob.New(d, false))
	}
	for _, c := range sp.Collections {
		l.collections = append(l.collections, glob.New(c, false))
	}
	for _, op := range sp.Operations {
		if c, ok := milvus.ParseClass(op); ok {
			l.ops[c] = true
		}
	}
	keyed := false
	for _, p := range sp.Per {
		for i, n := range perNames {
			if p == n {
				l.per[i], keyed = true, true
			}
		}
	}
	burst := sp.Burst
	if burst <= 0 {
		burst = DefaultBurst
	}
	if sp.Calls > 0 {
		// A bucket must hold one call, or a rate under 1/burst would admit none.
		l.calls = newBuckets(sp.Calls, max(sp.Calls*burst, 1), keyed, now)
	}
	if sp.Bytes > 0 {
		l.bytes = newBuckets(sp.Bytes, sp.Bytes*burst, keyed, now)
	}
	return l
}

// DefaultBurst is the seconds of its rate a bucket holds when the limit does not say: a
// bucket starts full, so over any 20 s a client gets at most 2.5 % more than the rate.
const DefaultBurst = 0.5

// applies reports whether the limit's selectors take c. A selector on a name that could
// not be read does not.
func (l *limit) applies(c *Call) bool {
	if l.ops != [4]bool{} && !l.ops[c.Class] {
		return false
	}
	return selects(l.users, c.User) && selects(l.databases, c.Database) && selects(l.collections, c.Collection)
}

func selects(ps []glob.Pattern, v string) bool {
	return len(ps) == 0 || v != "" && glob.Any(ps, v)
}

func (l *limit) key(c *Call) perKey {
	var k perKey
	if l.per[0] {
		k.user = c.User
	}
	if l.per[1] {
		k.database = c.Database
	}
	if l.per[2] {
		k.collection = c.Collection
	}
	if l.per[3] {
		k.class = int8(c.Class)
	}
	return k
}

// Refusal says which limit refused a call, for the reply's reason, logs and metrics.
type Refusal struct {
	Limit string // the limit's name
	Bytes bool   // its bytes rate refused the call (else its calls rate)
	Rate  float64
	Per   string // the bucket, as "user alice, collection logs"; "" for a limit's only bucket
}

// Reason is the refusal as a client reads it in the reply's Status, in the words Milvus
// uses for its own rate limit, then naming the limit.
func (r *Refusal) Reason() string {
	unit := "calls/s"
	if r.Bytes {
		unit = "bytes/s of writes"
	}
	s := fmt.Sprintf("rate limit exceeded[rate=%g]: milvus-lb rate limit %q allows %g %s", r.Rate, r.Limit, r.Rate, unit)
	if r.Per != "" {
		s += " for " + r.Per
	}
	return s
}

func (l *limit) refusal(c *Call, bytes bool) *Refusal {
	r := &Refusal{Limit: l.spec.Name, Bytes: bytes, Rate: l.spec.Calls}
	if bytes {
		r.Rate = l.spec.Bytes
	}
	var per []string
	for i, v := range [4]string{c.User, c.Database, c.Collection, c.Class.String()} {
		if l.per[i] {
			per = append(per, perNames[i]+" "+quoteEmpty(v))
		}
	}
	r.Per = strings.Join(per, ", ")
	return r
}

func quoteEmpty(v string) string {
	if v == "" {
		return `""`
	}
	return v
}
