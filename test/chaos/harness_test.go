// Package chaos runs the resilience scenarios of docs/resilience.md: steady load through
// milvus-lb over TLS, from a client that retries nothing of its own (so every failure
// the balancer lets through is counted), against 3 fake Milvus backends that are
// restarted, killed, hung, slowed or not serving. Each test asserts what the user sees:
// which calls failed, and where the balancer sent the others. The chaos benchmark
// (bench -workloads chaos) runs the same scenarios longer and records their figures in
// docs/benchmarks.md.
package chaos

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/loadgen"
)

// env is a balancer in front of 3 fake Milvus backends.
type env struct {
	t     *testing.T
	bs    []*fakemilvus.Server
	addrs []string // the backends' addresses, kept for a restart on the same one
	lb    *lbtest.LB
	obs   *retries
}

// retries counts the calls the balancer sent to more than one endpoint.
type retries struct{ n atomic.Int64 }

func (r *retries) Observe(rec *call.Record) {
	if rec.Attempts > 1 {
		r.n.Add(1)
	}
}

// start serves 3 backends, each answering after delay, with annotations on the
// Ingress.
func start(t *testing.T, delay time.Duration, annotations map[string]string) *env {
	t.Helper()
	e := &env{t: t, obs: &retries{}}
	e.bs = lbtest.Backends(t, 3, fakemilvus.Options{})
	for _, b := range e.bs {
		b.SetDelay(delay)
		e.addrs = append(e.addrs, b.Addr())
	}
	e.lb = lbtest.Start(t, lbtest.Options{Annotations: annotations, Observer: e.obs}, e.addrs...)
	return e
}

// load starts the Go load generator over TLS: 8 callers on 2 connections, every
// writeEvery-th call an Insert (0: reads only), each call with the deadline timeout.
func (e *env) load(writeEvery int, timeout time.Duration) *loadgen.Load {
	e.t.Helper()
	l, err := loadgen.Start(loadgen.Options{
		Dial: func() (*grpc.ClientConn, error) {
			return grpc.NewClient("127.0.0.1:"+strconv.Itoa(e.lb.TLS),
				grpc.WithTransportCredentials(credentials.NewTLS(e.lb.ClientTLS())), grpc.WithDisableRetry())
		},
		Conns: 2, Callers: 8, WriteEvery: writeEvery, Timeout: timeout,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { l.Stop() })
	return l
}

// restart starts backend i again on its address.
func (e *env) restart(i int) {
	e.t.Helper()
	if err := e.bs[i].Start(e.addrs[i]); err != nil {
		e.t.Fatal(err)
	}
}

// until waits for cond, failing the test after a minute.
func (e *env) until(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// calls waits until the load has made n more calls.
func (e *env) calls(l *loadgen.Load, n int64) {
	e.t.Helper()
	from := l.Snapshot().Calls()
	e.until(strconv.FormatInt(n, 10)+" calls", func() bool { return l.Snapshot().Calls() >= from+n })
}

// served waits until backend i has started n more MilvusService calls.
func (e *env) served(i int, n int64) {
	e.t.Helper()
	b := e.bs[i]
	from := reads(b)
	e.until("calls on "+b.Name(), func() bool { return reads(b) >= from+n })
}

// reads is the number of reads backend b started.
func reads(b *fakemilvus.Server) int64 { return b.Count("Search") + b.Count("Query") }

func (e *env) report(name string, c loadgen.Counts) {
	e.t.Logf("%s: %d calls (%d reads, %d writes), %d failed (%d reads, %d writes), %d retried, p50 %v, p99 %v; first failure: %v",
		name, c.Calls(), c.Reads, c.Writes, c.Failed(), c.FailedReads, c.FailedWrites, e.obs.n.Load(),
		c.Quantile(0.5), c.Quantile(0.99), c.FirstErr)
}
