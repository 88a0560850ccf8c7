package call

import (
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// RouteMemo is one connection's memory of the route its last call took: a client sends
// call after call to the same :authority and path, and finding the route again (the
// server names, the host's normal form, the host and path tables) was about 500
// instructions per Search call (docs/benchmarks.md, "Search per call, fifth round"). It
// holds only a route that the host and path chose alone, no route with conditions having
// been asked, and only for the snapshot it was found in: any other call, or any reload,
// looks the route up as if there were no memo. The next steps (a weighted route's target,
// a standby, the rate limits) are taken for every call as before.
//
// Not safe for concurrent use: the relay keeps one per client connection, used by the
// connection's reader only. The zero value remembers nothing; so does a nil *RouteMemo.
type RouteMemo struct {
	snap      *gateway.Snapshot
	authority string
	sni       string
	path      string
	e         *router.Entry[*gateway.Backend]
}

// Forget lets the remembered route, and with it its snapshot, go: the relay forgets when a
// connection parks, so that an idle connection keeps no replaced snapshot alive.
func (m *RouteMemo) Forget() { *m = RouteMemo{} }

func (m *RouteMemo) lookup(snap *gateway.Snapshot, req *Request) *router.Entry[*gateway.Backend] {
	if m == nil || m.snap != snap || m.path != req.Path || m.authority != req.Authority || m.sni != req.SNI {
		return nil
	}
	return m.e
}

func (m *RouteMemo) remember(snap *gateway.Snapshot, req *Request, e *router.Entry[*gateway.Backend]) {
	if m != nil {
		*m = RouteMemo{snap: snap, authority: req.Authority, sni: req.SNI, path: req.Path, e: e}
	}
}
