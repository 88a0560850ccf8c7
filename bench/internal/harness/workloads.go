package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// Workload names, in the order a run measures them. Idle runs before Big: what a
// balancer's allocator keeps after 1 GiB of inserts would hide the cost of connections.
const (
	Search = "search"
	// SearchCached repeats one Eventually Search, which milvus-lb's reply cache answers
	// (the bench's Ingress has milvus-lb.io/cache); the other targets relay it.
	SearchCached = "search-cached"
	Insert       = "insert"
	Many         = "many-clients"
	Idle         = "idle"
	Big          = "big-insert"
)

// AllWorkloads in run order.
var AllWorkloads = []string{Search, SearchCached, Insert, Many, Idle, Big}

// Params sizes the workloads.
type Params struct {
	Warmup   time.Duration // calls before the measured window (Search, Insert, Many)
	Duration time.Duration // the measured window (Search, Insert, Many)

	SearchConns, SearchCallers int
	InsertConns, InsertCallers int
	InsertRows                 int // rows of Dim floats per insert message
	BigConns, BigCallers       int
	BigRows                    int // rows per big insert message
	BigPerCaller               int // big inserts each caller makes
	ManyConns                  int // connections, each making one Search a second
	ManyDuration               time.Duration
	IdleConns                  int
	IdleHold                   time.Duration // how long the idle connections stay open before RSS is read
	// Mixed: MixedCallers Searches over MixedConns connections, alone and then while
	// MixedInserts callers (on a connection each) send inserts of BigRows rows back to back.
	MixedConns, MixedCallers, MixedInserts int
}

// FullParams are the workloads.
func FullParams() Params {
	return Params{
		Warmup: time.Second, Duration: 10 * time.Second,
		SearchConns: 4, SearchCallers: 32,
		InsertConns: 4, InsertCallers: 8, InsertRows: 1000,
		BigConns: 4, BigCallers: 32, BigRows: RowsForBytes(32 << 20), BigPerCaller: 2,
		ManyConns: 2000, ManyDuration: 15 * time.Second,
		IdleConns: 10000, IdleHold: 12 * time.Second,
		MixedConns: 2, MixedCallers: 8, MixedInserts: 1,
	}
}

// QuickParams are the same shapes, shorter and smaller: a first look in about two minutes.
func QuickParams() Params {
	p := FullParams()
	p.Warmup, p.Duration = 500*time.Millisecond, 3*time.Second
	p.BigPerCaller = 1
	p.ManyConns, p.ManyDuration = 500, 3*time.Second
	p.IdleConns, p.IdleHold = 2000, 3*time.Second
	return p
}

// SmokeParams exercise every code path with tiny counts, for the test.
func SmokeParams() Params {
	return Params{
		Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond,
		SearchConns: 2, SearchCallers: 4,
		InsertConns: 1, InsertCallers: 2, InsertRows: 100,
		BigConns: 2, BigCallers: 4, BigRows: RowsForBytes(2 << 20), BigPerCaller: 1,
		ManyConns: 20, ManyDuration: time.Second,
		IdleConns: 20, IdleHold: 100 * time.Millisecond,
		MixedConns: 1, MixedCallers: 2, MixedInserts: 1,
	}
}

