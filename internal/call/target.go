package call

import (
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// target is the backend a route sends a call to: its own, or one of its weighted targets.
func target(snap *gateway.Snapshot, e *router.Entry[*gateway.Backend]) *gateway.Backend {
	if e.Split != nil {
		return weighted(snap, e.Route.Forward, e.Split.Next())
	}
	return e.Target
}

// weighted is the i-th target of fw, unless its backend has no endpoint to take the call:
// then the next target with a weight that has one (the ALB would send the call and fail
// it), so that while one cluster of a blue/green pair starts or drains, its share goes to
// the other instead of failing. When none has one, the call fails naming the i-th.
func weighted(snap *gateway.Snapshot, fw []config.WeightedBackend, i int) *gateway.Backend {
	now := time.Now().UnixNano()
	for k := range len(fw) {
		t := fw[(i+k)%len(fw)]
		if be := snap.Backends[t.Backend]; t.Weight > 0 && be != nil && available(be, now) {
			return be
		}
	}
	return snap.Backends[fw[i].Backend]
}

func available(be *gateway.Backend, now int64) bool {
	for _, ep := range be.Endpoints {
		if ep.Available(now) {
			return true
		}
	}
	return false
}
