package call

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// wiredPick and wiredFinish are Pick and Finish (call.go admits the picker's choice and
// settles the call's outcome).
func wiredPick(c *Call) (*balancer.Endpoint, *Failure) { return c.Pick() }

func wiredFinish(c *Call, grpcStatus string) { c.Finish(time.Now(), grpcStatus) }

// events records what the rules report, as the metrics do.
type events struct {
	mu                     sync.Mutex
	ejected                []string // endpoint/reason
	overflows, retryDenied int
}

func (e *events) Observe(*Record) {}
func (e *events) Ejected(_, endpoint string, r Reason, _ time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ejected = append(e.ejected, endpoint+"/"+r.String())
}
func (e *events) Overflowed(string, bool) { e.mu.Lock(); e.overflows++; e.mu.Unlock() }
func (e *events) RetryDenied(string)      { e.mu.Lock(); e.retryDenied++; e.mu.Unlock() }

// resilientPort is testPort with the given policy on its backend, under its own backend
// key so that retry budgets of different tests do not meet.
func resilientPort(t *testing.T, n int, r config.Resilience) (*Port, []*balancer.Endpoint, *events) {
	ev := &events{}
	p, eps := testPort(n, ev)
	be := p.Snapshot().Listeners[443].Routes.Match("milvus-demo.milvus.io", "/").Target
	cb := *be.Backend
	cb.Key = t.Name()
	cb.Resilience = r
	be.Backend, be.Policy = &cb, r.Resolved() // as gateway.Compile resolves it
	return p, eps, ev
}

func routed(t *testing.T, p *Port, path string) *Call {
	t.Helper()
	c := &Call{}
	c.Begin(p, path, true, time.Now())
	if f := routeHeaders(c, "milvus-demo.milvus.io", "", path); f != nil {
		t.Fatal(f)
	}
	return c
}

const insert = "/milvus.proto.milvus.MilvusService/Insert"

var refused = &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}

// What may go to another endpoint: anything the backend provably did not receive; a
// read-only method whose reply had not begun, if it was kept whole; within attempts,
// deadline and endpoints.
func TestRetryRefusal(t *testing.T) {
	now := time.Unix(1000, 0)
	ok := retryCase{Stage: BeforeReply, ReadOnly: true, Kept: true, Attempts: 1, MaxAttempts: 3, Now: now, Elsewhere: true}
	for _, tc := range []struct {
		name  string
		edit  func(*retryCase)
		retry bool
	}{
		{"read before reply", func(*retryCase) {}, true},
		{"write not sent", func(r *retryCase) { r.Stage, r.ReadOnly = NotSent, false }, true},
		{"write before reply", func(r *retryCase) { r.ReadOnly = false }, false},
		{"read after reply", func(r *retryCase) { r.Stage = AfterReply }, false},
		{"read not kept", func(r *retryCase) { r.Kept = false }, false},
		{"write not sent, not kept", func(r *retryCase) { r.Stage, r.ReadOnly, r.Kept = NotSent, false, false }, false},
		{"attempts spent", func(r *retryCase) { r.Attempts = 3 }, false},
		{"deadline ahead", func(r *retryCase) { r.Deadline = now.Add(time.Millisecond) }, true},
		{"deadline passed", func(r *retryCase) { r.Deadline = now }, false},
		{"no other endpoint", func(r *retryCase) { r.Elsewhere = false }, false},
	} {
		rc := ok
		tc.edit(&rc)
		if why := rc.refusal(); (why == "") != tc.retry {
			t.Errorf("%s: refusal %q, want retry %v", tc.name, why, tc.retry)
		}
	}
}