// Result is one measurement of one workload through one target. Fields that do not
// apply to the workload are zero.
type Result struct {
	Workload string `json:"workload"`
	Target   string `json:"target"`
	Round    int    `json:"round"`

	Calls   int64   `json:"calls"`
	Seconds float64 `json:"seconds"`
	RPS     float64 `json:"rps,omitempty"`     // calls per second
	MBps    float64 `json:"mbps,omitempty"`    // request megabytes (10^6) per second
	P50ms   float64 `json:"p50_ms,omitempty"`  // latency percentiles
	P99ms   float64 `json:"p99_ms,omitempty"`  //
	RSSMiB  float64 `json:"rss_mib,omitempty"` // resident set a second before the window ends (Many), before (Idle)
	PeakMiB float64 `json:"peak_rss_mib,omitempty"`
	// PerConnKiB is the growth of the resident set per idle connection.
	PerConnKiB float64 `json:"per_conn_kib,omitempty"`
	// CPUus is the target's CPU time (all its processes, user and system) per call in
	// the measured window, in microseconds: what the balancer costs, whatever else runs.
	CPUus float64 `json:"cpu_us_per_call,omitempty"`
	// BackendCPUus and ClientCPUus are the same for the fake backend and for the load
	// generator: what the balancer makes the other two spend (direct: the backend is
	// the target). IdlePct is the share of the machine's CPU left idle in the window.
	BackendCPUus float64 `json:"backend_cpu_us_per_call,omitempty"`
	ClientCPUus  float64 `json:"client_cpu_us_per_call,omitempty"`
	IdlePct      float64 `json:"idle_pct,omitempty"`
	// Mixed: RPS, P50ms and P99ms are the Searches' while the inserts stream, MBps the
	// inserts'. AloneP99ms is the Searches' p99 in the same round with no insert;
	// BusyPct the share of Searches that overlapped an insert on their backend, BusyP99ms
	// and FreeP99ms the p99 of those and of the others.
	AloneP99ms float64 `json:"alone_p99_ms,omitempty"`
	BusyPct    float64 `json:"busy_pct,omitempty"`
	BusyP99ms  float64 `json:"busy_p99_ms,omitempty"`
	FreeP99ms  float64 `json:"free_p99_ms,omitempty"`
}

// Profiler, if set on a Runner, is called when a measured window starts and returns a
// function called when it ends (for pprof captures of milvus-lb).
type Profiler func(t *Target, workload string, round int, window time.Duration) (end func())

// Runner runs workloads with shared, once-built messages.
type Runner struct {
	P       Params
	Profile Profiler
	Logf    func(format string, args ...any)
	// SearchReply, if set, is what every Search must answer, byte for byte (a real
	// backend's reply, Env.SearchReply); else the fake backend's reply is checked.
	SearchReply []byte

	search, cached, insert, big *encoded
}

// NewRunner builds the messages once.
func NewRunner(p Params) *Runner {
	r := &Runner{P: p, Logf: func(string, ...any) {}}
	r.search = encode(SearchRequest())
	r.cached = encode(CachedSearchRequest())
	r.insert = encode(InsertRequest(p.InsertRows))
	r.big = encode(InsertRequest(p.BigRows))
	return r
}

// MessageSizes are the encoded sizes of the search, insert and big insert requests.
func (r *Runner) MessageSizes() (search, insert, big int) {
	return len(r.search.b), len(r.insert.b), len(r.big.b)
}

// Run measures workload w through t once.
func (r *Runner) Run(ctx context.Context, w string, t *Target, round int) (Result, error) {
	res := Result{Workload: w, Target: t.Name, Round: round}
	var err error
	switch w {
	case Search:
		err = r.runSearch(ctx, t, &res, Search, r.search)
	case SearchCached:
		err = r.runSearch(ctx, t, &res, SearchCached, r.cached)
	case Insert:
		err = r.runInsert(ctx, t, &res)
	case Big:
		err = r.runBig(ctx, t, &res)
	case Many:
		err = r.runMany(ctx, t, &res)
	case Idle:
		err = r.runIdle(ctx, t, &res)
	case Mixed:
		err = r.runMixed(ctx, t, &res)
	default:
		err = fmt.Errorf("unknown workload %q", w)
	}
	if err != nil {
		return res, fmt.Errorf("%s through %s (round %d): %w", w, t.Name, round, err)
	}
	return res, nil
}

