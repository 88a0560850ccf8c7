// Package loadgen is a closed-loop gRPC load generator for the resilience scenarios
// (test/chaos) and the chaos benchmark: callers on shared client connections make
// Search and Query calls (reads) and, if asked, Inserts (writes), each with a deadline,
// and retry nothing of their own, so that every failure the balancer lets through is
// counted.
package loadgen

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
)

// Options shape a load.
type Options struct {
	// Dial opens one client connection (with the TLS and authority a user would set).
	Dial func() (*grpc.ClientConn, error)
	// Conns client connections, shared by Callers callers.
	Conns, Callers int
	// WriteEvery makes every n-th call of a caller an Insert; 0 means reads only.
	WriteEvery int
	// Timeout is each call's deadline (grpc-timeout).
	Timeout time.Duration
}

// Counts are what a load saw.
type Counts struct {
	Reads, Writes             int64
	FailedReads, FailedWrites int64
	// FirstErr is the first failure, nil when none.
	FirstErr error
	// Latencies of every call, failed ones included, in no order (Stop only).
	Latencies []time.Duration
}

// Calls is the number of calls made.
func (c Counts) Calls() int64 { return c.Reads + c.Writes }

// Failed is the number of calls that failed.
func (c Counts) Failed() int64 { return c.FailedReads + c.FailedWrites }

// Quantile returns the q-quantile (0 < q ≤ 1) of Latencies, 0 when there are none.
func (c Counts) Quantile(q float64) time.Duration {
	if len(c.Latencies) == 0 {
		return 0
	}
	l := slices.Clone(c.Latencies)
	slices.Sort(l)
	i := int(q*float64(len(l))+0.5) - 1
	return l[min(max(i, 0), len(l)-1)]
}

// Load is a running load.
type Load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  []*grpc.ClientConn

	reads, writes, failedReads, failedWrites atomic.Int64
	firstErr                                 atomic.Pointer[error]

	mu        sync.Mutex
	latencies []time.Duration
}

// Start starts the callers; they run until Stop.
func Start(o Options) (*Load, error) {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{cancel: cancel}
	for range max(o.Conns, 1) {
		cc, err := o.Dial()
		if err != nil {
			l.Stop()
			return nil, err
		}
		l.conns = append(l.conns, cc)
	}
	for i := range max(o.Callers, 1) {
		c := milvuspb.NewMilvusServiceClient(l.conns[i%len(l.conns)])
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.caller(ctx, c, i, o)
		}()
	}
	return l, nil
}

// caller makes calls one after another until ctx ends.
func (l *Load) caller(ctx context.Context, c milvuspb.MilvusServiceClient, id int, o Options) {
	var lat []time.Duration
	defer func() {
		l.mu.Lock()
		l.latencies = append(l.latencies, lat...)
		l.mu.Unlock()
	}()
	for n := 1; ctx.Err() == nil; n++ {
		write := o.WriteEvery > 0 && n%o.WriteEvery == 0
		cctx, cancel := context.WithTimeout(ctx, o.Timeout)
		start := time.Now()
		err := call(cctx, c, write, n+id)
		cancel()
		if ctx.Err() != nil {
			return // stopped: this call does not count
		}
		lat = append(lat, time.Since(start))
		l.count(write, err)
	}
}

func (l *Load) count(write bool, err error) {
	switch {
	case write && err != nil:
		l.writes.Add(1)
		l.failedWrites.Add(1)
	case write:
		l.writes.Add(1)
	case err != nil:
		l.reads.Add(1)
		l.failedReads.Add(1)
	default:
		l.reads.Add(1)
	}
	if err != nil {
		l.firstErr.CompareAndSwap(nil, &err)
	}
}

// call makes one call: an Insert, or a Search (three in four reads) or a Query. A reply
// whose Milvus status is an error counts as failed, as it does for the user.
func call(ctx context.Context, c milvuspb.MilvusServiceClient, write bool, n int) error {
	var st *commonpb.Status
	var err error
	switch {
	case write:
		var r *milvuspb.MutationResult
		r, err = c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "c1", NumRows: 1})
		st = r.GetStatus()
	case n%4 == 0:
		var r *milvuspb.QueryResults
		r, err = c.Query(ctx, &milvuspb.QueryRequest{CollectionName: "c1", Expr: "id > 0"})
		st = r.GetStatus()
	default:
		var r *milvuspb.SearchResults
		r, err = c.Search(ctx, &milvuspb.SearchRequest{CollectionName: "c1", Nq: 1})
		st = r.GetStatus()
	}
	if err == nil && (st.GetCode() != 0 || st.GetErrorCode() != commonpb.ErrorCode_Success) {
		err = &StatusError{Status: st}
	}
	return err
}

// StatusError is a reply whose Milvus status is an error.
type StatusError struct{ Status *commonpb.Status }

func (e *StatusError) Error() string {
	return "milvus status " + e.Status.GetErrorCode().String() + ": " + e.Status.GetReason()
}

// Snapshot returns the counts so far, without latencies.
func (l *Load) Snapshot() Counts {
	c := Counts{Reads: l.reads.Load(), Writes: l.writes.Load(),
		FailedReads: l.failedReads.Load(), FailedWrites: l.failedWrites.Load()}
	if e := l.firstErr.Load(); e != nil {
		c.FirstErr = *e
	}
	return c
}

// Stop ends the load and returns what it saw.
func (l *Load) Stop() Counts {
	l.cancel()
	l.wg.Wait()
	for _, cc := range l.conns {
		_ = cc.Close()
	}
	c := l.Snapshot()
	l.mu.Lock()
	c.Latencies = l.latencies
	l.mu.Unlock()
	return c
}