// The budget lets through retries up to its share of the calls in flight, and beyond
// that a few a second.
func TestBudget(t *testing.T) {
	var b budget
	now := time.Unix(1000, 0)
	b.retrying.Store(1)
	if !b.allows(now, 10, 20, 0) {
		t.Fatal("1 call retrying of 10 in flight, 20 %: a second may be")
	}
	b.retrying.Store(2)
	allowed := 0
	for range 10 {
		if b.allows(now, 10, 20, 3) {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("beyond the share, %d retries allowed at once, want the 3 a second of the floor", allowed)
	}
	if !b.allows(now.Add(time.Second/3+time.Millisecond), 10, 20, 3) || b.allows(now.Add(time.Second/3+2*time.Millisecond), 10, 20, 3) {
		t.Fatal("the floor refills at its rate")
	}
}

func TestRetryDecisions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		path  string
		a     Attempt
		retry bool
		code  codes.Code
	}{
		{"insert refused", insert, AttemptOf(refused, NotSent, true), true, 0},
		{"insert refused stream", insert, Attempt{Stage: NotSent, Reason: Refused, Kept: true}, true, 0},
		{"insert reset", insert, Attempt{Stage: BeforeReply, Reason: Reset, Kept: true}, false, codes.Unavailable},
		{"search reset, kept", search, Attempt{Stage: BeforeReply, Reason: Reset, Kept: true}, true, 0},
		{"search reset, too large to keep", search, Attempt{Stage: BeforeReply, Reason: Reset}, false, codes.Unavailable},
		{"search reset after reply", search, Attempt{Stage: AfterReply, Reason: Reset, Kept: true}, false, codes.Unavailable},
		{"search not serving", search, Attempt{Stage: BeforeReply, Reason: NotServing, Kept: true}, true, 0},
		{"search timeout", search, Attempt{Stage: BeforeReply, Reason: Timeout, Kept: true}, false, codes.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, eps, _ := resilientPort(t, 3, config.Resilience{})
			c := routed(t, p, tc.path)
			if _, f := wiredPick(c); f != nil {
				t.Fatal(f)
			}
			retry, f := c.Retry(context.Background(), tc.a)
			if retry != tc.retry || (!retry && f.Code != tc.code) {
				t.Fatalf("Retry = %v, %v; want %v, %v", retry, f, tc.retry, tc.code)
			}
			if retry {
				if _, f := wiredPick(c); f != nil {
					t.Fatal(f)
				}
			}
			wiredFinish(c, "0")
			if callsInFlight(eps) != 0 || budgetOf(t.Name()).retrying.Load() != 0 {
				t.Fatalf("after Finish: %d calls in flight, %d retrying", callsInFlight(eps), budgetOf(t.Name()).retrying.Load())
			}
		})
	}
}

// No retry past the call's deadline; a client that left teaches nothing about the
// endpoint.
func TestRetryDeadlineAndCancel(t *testing.T) {
	p, _, _ := resilientPort(t, 3, config.Resilience{Outlier: config.OutlierDetection{ConsecutiveFailures: 1}})
	c := routed(t, p, search)
	wiredPick(c)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel()
	if retry, f := c.Retry(ctx, Attempt{Stage: BeforeReply, Reason: Timeout, Kept: true}); retry || f.Code != codes.DeadlineExceeded {
		t.Fatalf("past the deadline: %v, %v; want DEADLINE_EXCEEDED", retry, f)
	}
	wiredFinish(c, "")

	// The backend reset the stream as its own deadline ran out, before the data path's
	// timer for the call's grpc-timeout ran: the client is told DEADLINE_EXCEEDED all
	// the same, not that the backend reset the stream.
	c = routed(t, p, search)
	wiredPick(c)
	c.Timeout("1n")
	reset := Attempt{Stage: BeforeReply, Reason: Reset, Err: BackendReset("milvus-demo", "CANCEL"), Kept: true}
	if retry, f := c.Retry(context.Background(), reset); retry || f.Code != codes.DeadlineExceeded {
		t.Fatalf("reset past the call's deadline: %v, %v; want DEADLINE_EXCEEDED", retry, f)
	}
	wiredFinish(c, "")

	c = routed(t, p, search)
	ep, _ := wiredPick(c)
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if retry, f := c.Retry(ctx, Attempt{Stage: BeforeReply, Reason: Reset, Err: context.Canceled, Kept: true}); retry || f.Code != codes.Canceled {
		t.Fatalf("client gone: %v, %v; want CANCELED", retry, f)
	}
	wiredFinish(c, "")
	if !ep.Available(time.Now().UnixNano()) {
		t.Fatal("a client's cancellation ejected the endpoint")
	}
}

// At most MaxAttempts endpoints are tried.
func TestRetryAttempts(t *testing.T) {
	p, _, _ := resilientPort(t, 5, config.Resilience{Retry: config.RetryPolicy{MaxAttempts: 4},
		Outlier: config.OutlierDetection{Disabled: true}})
	c := routed(t, p, search)
	tries := 0
	for {
		if _, f := wiredPick(c); f != nil {
			t.Fatal(f)
		}
		tries++
		if retry, _ := c.Retry(context.Background(), AttemptOf(refused, NotSent, true)); !retry {
			break
		}
	}
	wiredFinish(c, "")
	if tries != 4 {
		t.Fatalf("tried %d endpoints, want 4", tries)
	}
}

