package call

import (
	"math/rand/v2"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// target is the backend a route sends a call to: its own, or one of its weighted targets.
func target(snap *gateway.Snapshot, e *router.Entry[*gateway.Backend]) *gateway.Backend {
	if fw := e.Route.Forward; len(fw) > 0 {
		return weighted(snap, fw)
	}
	return e.Target
}

// weighted chooses a target in proportion to the weights. A target whose backend has no
// endpoint to take the call is passed over for the next one with a weight that has (the
// ALB would send the call and fail it): while one cluster of a blue/green pair starts or
// drains, its share goes to the other instead of failing. When none has one, the chosen
// target is returned, and the call fails naming it.
func weighted(snap *gateway.Snapshot, fw []config.WeightedBackend) *gateway.Backend {
	total := 0
	for _, t := range fw {
		total += t.Weight
	}
	i, r := 0, rand.IntN(total) // translation makes sure total > 0
	for ; r >= fw[i].Weight; i++ {
		r -= fw[i].Weight
	}
	chosen := snap.Backends[fw[i].Backend]
	now := time.Now().UnixNano()
	for k := range len(fw) {
		t := fw[(i+k)%len(fw)]
		if be := snap.Backends[t.Backend]; t.Weight > 0 && be != nil && available(be, now) {
			return be
		}
	}
	return chosen
}

func available(be *gateway.Backend, now int64) bool {
	for _, ep := range be.Endpoints {
		if ep.Available(now) {
			return true
		}
	}
	return false
}
