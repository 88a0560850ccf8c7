package harness

import (
	"strings"
	"testing"
)

// TestRatiosPairRounds checks that each ratio divides milvus-lb's figure by the other
// target's of the same round, and that the table and the goals show their spread, so
// that a reader sees a ratio whose rounds straddle 1.00 for the noise it is.
func TestRatiosPairRounds(t *testing.T) {
	results := []Result{
		{Workload: Search, Target: MilvusLB, Round: 1, RPS: 200, P99ms: 4},
		{Workload: Search, Target: HAProxy, Round: 1, RPS: 100, P99ms: 5},
		{Workload: Search, Target: Baseline, Round: 1, RPS: 180, P99ms: 4},
		{Workload: Search, Target: MilvusLB, Round: 2, RPS: 120, P99ms: 6},
		{Workload: Search, Target: HAProxy, Round: 2, RPS: 100, P99ms: 5},
		{Workload: Search, Target: Baseline, Round: 2, RPS: 130, P99ms: 6},
		{Workload: Search, Target: MilvusLB, Round: 3, RPS: 150, P99ms: 5},
		{Workload: Search, Target: HAProxy, Round: 3, RPS: 50, P99ms: 8},
		{Workload: Search, Target: Baseline, Round: 3, RPS: 150, P99ms: 5},
	}
	sum := Summary(results)
	ratios := Ratios(results, sum)

	r, ok := findRatio(ratios, Search, "calls/s", HAProxy)
	if !ok {
		t.Fatal("no calls/s ratio against haproxy")
	}
	if want := []float64{2, 1.2, 3}; !equal(r.Rounds, want) || r.Median != 2 || r.Min != 1.2 || r.Max != 3 {
		t.Errorf("calls/s vs haproxy: %+v, want rounds %v, median 2, 1.2–3", r, want)
	}
	r, ok = findRatio(ratios, Search, "calls/s", Baseline)
	if !ok || r.Min >= 1 || r.Max <= 1 {
		t.Errorf("calls/s vs baseline: %+v (ok %v), want a spread across 1.00", r, ok)
	}

	table := Table(sum, ratios, []string{MilvusLB, HAProxy, Baseline})
	for _, want := range []string{"milvus-lb vs best peer", "milvus-lb vs baseline", "1.50× (haproxy; 1.20–3.00 over 3 rounds)", "1.00× (0.92–1.11 over 3 rounds)"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	goals := strings.Join(Goals(sum, ratios), "\n")
	if !strings.Contains(goals, "calls/s 1.50× haproxy's 100 (1.20–3.00 over 3 rounds), goal ≥ 1.5×: met") {
		t.Errorf("goals:\n%s", goals)
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