func dialN(ctx context.Context, t *Target, n int, opts ...grpc.DialOption) ([]*grpc.ClientConn, error) {
	conns := make([]*grpc.ClientConn, n)
	sem := make(chan struct{}, 64)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for i := range conns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			cc, err := t.Dial(opts...)
			if err == nil {
				// One call, as a client does right after connecting; it also makes sure
				// the connection is up before the workload starts.
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err = cc.Invoke(cctx, getVersionMethod, &encoded{}, &response{})
				cancel()
			}
			mu.Lock()
			defer mu.Unlock()
			if cc != nil {
				conns[i] = cc
			}
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("connect %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		closeAll(conns)
		return nil, firstErr
	}
	return conns, nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, cc := range conns {
		if cc != nil {
			cc.Close()
		}
	}
}

// window is a measured interval after a warm-up.
type window struct{ from, to time.Time }

func (r *Runner) window() window {
	from := time.Now().Add(r.P.Warmup)
	return window{from, from.Add(r.P.Duration)}
}

// manyReadBefore: the many-clients workload reads the resident set this long before its
// window ends (runMany).
const manyReadBefore = time.Second

// manyWindow is the window of the many-clients workload: no warm-up, since each
// connection already made a call, and a whole number of seconds.
func (r *Runner) manyWindow() window {
	from := time.Now()
	return window{from, from.Add(r.P.ManyDuration)}
}

// loop runs callers goroutines, each calling call back to back until the window ends,
// and returns the latencies of the calls started inside the window: those whose call
// left resp.tag false, then those that set it. The first failed call stops everything
// and is returned.
func loop(ctx context.Context, conns []*grpc.ClientConn, callers int, w window,
	call func(ctx context.Context, cc *grpc.ClientConn, resp *response) error) (untagged, tagged []time.Duration, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lats, tags := make([][]time.Duration, callers), make([][]time.Duration, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc := conns[i%len(conns)]
			var resp response
			lat := make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(w.to) {
					break
				}
				resp.tag = false
				if err := call(ctx, cc, &resp); err != nil {
					cancel(err)
					break
				}
				if d := time.Since(t0); t0.After(w.from) && resp.tag {
					tags[i] = append(tags[i], d)
				} else if t0.After(w.from) {
					lat = append(lat, d)
				}
			}
			lats[i] = lat
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, nil, err
	}
	return slices.Concat(lats...), slices.Concat(tags...), nil
}

func percentiles(lat []time.Duration, res *Result) {
	if len(lat) == 0 {
		return
	}
	res.P50ms, res.P99ms = percentile(lat, 0.50), percentile(lat, 0.99)
}

// percentile is the q-quantile of lat in milliseconds (0 for none); it sorts lat.
func percentile(lat []time.Duration, q float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	i := min(len(lat)-1, int(q*float64(len(lat))))
	return float64(lat[i]) / float64(time.Millisecond)
}

func (r *Runner) profile(t *Target, w string, round int) func() {
	if r.Profile == nil {
		return func() {}
	}
	return r.Profile(t, w, round, r.P.Duration)
}

func (r *Runner) runSearch(ctx context.Context, t *Target, res *Result, w string, req *encoded) error {
	checkers := sync.Pool{New: func() any { return &searchChecker{want: r.SearchReply} }}
	return r.measure(ctx, t, res, w, r.P.SearchConns, r.P.SearchCallers, func(ctx context.Context, cc *grpc.ClientConn, resp *response) error {
		if err := cc.Invoke(ctx, searchMethod, req, resp); err != nil {
			return err
		}
		c := checkers.Get().(*searchChecker)
		defer checkers.Put(c)
		return c.check(resp.b)
	})
}

func (r *Runner) runInsert(ctx context.Context, t *Target, res *Result) error {
	err := r.measure(ctx, t, res, Insert, r.P.InsertConns, r.P.InsertCallers, func(ctx context.Context, cc *grpc.ClientConn, resp *response) error {
		if err := cc.Invoke(ctx, insertMethod, r.insert, resp); err != nil {
			return err
		}
		return checkInsert(resp.b, r.P.InsertRows)
	})
	res.MBps = res.RPS * float64(len(r.insert.b)) / 1e6
	return err
}

