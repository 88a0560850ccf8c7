package call

import (
	"time"

	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// A standby cluster (config.Standby, milvus-lb.io/standby) is kept in sync with its
// primary by Milvus CDC, asynchronously: it serves reads a little behind the primary and
// refuses writes. So only reads that accept stale data go to it: those whose consistency
// level is Bounded or Eventually, as the request carries it, and whose guarantee_timestamp
// asks for nothing the standby may lack. Strong and Session reads (a Session read must see
// the client's own writes, which reach the primary first), reads that leave the level to
// the collection, all writes and all DDL go to the primary.
//
// guarantee_timestamp is the point in time a read must see (a Milvus hybrid timestamp:
// physical milliseconds << 18). Milvus's proxy replaces it for Bounded (now less
// common.gracefulTime) and Eventually reads, and pymilvus sends 2 with Bounded; but a
// client may set one with Eventually (pymilvus keeps the caller's guarantee_timestamp
// then), and an iterator's later pages carry its first page's timestamp. The balancer
// takes a timestamp as the caller's word: a read that names a time more recent than the
// standby's declared staleness ago stays on the primary, which has everything up to now.
// 0, 1 and 2 name no time (strong, eventually and bounded in the clients' and the proxy's
// own shorthand) and physical time 0 is 1970: they pass.

// mayStandby reports whether a call routed by e may go to a standby: it is a read, and a
// backend of the route has one.
func mayStandby(snap *gateway.Snapshot, e *router.Entry[*gateway.Backend], req *Request) bool {
	if req.Milvus == nil || req.Milvus.Class != milvus.Read {
		return false
	}
	if e.Split == nil {
		return e.Target != nil && e.Target.Standby != nil
	}
	for _, t := range e.Route.Forward {
		if be := snap.Backends[t.Backend]; be != nil && be.Standby != nil {
			return true
		}
	}
	return false
}

// standby is the backend a read routed to be goes to. When the standby has no endpoint
// to take it, the primary; when the primary has none, the standby, whatever the level
// (reads keep working while the primary is down; writes fail naming it); else the standby
// takes its weight's share of the reads that accept stale data.
func standby(snap *gateway.Snapshot, be *gateway.Backend, names *router.Names) *gateway.Backend {
	if be == nil || be.Standby == nil {
		return be
	}
	sb := snap.Backends[be.Standby.Backend]
	if sb == nil {
		return be
	}
	t := time.Now()
	now := t.UnixNano()
	switch {
	case !available(sb, now):
		return be
	case !available(be, now):
		return sb
	case staleOK(names, time.Duration(be.Standby.Staleness), t) && int(be.Turns.Add(1)%100) < be.Standby.Weight:
		return sb
	}
	return be
}

// staleOK reports whether a read accepts the data a standby staleness behind the primary
// has, at now: its consistency level accepts stale data, and its guarantee_timestamp, if
// it names a time, is at least staleness old.
func staleOK(n *router.Names, staleness time.Duration, now time.Time) bool {
	if n == nil || n.Known&router.NameConsistency == 0 {
		return false
	}
	if n.Consistency != "Bounded" && n.Consistency != "Eventually" {
		return false
	}
	return int64(n.Guarantee>>hybridLogicalBits) <= now.Add(-staleness).UnixMilli()
}

// hybridLogicalBits is the logical part of a Milvus hybrid timestamp, below its physical
// milliseconds (tsoutil.logicalBits).
const hybridLogicalBits = 18
