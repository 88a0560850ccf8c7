// Package router is the immutable routing table of one listener. Matching follows the
// Ingress specification (networking.k8s.io/v1): an exact host beats a wildcard host, which
// beats a rule without host; within a host an Exact path beats a Prefix path, and a longer
// Prefix beats a shorter one. Prefix matching is by path element: /foo matches /foo and
// /foo/bar, not /foobar. For the same path, routes with conditions (conditions.go) come
// before routes without; the first whose conditions hold takes the call.
package router

import (
	"sort"
	"strings"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// Entry is one route with the target chosen by the caller (the gateway puts its compiled
// backend there). New compiles Cond and Split from the route.
type Entry[T any] struct {
	Route  config.Route
	Target T
	Cond   *Conditions // nil when the route has no conditions
	Split  *Split      // nil when the route has no weighted targets
}

// Table is immutable once built and safe for concurrent Match calls.
type Table[T any] struct {
	exact    map[string][]*Entry[T] // host → entries, ordered by path specificity
	wildcard []hostEntries[T]       // "*.suffix" rules, longest suffix first
	any      []*Entry[T]
	multi    bool // some wildcard entry is MultiLabel
}

type hostEntries[T any] struct {
	suffix  string // ".example.com"
	entries []*Entry[T]
}

// New builds a table; entries may come in any order.
func New[T any](entries []*Entry[T]) *Table[T] {
	t := &Table[T]{exact: make(map[string][]*Entry[T])}
	wild := map[string][]*Entry[T]{}
	for _, e := range entries {
		e.Cond, e.Split = Compile(e.Route.Conditions), newSplit(e.Route.Forward)
		h := strings.ToLower(e.Route.Host)
		switch {
		case h == "":
			t.any = append(t.any, e)
		case strings.HasPrefix(h, "*."):
			wild[h[1:]] = append(wild[h[1:]], e)
			t.multi = t.multi || e.Route.MultiLabel
		default:
			t.exact[h] = append(t.exact[h], e)
		}
	}
	for h, es := range t.exact {
		t.exact[h] = sortPaths(es)
	}
	for s, es := range wild {
		t.wildcard = append(t.wildcard, hostEntries[T]{suffix: s, entries: sortPaths(es)})
	}
	sort.Slice(t.wildcard, func(i, j int) bool { return len(t.wildcard[i].suffix) > len(t.wildcard[j].suffix) })
	t.any = sortPaths(t.any)
	return t
}

func sortPaths[T any](es []*Entry[T]) []*Entry[T] {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Route, es[j].Route
		if (a.PathType == config.PathExact) != (b.PathType == config.PathExact) {
			return a.PathType == config.PathExact
		}
		if len(a.Path) != len(b.Path) {
			return len(a.Path) > len(b.Path)
		}
		// For the same path, a route with conditions is tried before one without, which
		// would otherwise take every call first.
		return len(a.Conditions) > 0 && len(b.Conditions) == 0
	})
	return es
}

// Match returns the entry without conditions for a request to host (":authority" or
// Host, a port is ignored) and path, or nil when no such rule matches.
func (t *Table[T]) Match(host, path string) *Entry[T] {
	return t.Find(NormalizeHost(host), path, func(e *Entry[T]) bool { return e.Cond == nil })
}

// Find returns the first entry, in match order, whose host and path match a request to
// host (as NormalizeHost returns it) and path and that accept takes, or nil. accept sees
// the candidates in order and must not keep them.
func (t *Table[T]) Find(host, path string, accept func(*Entry[T]) bool) *Entry[T] {
	if es, ok := t.exact[host]; ok {
		if e := matchPath(es, path, accept); e != nil {
			return e
		}
	}
	// A wildcard covers exactly one label: *.example.com matches a.example.com, not
	// a.b.example.com (networking.k8s.io/v1 IngressRule.Host), unless its route is
	// MultiLabel (the Gateway API's); the longest matching suffix is tried first.
	if i := strings.IndexByte(host, '.'); i > 0 {
		if e := t.wild(host[i:], path, accept); e != nil {
			return e
		}
		multi := func(e *Entry[T]) bool { return e.Route.MultiLabel && accept(e) }
		for suffix := host[i:]; t.multi; {
			j := strings.IndexByte(suffix[1:], '.')
			if j < 0 {
				break
			}
			suffix = suffix[1+j:]
			if e := t.wild(suffix, path, multi); e != nil {
				return e
			}
		}
	}
	return matchPath(t.any, path, accept)
}

// wild finds the entry among the wildcard rules of suffix (".example.com").
func (t *Table[T]) wild(suffix, path string, accept func(*Entry[T]) bool) *Entry[T] {
	for _, w := range t.wildcard {
		if w.suffix == suffix {
			return matchPath(w.entries, path, accept)
		}
	}
	return nil
}

func matchPath[T any](es []*Entry[T], path string, accept func(*Entry[T]) bool) *Entry[T] {
	for _, e := range es {
		if pathMatches(&e.Route, path) && accept(e) {
			return e
		}
	}
	return nil
}

func pathMatches(r *config.Route, path string) bool {
	if r.PathType == config.PathExact {
		return path == r.Path
	}
	p := strings.TrimSuffix(r.Path, "/")
	if p == "" {
		return true // "/" matches everything
	}
	if !strings.HasPrefix(path, p) {
		return false
	}
	return len(path) == len(p) || path[len(p)] == '/'
}