// measure runs callers over nConns connections for one window, profiling its measured
// part, and fills in res's calls/s, CPU per call and latency percentiles.
func (r *Runner) measure(ctx context.Context, t *Target, res *Result, workload string, nConns, callers int,
	call func(ctx context.Context, cc *grpc.ClientConn, resp *response) error) error {
	conns, err := dialN(ctx, t, nConns)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	w := r.window()
	cpu, backendCPU, clientCPU := meterCPUs(t, w)
	var end func()
	var once sync.Once
	lat, _, err := loop(ctx, conns, callers, w, func(ctx context.Context, cc *grpc.ClientConn, resp *response) error {
		if time.Now().After(w.from) {
			once.Do(func() { end = r.profile(t, workload, res.Round) })
		}
		return call(ctx, cc, resp)
	})
	if end != nil {
		end()
	}
	if err != nil {
		return err
	}
	res.Calls, res.Seconds = int64(len(lat)), r.P.Duration.Seconds()
	res.RPS = float64(res.Calls) / res.Seconds
	setCPU(res, cpu, backendCPU, clientCPU)
	percentiles(lat, res)
	return nil
}

// runBig sends BigCallers concurrent inserts of BigRows rows, BigPerCaller each, and
// reads the peak resident set of the target while they pass.
func (r *Runner) runBig(ctx context.Context, t *Target, res *Result) error {
	conns, err := dialN(ctx, t, r.P.BigConns)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	pids := t.PIDs()
	hwm := resetPeak(pids) == nil
	sampler := samplePeak(t.PIDs)
	start := time.Now()
	var calls atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, r.P.BigCallers)
	for i := range r.P.BigCallers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc := conns[i%len(conns)]
			var resp response
			for range r.P.BigPerCaller {
				if err := cc.Invoke(ctx, insertMethod, r.big, &resp); err != nil {
					errs <- err
					return
				}
				if err := checkInsert(resp.b, r.P.BigRows); err != nil {
					errs <- err
					return
				}
				calls.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	sampled := sampler.done()
	if err := <-errs; err != nil {
		return err
	}
	m, err := readMemory(t.PIDs())
	if err != nil {
		return err
	}
	peak := sampled
	if hwm {
		peak = max(peak, m.peakKiB)
	}
	res.Calls, res.Seconds = calls.Load(), time.Since(start).Seconds()
	res.RPS = float64(res.Calls) / res.Seconds
	res.MBps = res.RPS * float64(len(r.big.b)) / 1e6
	res.PeakMiB = float64(peak) / 1024
	return nil
}

// runMany opens ManyConns connections, each making one Search a second at its own phase,
// and reports latency and the target's resident set with them all open.
func (r *Runner) runMany(ctx context.Context, t *Target, res *Result) error {
	conns, err := dialN(ctx, t, r.P.ManyConns)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := r.manyWindow()
	cpu, backendCPU, clientCPU := meterCPUs(t, w)
	lats := make([][]time.Duration, len(conns))
	var wg sync.WaitGroup
	for i, cc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if lats[i], err = r.searchEverySecond(ctx, cc, w); err != nil {
				cancel(err)
			}
		}()
	}
	// The resident set is read a second before the window ends, while every client still
	// calls: in the last second the clients stop one by one, and a balancer that gives
	// memory back once quiet (milvus-lb's internal/procmem) would be read after that.
	read := readMemoryAt(w.to.Add(-manyReadBefore), t)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		read.cancel()
		return err
	}
	m, err := read.wait()
	if err != nil {
		return err
	}
	r.profile(t, Many, res.Round)() // after reading the resident set: it collects
	lat := slices.Concat(lats...)
	res.Calls, res.Seconds = int64(len(lat)), r.P.ManyDuration.Seconds()
	res.RPS = float64(res.Calls) / res.Seconds
	res.RSSMiB = float64(m.rssKiB) / 1024
	setCPU(res, cpu, backendCPU, clientCPU)
	percentiles(lat, res)
	// Every connection calls once a second from a random phase: fewer calls means the
	// calls took longer than a second, the load generator or the target fell behind.
	if want := int64(float64(len(conns)) * (r.P.ManyDuration.Seconds() - 1) * 0.95); res.Calls < want {
		return fmt.Errorf("only %d calls in the window, want about %d: the load generator or the target fell behind", res.Calls, want)
	}
	return nil
}