// A retry goes to an endpoint the call has not tried, even when the picker (here round
// robin, moved on by another call in between) would send it back to the one that failed.
func TestRetryAvoidsTriedEndpoints(t *testing.T) {
	p, _, _ := resilientPort(t, 3, config.Resilience{Retry: config.RetryPolicy{MaxAttempts: 3},
		Outlier: config.OutlierDetection{Disabled: true}})
	c := routed(t, p, search)
	seen := map[string]bool{}
	for {
		ep, f := wiredPick(c)
		if f != nil {
			t.Fatal(f)
		}
		if seen[ep.Addr] {
			t.Fatalf("attempt %d went to %s again; tried %v", c.Rec.Attempts, ep.Addr, seen)
		}
		seen[ep.Addr] = true
		// Two other calls move the round robin on by two: back to this endpoint.
		for range 2 {
			o := routed(t, p, search)
			wiredPick(o)
			wiredFinish(o, "0")
		}
		if retry, _ := c.Retry(context.Background(), AttemptOf(refused, NotSent, true)); !retry {
			break
		}
	}
	wiredFinish(c, "")
	if len(seen) != 3 {
		t.Fatalf("tried %d endpoints, want 3", len(seen))
	}
}

// With every call failing at once, retries stop at the budget: the share of the calls in
// flight plus the floor.
func TestRetryBudgetBoundsRetries(t *testing.T) {
	p, _, ev := resilientPort(t, 3, config.Resilience{Retry: config.RetryPolicy{BudgetPercent: 20, MinRetriesPerSecond: 1},
		Outlier: config.OutlierDetection{Disabled: true}})
	calls := make([]*Call, 100)
	for i := range calls {
		calls[i] = routed(t, p, search)
		wiredPick(calls[i])
	}
	retried := 0
	for _, c := range calls {
		if retry, _ := c.Retry(context.Background(), Attempt{Stage: BeforeReply, Reason: Reset, Kept: true}); retry {
			retried++
			wiredPick(c)
		}
	}
	// 20 % of 100 in flight, and one from the floor.
	if retried != 21 || ev.retryDenied != 79 {
		t.Fatalf("%d of 100 failing calls retried, %d denied; want 21 and 79", retried, ev.retryDenied)
	}
	// A call no backend received goes elsewhere whatever the budget: it adds no work.
	c := routed(t, p, insert)
	wiredPick(c)
	if retry, _ := c.Retry(context.Background(), AttemptOf(refused, NotSent, true)); !retry {
		t.Fatal("a refused connection's call was not retried with the budget spent")
	}
	wiredPick(c)
	calls = append(calls, c)
	for _, c := range calls {
		wiredFinish(c, "0")
	}
	if n := budgetOf(t.Name()).retrying.Load(); n != 0 {
		t.Fatalf("%d calls still counted as retrying", n)
	}
}

// The relay passes no context of the call's: the call's deadline is its grpc-timeout
// (Timeout). An attempt that fails after it is not sent elsewhere: the backend's own
// timer (grpc-go's server resets the stream at the grpc-timeout it was sent) can fire
// just before the balancer's, and a retry then would only count the deadline against an
// endpoint that had nothing to do with it.
func TestNoRetryPastTheDeadline(t *testing.T) {
	p, _, _ := resilientPort(t, 2, config.Resilience{})
	reset := Attempt{Stage: BeforeReply, Reason: Reset, Kept: true}
	late := routed(t, p, search)
	late.Rec.Start = time.Now().Add(-2 * time.Second) // a call that began 2 s ago
	if _, ok := late.Timeout("1S"); !ok {
		t.Fatal("grpc-timeout 1S not read")
	}
	wiredPick(late)
	if retry, f := late.Retry(context.Background(), reset); retry || f == nil {
		t.Errorf("a Search whose deadline passed was sent elsewhere (retry %v, failure %v)", retry, f)
	}
	wiredFinish(late, "")
	inTime := routed(t, p, search)
	inTime.Timeout("10S")
	wiredPick(inTime)
	if retry, f := inTime.Retry(context.Background(), reset); !retry {
		t.Errorf("a Search with time left was not sent elsewhere: %v", f)
	}
}

