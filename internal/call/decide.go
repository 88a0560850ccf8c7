package call

import (
	"net"
	"strings"

	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/ratelimit"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// MaxNameBytes is the most of a call's first request message that a decision waits for.
// Milvus requests name their database and collection in their first fields, so a few
// hundred bytes usually tell them; the consistency level of a Search comes after its
// vectors. A name that is not within the first MaxNameBytes (or that cannot be read: a
// compressed message) is unknown: conditions on it do not hold, so the call goes by the
// routes that do not ask, and rate-limit selectors on it do not apply. It is 64 KiB less
// what makes the whole wait fit the HTTP/2 initial window (HoldLimit).
const MaxNameBytes = 1<<16 - 1 - PrefixLen

// cheapNames are read whenever the first message is read at all: they come in its first
// fields, so asking for them costs nothing more, and the rate limits of whichever route
// wins may need them.
const cheapNames = router.NameDB | router.NameCollection | router.NameSize

// Request is what the decision knows of a call from its headers.
type Request struct {
	Authority string // :authority or Host
	SNI       string // the TLS server name, "" on plaintext
	User      string // the user name of the authorization metadata, "" when none
	// Memo is the connection's memory of its last route (RouteMemo); nil when the data
	// path keeps none.
	Memo *RouteMemo
	router.Request
}

// readable reports whether conditions on the call's first message can hold: a
// MilvusService call that is not a stream (a stream's first message may be long in
// coming).
func (r *Request) readable() bool { return r.Milvus != nil && !r.Milvus.Streaming }

// Choice is where a call goes.
type Choice struct {
	// Entry is the route that takes the call; nil when none does, or when Need is set.
	Entry *router.Entry[*gateway.Backend]
	// Backend is the route's backend, or the one chosen by weight among its targets;
	// nil for a route that answers itself (Entry.Route.Fixed).
	Backend *gateway.Backend
	// Need is set when the choice depends on the first request message: read these from
	// it (at most MaxNameBytes of it) and choose again with them.
	Need router.NameSet
}

// Choose routes a call on listener l of snapshot snap. names is nil at the headers: if the
// route depends on what the first request message says, Choose returns Need and must be
// called again with what was read of it (names not read are left out of Known). It
// changes nothing but a weighted route's place in its order (router.Split) and req.Memo,
// and allocates nothing; routes without Milvus conditions cost what the host/path table
// costs, or less when req.Memo holds the route.
//
// Routes are tried in the router's order; the first whose conditions hold takes the call.
// Conditions on the first message hold only for calls whose message is readable.
func Choose(snap *gateway.Snapshot, l *gateway.Listener, req *Request, names *router.Names) Choice {
	e, need := find(snap, l, req, names)
	readable := req.readable()
	switch {
	case need != 0:
		return Choice{Need: need | cheapNames}
	case e == nil:
		return Choice{}
	case names == nil && readable && mayStandby(snap, e, req):
		return Choice{Need: router.NameConsistency | cheapNames}
	case names == nil && readable && snap.RateLimits[e.Route.Ingress].Need() != (ratelimit.Need{}):
		return Choice{Need: cheapNames}
	}
	be := target(snap, e)
	if mayStandby(snap, e, req) {
		be = standby(snap, be, names)
	}
	return Choice{Entry: e, Backend: be}
}

// find is the route whose host, path and conditions match, looked up by each of the
// call's server names in turn; or, when a route that may apply reads the first message
// and names is nil, what it reads (need).
func find(snap *gateway.Snapshot, l *gateway.Listener, req *Request, names *router.Names) (e *router.Entry[*gateway.Backend], need router.NameSet) {
	m := req.Memo
	if names != nil {
		m = nil // a call that waited for its message has conditions: nothing to remember
	}
	if e := m.lookup(snap, req); e != nil {
		return e, 0
	}
	readable := req.readable()
	pure := true // no route with conditions was asked: the host and path alone chose
	for _, h := range serverNames(req.Authority, req.SNI) {
		if h == "" {
			continue
		}
		host := router.NormalizeHost(h)
		e = l.Routes.Find(host, req.Path, func(e *router.Entry[*gateway.Backend]) bool {
			if e.Cond == nil {
				return true
			}
			pure = false
			if !e.Cond.Head(host, &req.Request) {
				return false
			}
			switch n := e.Cond.Need(); {
			case n == 0:
				return true
			case !readable:
				return false
			case names == nil:
				need |= n // every route that may apply tells what it reads
				return false
			}
			return e.Cond.Message(&req.Request, names)
		})
		if need != 0 {
			return nil, need
		}
		if e != nil {
			if pure {
				m.remember(snap, req, e)
			}
			return e, 0
		}
	}
	return nil, 0
}

// serverNames are the names a call's rules are looked up by, in order: its :authority,
// then its TLS server name; the server name first when the authority is an IP address,
// which says nothing about the site meant. A client that dials an address and sets only
// the server name sends that: grpc-js, and so the Milvus Node SDK, maps its serverName
// option to grpc.ssl_target_name_override, which changes SNI but not :authority.
func serverNames(authority, sni string) [2]string {
	host := router.HostOnly(authority)
	names := [2]string{authority, ""}
	if sni != "" && !strings.EqualFold(sni, host) {
		names[1] = sni
		if net.ParseIP(strings.Trim(host, "[]")) != nil {
			names[0], names[1] = sni, authority
		}
	}
	return names
}
