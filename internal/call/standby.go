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
// level is Bounded or Eventually, as the request carries it. Strong and Session reads (a
// Session read must see the client's own writes, which reach the primary first), reads
// that leave the level to the collection, all writes and all DDL go to the primary.

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
	now := time.Now().UnixNano()
	switch {
	case !available(sb, now):
		return be
	case !available(be, now):
		return sb
	case staleOK(names) && int(be.Turns.Add(1)%100) < be.Standby.Weight:
		return sb
	}
	return be
}

// staleOK reports whether a read's consistency level accepts data a standby may lag by.
func staleOK(n *router.Names) bool {
	if n == nil || n.Known&router.NameConsistency == 0 {
		return false
	}
	return n.Consistency == "Bounded" || n.Consistency == "Eventually"
}