func TestReplayLimit(t *testing.T) {
	p, _, _ := resilientPort(t, 2, config.Resilience{})
	if n := routed(t, p, search).ReplayLimit(); n != 1<<20 {
		t.Errorf("Search keeps %d bytes, want 1 MiB", n)
	}
	// A write goes elsewhere only if no backend received it, which may be learnt after
	// its bytes went out: a small one is kept.
	if n := routed(t, p, insert).ReplayLimit(); n != WriteReplayBytes {
		t.Errorf("Insert keeps %d bytes, want %d", n, WriteReplayBytes)
	}
	off, _, _ := resilientPort(t, 2, config.Resilience{Retry: config.RetryPolicy{MaxAttempts: 1}})
	for _, m := range []string{search, insert} {
		if n := routed(t, off, m).ReplayLimit(); n != 0 {
			t.Errorf("with retries off %s keeps %d bytes, want 0", m, n)
		}
	}
}

// Consecutive gateway failures eject; a reply in between starts the run again; a Milvus
// "not ready" reply counts, an error about the request does not.
func TestOutlierDetection(t *testing.T) {
	p, eps, ev := resilientPort(t, 4, config.Resilience{Outlier: config.OutlierDetection{ConsecutiveFailures: 3}})
	target := eps[0]
	// Each call goes to target: fail the call there with f, or settle it with a reply.
	onTarget := func(fail func(c *Call)) {
		for {
			c := routed(t, p, insert)
			ep, f := wiredPick(c)
			if f != nil {
				t.Fatal(f)
			}
			if ep != target {
				wiredFinish(c, "0")
				continue
			}
			fail(c)
			return
		}
	}
	reset := func(c *Call) {
		if _, f := c.Retry(context.Background(), Attempt{Stage: BeforeReply, Reason: Reset}); f != nil {
			c.Answer(f)
		}
		wiredFinish(c, "")
	}
	notFound := func(c *Call) { c.Rec.MilvusCode = 100; wiredFinish(c, "0") }
	notReady := func(c *Call) { c.Rec.MilvusCode = 1; wiredFinish(c, "0") }
	for _, f := range []func(*Call){reset, reset, notFound, reset, reset, notFound, notFound} {
		onTarget(f)
	}
	if !target.Available(time.Now().UnixNano()) || len(ev.ejected) != 0 {
		t.Fatalf("ejected after runs of two failures: %v", ev.ejected)
	}
	onTarget(reset)
	onTarget(reset)
	onTarget(notReady)
	if target.Available(time.Now().UnixNano()) || len(ev.ejected) != 1 || ev.ejected[0] != target.Addr+"/not_serving" {
		t.Fatalf("three failures in a row: ejected %v", ev.ejected)
	}
	if got := target.EjectedUntil().Sub(time.Now()); got < 29*time.Second || got > 30*time.Second {
		t.Errorf("first ejection lasts %v, want the 30 s default", got)
	}
}

// A backend sent the call's grpc-timeout times out by its own timer, which can fire
// before the balancer's: its DEADLINE_EXCEEDED with no reply message is the endpoint's
// timeout, not a reply that ends its run of failures. One after reply messages is the
// client's deadline cutting a stream short.
func TestBackendDeadlineCountsAsTimeout(t *testing.T) {
	p, eps, ev := resilientPort(t, 2, config.Resilience{Outlier: config.OutlierDetection{ConsecutiveFailures: 3}})
	target := eps[0]
	finishOnTarget := func(responseBytes int64) {
		for {
			c := routed(t, p, search)
			if ep, _ := wiredPick(c); ep != target {
				wiredFinish(c, "0")
				continue
			}
			c.Rec.ResponseBytes = responseBytes
			wiredFinish(c, "4")
			return
		}
	}
	finishOnTarget(0)
	finishOnTarget(0)
	finishOnTarget(100) // ends the run
	finishOnTarget(0)
	finishOnTarget(0)
	if len(ev.ejected) != 0 {
		t.Fatalf("ejected after runs of two: %v", ev.ejected)
	}
	finishOnTarget(0)
	if len(ev.ejected) != 1 || ev.ejected[0] != target.Addr+"/timeout" {
		t.Fatalf("three DEADLINE_EXCEEDED in a row: ejected %v, want %s/timeout", ev.ejected, target.Addr)
	}
}

// Never more than half of a backend's endpoints out: with all failing, the rest keep
// taking calls.
func TestOutlierShareCap(t *testing.T) {
	p, eps, ev := resilientPort(t, 3, config.Resilience{Outlier: config.OutlierDetection{ConsecutiveFailures: 1}})
	for range 30 {
		c := routed(t, p, insert)
		if _, f := wiredPick(c); f != nil {
			t.Fatalf("calls must keep going to the endpoints not ejected: %v", f)
		}
		c.Retry(context.Background(), Attempt{Stage: BeforeReply, Reason: Reset})
		wiredFinish(c, "")
	}
	available := 0
	for _, ep := range eps {
		if ep.Available(time.Now().UnixNano()) {
			available++
		}
	}
	if available != 2 || len(ev.ejected) != 1 {
		t.Fatalf("%d of 3 available, ejections %v; want 2 and one ejection", available, ev.ejected)
	}
}