// searchEverySecond makes one Search a second on cc, from a random phase (as
// independent clients do), until ctx ends or the window w does, and returns the
// latencies of the calls that started in w. A failed or wrong answer is an error.
func (r *Runner) searchEverySecond(ctx context.Context, cc *grpc.ClientConn, w window) ([]time.Duration, error) {
	var lat []time.Duration
	var resp response
	var checker searchChecker
	next := time.Now().Add(time.Duration(rand.Int64N(int64(time.Second))))
	for {
		select {
		case <-ctx.Done():
			return lat, nil
		case <-time.After(time.Until(next)):
		}
		if next.After(w.to) {
			return lat, nil
		}
		t0 := time.Now()
		err := cc.Invoke(ctx, searchMethod, r.search, &resp)
		if err == nil {
			err = checker.check(resp.b)
		}
		if err != nil {
			return lat, err
		}
		if t0.After(w.from) {
			lat = append(lat, time.Since(t0))
		}
		next = next.Add(time.Second)
	}
}

// memoryReading is a reading of a target's memory at a set time (readMemoryAt).
type memoryReading struct {
	timer *time.Timer
	got   chan memoryResult
}

type memoryResult struct {
	m   memory
	err error
}

// readMemoryAt reads the memory of t's processes at time at.
func readMemoryAt(at time.Time, t *Target) *memoryReading {
	mr := &memoryReading{got: make(chan memoryResult, 1)}
	mr.timer = time.AfterFunc(time.Until(at), func() {
		m, err := readMemory(t.PIDs())
		mr.got <- memoryResult{m, err}
	})
	return mr
}

func (mr *memoryReading) cancel() { mr.timer.Stop() }

// wait returns the reading once it is made.
func (mr *memoryReading) wait() (memory, error) {
	got := <-mr.got
	return got.m, got.err
}

// runIdle opens IdleConns TLS connections that make one call and then only ping every
// 10 s, holds them IdleHold, and reports the growth of the target's resident set per
// connection. A connection the target closed (and the client redialled) fails the run.
func (r *Runner) runIdle(ctx context.Context, t *Target, res *Result) error {
	before, err := readMemory(t.PIDs())
	if err != nil {
		return err
	}
	var dials atomic.Int64
	dialer := &net.Dialer{}
	count := grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		return dialer.DialContext(ctx, "tcp", addr)
	})
	conns, err := dialN(ctx, t, r.P.IdleConns, append(idleDialOptions(), count)...)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(r.P.IdleHold):
	}
	after, err := readMemory(t.PIDs())
	if err != nil {
		return err
	}
	r.profile(t, Idle, res.Round)() // after reading the resident set: it collects
	for i, cc := range conns {
		if s := cc.GetState(); s != connectivity.Ready && s != connectivity.Idle {
			return fmt.Errorf("idle connection %d is %v", i, s)
		}
	}
	if n := dials.Load(); n != int64(len(conns)) {
		return fmt.Errorf("%d dials for %d connections: the target closed idle connections", n, len(conns))
	}
	res.Calls = int64(len(conns))
	res.Seconds = r.P.IdleHold.Seconds()
	res.RSSMiB = float64(after.rssKiB) / 1024
	res.PerConnKiB = float64(after.rssKiB-before.rssKiB) / float64(len(conns))
	return nil
}

var errNoTargets = errors.New("no targets")
