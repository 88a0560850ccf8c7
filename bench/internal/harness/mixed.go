package harness

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/milvus-lb/milvus-lb/bench/internal/backend"
)

// Mixed is the workload that measures Searches while large inserts stream through the
// same balancer to the same backends: a per-call balancer can keep Searches off the
// backend that is taking an insert, a per-connection one cannot. It needs an Env of more
// than one backend (Config.Backends), so it is not among AllWorkloads: `bench -workloads
// mixed` runs it in an Env of its own (bench/cmd/bench/mixed.go).
const Mixed = "mixed"

// runMixed measures the Searches' latency twice in one round: alone, then while
// MixedInserts callers send inserts of BigRows rows back to back on connections of their
// own. The backends say which Searches overlapped an insert on the same backend
// (backend.BusyTrailer), so the latency of those is reported apart from the others'.
func (r *Runner) runMixed(ctx context.Context, t *Target, res *Result) error {
	conns, err := dialN(ctx, t, r.P.MixedConns)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	search := r.mixedSearch()

	free, busy, err := loop(ctx, conns, r.P.MixedCallers, r.window(), search)
	if err != nil {
		return err
	}
	res.AloneP99ms = percentile(slices.Concat(free, busy), 0.99)

	ins, err := dialN(ctx, t, r.P.MixedInserts)
	if err != nil {
		return err
	}
	defer closeAll(ins)
	w := r.window() // its warm-up lets the first inserts get going
	inserted, stop, done := r.streamInserts(ctx, ins, w)
	free, busy, err = loop(ctx, conns, r.P.MixedCallers, w, search)
	stop()
	if ierr := done(); err == nil {
		err = ierr
	}
	if err != nil {
		return err
	}
	all := slices.Concat(free, busy)
	res.Calls, res.Seconds = int64(len(all)), r.P.Duration.Seconds()
	res.RPS = float64(res.Calls) / res.Seconds
	res.MBps = float64(inserted.Load()) * float64(len(r.big.b)) / 1e6 / res.Seconds
	res.BusyPct = 100 * float64(len(busy)) / float64(max(1, len(all)))
	res.BusyP99ms, res.FreeP99ms = percentile(busy, 0.99), percentile(free, 0.99)
	percentiles(all, res)
	return nil
}

// mixedSearch is a checked Search that tags its latency (resp.tag) when the backend
// marked it as having overlapped an insert.
func (r *Runner) mixedSearch() func(ctx context.Context, cc *grpc.ClientConn, resp *response) error {
	checkers := sync.Pool{New: func() any { return &searchChecker{} }}
	return func(ctx context.Context, cc *grpc.ClientConn, resp *response) error {
		var trailer metadata.MD
		if err := cc.Invoke(ctx, searchMethod, r.search, resp, grpc.Trailer(&trailer)); err != nil {
			return err
		}
		resp.tag = len(trailer.Get(backend.BusyTrailer)) > 0
		c := checkers.Get().(*searchChecker)
		defer checkers.Put(c)
		return c.check(resp.b)
	}
}

// streamInserts sends big inserts back to back, one caller per connection, until stop;
// inserted counts those that ended inside w. done waits for the callers (each finishes
// the insert it is sending) and returns the first failure.
func (r *Runner) streamInserts(ctx context.Context, conns []*grpc.ClientConn, w window) (inserted *atomic.Int64, stop func(), done func() error) {
	inserted = new(atomic.Int64)
	var stopped atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	for _, cc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp response
			for !stopped.Load() {
				if err := cc.Invoke(ctx, insertMethod, r.big, &resp); err != nil {
					errs <- err
					return
				}
				if err := checkInsert(resp.b, r.P.BigRows); err != nil {
					errs <- err
					return
				}
				if now := time.Now(); now.After(w.from) && now.Before(w.to) {
					inserted.Add(1)
				}
			}
		}()
	}
	return inserted, func() { stopped.Store(true) }, func() error {
		wg.Wait()
		close(errs)
		return <-errs
	}
}