// Over a limit of calls in flight, a call is answered at once with UNAVAILABLE (503 for
// REST), counted; while another endpoint has room under the per-endpoint limit, the call
// goes there instead.
func TestCircuitBreaker(t *testing.T) {
	p, eps, ev := resilientPort(t, 2, config.Resilience{Limits: config.CircuitBreaker{MaxInflight: 3}})
	for range 3 {
		if _, f := wiredPick(routed(t, p, search)); f != nil {
			t.Fatal(f)
		}
	}
	c := routed(t, p, search)
	_, f := wiredPick(c)
	if f == nil || f.Code != codes.Unavailable || f.HTTPStatus() != 503 || ev.overflows != 1 {
		t.Fatalf("fourth call with 3 allowed: %v, %d overflows; want UNAVAILABLE/503 and 1", f, ev.overflows)
	}

	p, eps, ev = resilientPort(t, 2, config.Resilience{Limits: config.CircuitBreaker{MaxInflightPerEndpoint: 2}})
	open := map[*balancer.Endpoint][]*Call{}
	for range 4 {
		c := routed(t, p, search)
		ep, f := wiredPick(c)
		if f != nil {
			t.Fatal(f)
		}
		open[ep] = append(open[ep], c)
	}
	if _, f := wiredPick(routed(t, p, search)); f == nil || ev.overflows != 1 {
		t.Fatalf("both endpoints at their limit: %v, %d overflows; want UNAVAILABLE and 1", f, ev.overflows)
	}
	// One call ends on eps[1]: whichever endpoint round robin points at, the next call
	// goes to eps[1], the one with room (twice, so both turns of round robin are seen).
	for range 2 {
		wiredFinish(open[eps[1]][0], "0")
		c := routed(t, p, search)
		ep, f := wiredPick(c)
		if f != nil || ep != eps[1] {
			t.Fatalf("a call with room on %s went to %v (%v)", eps[1].Addr, ep, f)
		}
		open[eps[1]][0] = c
	}
}

func TestAttemptOf(t *testing.T) {
	for _, tc := range []struct {
		err    error
		stage  Stage
		reason Reason
	}{
		{refused, NotSent, Connect},
		{BackendReset("milvus/milvus-demo:19530", "REFUSED_STREAM"), NotSent, Refused},
		{errors.New("connection reset by peer"), BeforeReply, Reset},
		{context.DeadlineExceeded, BeforeReply, Timeout},
		{&Failure{Code: codes.Unavailable, Msg: "backend is not serving", Cause: ErrBackendUnavailable}, BeforeReply, Unavailable},
	} {
		if a := AttemptOf(tc.err, tc.stage, true); a.Stage != tc.stage || a.Reason != tc.reason || !a.Kept {
			t.Errorf("AttemptOf(%v, %v) = %+v, want reason %v", tc.err, tc.stage, a, tc.reason)
		}
	}
}

// One log line when an endpoint is ejected, one when it returns (here, with no active
// check, when its time is over).
func TestEjectionLogLines(t *testing.T) {
	p, _, _ := resilientPort(t, 2, config.Resilience{Outlier: config.OutlierDetection{ConsecutiveFailures: 1,
		BaseEjectionTime: config.Duration(50 * time.Millisecond)}})
	var logs testenv.LogBuffer
	p.Log = slog.New(slog.NewTextHandler(&logs, nil))
	c := routed(t, p, search)
	ep, _ := wiredPick(c)
	c.Retry(context.Background(), Attempt{Stage: BeforeReply, Reason: Unavailable})
	wiredFinish(c, "")
	if got := logs.String(); strings.Count(got, "endpoint ejected") != 1 || !strings.Contains(got, "reason=unavailable") ||
		!strings.Contains(got, "endpoint="+ep.Addr) {
		t.Fatalf("log after the ejection:\n%s", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "endpoint returned after ejection") {
		if time.Now().After(deadline) {
			t.Fatalf("no return logged:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !ep.Available(time.Now().UnixNano()) || strings.Count(logs.String(), "endpoint returned") != 1 {
		t.Fatalf("after the return: available %v, log:\n%s", ep.Available(time.Now().UnixNano()), logs.String())
	}
}
