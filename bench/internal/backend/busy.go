package backend

import (
	"context"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
)

// BusyTrailer is the trailer a Search reply carries when Messages.MarkBusy is set and an
// Insert was in flight on this backend while the Search was: from the moment its headers
// arrived (grpc-go's stats.Begin, before the first byte of the message is read) to the
// end of its reply. The mixed workload splits Search latencies by it, to tell what
// sharing a backend with a large insert costs a Search from what the machine's load does.
const BusyTrailer = "bench-insert-in-flight"

var busyMD = metadata.Pairs(BusyTrailer, "1")

// busyStats counts the Inserts in flight and marks each Search that overlapped one.
// Its methods are called concurrently by grpc-go.
type busyStats struct{ inserts *atomic.Int64 }

// rpcKind is what TagRPC put into an RPC's context: an Insert (counted) or a Search
// (with its overlap flag).
type rpcKind struct {
	insert  bool
	overlap atomic.Bool
}

type kindKey struct{}

func (h busyStats) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	switch {
	case strings.HasSuffix(info.FullMethodName, "/Insert"):
		return context.WithValue(ctx, kindKey{}, &rpcKind{insert: true})
	case strings.HasSuffix(info.FullMethodName, "/Search"):
		return context.WithValue(ctx, kindKey{}, &rpcKind{})
	}
	return ctx
}

func (h busyStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	k, _ := ctx.Value(kindKey{}).(*rpcKind)
	if k == nil {
		return
	}
	switch s.(type) {
	case *stats.Begin:
		if k.insert {
			h.inserts.Add(1)
		} else if h.inserts.Load() > 0 {
			k.overlap.Store(true)
		}
	case *stats.End:
		if k.insert {
			h.inserts.Add(-1)
		}
	}
}

func (busyStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (busyStats) HandleConn(context.Context, stats.ConnStats)                       {}

// markBusy sets BusyTrailer on a Search that overlapped an Insert (see BusyTrailer);
// it does nothing unless the server counts inserts (Messages.MarkBusy).
func (s *Server) markBusy(ctx context.Context) {
	k, _ := ctx.Value(kindKey{}).(*rpcKind)
	if k == nil || (!k.overlap.Load() && s.inserts.Load() == 0) {
		return
	}
	_ = grpc.SetTrailer(ctx, busyMD)
}
