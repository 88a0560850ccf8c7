package balancer

import (
	"container/heap"
	"slices"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// A simulated run of reads on a virtual clock: callers that each make one call at a time,
// back to back, through p; endpoint i answers in svc(i, now). It returns the calls each
// endpoint answered in [from, to) and those calls' durations.
type simCall struct {
	done int64
	ep   int
	took time.Duration
}

type simQueue []simCall

func (q simQueue) Len() int           { return len(q) }
func (q simQueue) Less(i, j int) bool { return q[i].done < q[j].done }
func (q simQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)        { *q = append(*q, x.(simCall)) }
func (q *simQueue) Pop() any          { old := *q; c := old[len(old)-1]; *q = old[:len(old)-1]; return c }

func simulate(t *testing.T, eps []*Endpoint, callers int, svc func(ep int, now int64) time.Duration, from, to time.Duration) (share []int, took []time.Duration) {
	t.Helper()
	p := NewPicker(config.LeastOutstandingRequests, eps, 0)
	index := map[*Endpoint]int{}
	for i, ep := range eps {
		index[ep] = i
	}
	start := time.Now().UnixNano() // the virtual clock starts here; Pick reads only now
	share = make([]int, len(eps))
	var q simQueue
	call := func(now int64) {
		ep := p.Pick(now)
		if ep == nil {
			t.Fatal("no endpoint picked")
		}
		ep.Start()
		i := index[ep]
		d := svc(i, now)
		heap.Push(&q, simCall{done: now + int64(d), ep: i, took: d})
	}
	for range callers {
		call(start)
	}
	for q.Len() > 0 {
		c := heap.Pop(&q).(simCall)
		if c.done-start >= int64(to) {
			break
		}
		eps[c.ep].ObserveRead(c.done, c.took)
		eps[c.ep].Done()
		if c.done-start >= int64(from) {
			share[c.ep]++
			took = append(took, c.took)
		}
		call(c.done)
	}
	return share, took
}

func p99(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*99/100]
}

// One endpoint of three answers 20× slower: least outstanding alone gives it a third of
// the calls whenever the callers leave endpoints idle, and the p99 is one of its calls.
// With latency outliers it keeps under 1 % (the probes as its estimate decays), and the
// p99 is the fast endpoints'.
func TestLeastOutstandingAvoidsLatencyOutlier(t *testing.T) {
	const fast, slow = 2 * time.Millisecond, 40 * time.Millisecond
	svc := func(ep int, _ int64) time.Duration {
		if ep == 2 {
			return slow
		}
		return fast
	}
	share, took := simulate(t, endpoints(3), 4, svc, 5*time.Second, 65*time.Second)
	total := share[0] + share[1] + share[2]
	if frac := float64(share[2]) / float64(total); frac >= 0.01 || share[2] == 0 {
		t.Errorf("slow endpoint took %d of %d calls (%.2f %%), want some probes and under 1 %%", share[2], total, 100*frac)
	}
	if got := p99(took); got != fast {
		t.Errorf("p99 %v, want the fast endpoints' %v", got, fast)
	}
}

// Endpoints within outlierFactor of each other are equals: least outstanding gives each
// its caller, as it did without latency (the 3 ms endpoint answers two thirds as many).
func TestLeastOutstandingEqualsShareEvenly(t *testing.T) {
	svc := func(ep int, _ int64) time.Duration { return time.Duration(2+ep/2) * time.Millisecond } // 2, 2, 3 ms
	share, _ := simulate(t, endpoints(3), 3, svc, time.Second, 11*time.Second)
	total := share[0] + share[1] + share[2]
	for i, n := range share {
		if frac := float64(n) / float64(total); frac < 0.2 {
			t.Errorf("endpoint %d took %.0f %% of the calls, want a caller's worth: %v", i, 100*frac, share)
		}
	}
}

// A slow endpoint that becomes fast again gets its share back: its probes say so.
func TestLatencyOutlierComesBack(t *testing.T) {
	var recovered int64
	svc := func(ep int, now int64) time.Duration {
		if recovered == 0 {
			recovered = now + int64(20*time.Second)
		}
		if ep == 2 && now < recovered {
			return 40 * time.Millisecond
		}
		return 2 * time.Millisecond
	}
	share, _ := simulate(t, endpoints(3), 4, svc, 30*time.Second, 40*time.Second)
	total := share[0] + share[1] + share[2]
	if frac := float64(share[2]) / float64(total); frac < 0.25 {
		t.Errorf("recovered endpoint took %.1f %% of the calls 10-20 s after it recovered, want about a third: %v", 100*frac, share)
	}
}

func TestReadLatencyDecays(t *testing.T) {
	ep := endpoints(1)[0]
	if got := ep.ReadLatency(0); got != 0 {
		t.Fatalf("estimate %v before any sample, want 0", got)
	}
	ep.ObserveRead(1e9, 10*time.Millisecond)
	if got := ep.ReadLatency(1e9); got != 10*time.Millisecond {
		t.Errorf("estimate %v after one sample, want 10ms", got)
	}
	ep.ObserveRead(1e9+int64(latencyTau), 20*time.Millisecond) // weight 1-1/e
	if got := ep.ReadLatency(1e9 + int64(latencyTau)); got < 16*time.Millisecond || got > 17*time.Millisecond {
		t.Errorf("estimate %v, want 10 + 10·(1-1/e) ≈ 16.3ms", got)
	}
	if got := ep.ReadLatency(1e9 + 4*int64(latencyTau)); got > time.Millisecond {
		t.Errorf("estimate %v after 3τ without a sample, want it decayed to about 5 %%", got)
	}
}
