package call

import (
	"slices"

	"github.com/milvus-lb/milvus-lb/internal/gateway"
)

// MirrorLimit is the largest request copied to a mirror: the data path keeps the whole
// request of a mirrored call (as for a retry) and hands the copy over once it ended.
const MirrorLimit = 1 << 20

// mirrorOf is the mirror a call routed to be also goes to (config.Mirror): nil unless be
// has one, the call's operation class is mirrored, and the call falls in its percent.
// Only MilvusService gRPC calls that are not streams are mirrored.
func mirrorOf(snap *gateway.Snapshot, be *gateway.Backend, req *Request) *gateway.Backend {
	if be == nil || be.Mirror == nil || req.Milvus == nil || req.Milvus.Streaming {
		return nil
	}
	m := be.Mirror
	if !slices.Contains(m.Operations, req.Milvus.Class.String()) {
		return nil
	}
	if m.Percent < 100 && int(be.MirrorTurns.Add(1)%100) >= m.Percent {
		return nil
	}
	return snap.Backends[m.Backend]
}

// Mirror is the backend the call is copied to, nil when none; set by Route. The data path
// sends the copy (its whole request, kept up to MirrorLimit) once the request ended, and
// never waits for it.
func (c *Call) Mirror() *gateway.Backend { return c.mirror }
