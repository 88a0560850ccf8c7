package harness

import (
	"fmt"
	"math"
	"slices"
)

// Ratio is milvus-lb's value of one figure over another target's, round by round: the
// targets of a round run one after the other, so a slow minute of the machine falls on
// both sides of a round's ratio, and the spread of the ratios over the rounds says how
// far one run's ratio can be trusted. A ratio whose rounds straddle 1.0 is no win.
type Ratio struct {
	Workload string    `json:"workload"`
	Figure   string    `json:"figure"`
	Against  string    `json:"against"`
	Median   float64   `json:"median"` // of the per-round ratios
	Min      float64   `json:"min"`
	Max      float64   `json:"max"`
	Rounds   []float64 `json:"rounds"` // in round order; NaN where either side is missing
}

// Ratios are, for every figure, milvus-lb against the best peer (chosen by the medians,
// as the table does), against the bounds (tls-pipe, go-pipe) and against the baseline,
// where the run measured them.
func Ratios(results, sum []Result) []Ratio {
	var out []Ratio
	for _, f := range figures {
		var against []string
		if name, _, ok := bestPeer(sum, f); ok {
			against = append(against, name)
		}
		for _, t := range notPeers() {
			if _, ok := lookup(sum, f.workload, t); ok {
				against = append(against, t)
			}
		}
		for _, t := range against {
			if r, ok := pairedRatio(results, f, t); ok {
				out = append(out, r)
			}
		}
	}
	return out
}

// notPeers are the targets milvus-lb is compared with beside the best peer, where a run
// measures them: the bounds and the baseline.
func notPeers() []string { return append(slices.Clone(Bounds), Baseline) }

// pairedRatio divides milvus-lb's value of f by t's in each round both ran.
func pairedRatio(results []Result, f figure, t string) (Ratio, bool) {
	byRound := func(target string) map[int]float64 {
		m := map[int]float64{}
		for _, r := range results {
			if r.Workload == f.workload && r.Target == target {
				m[r.Round] = f.get(r)
			}
		}
		return m
	}
	lb, other := byRound(MilvusLB), byRound(t)
	var rounds []int
	for round := range lb {
		rounds = append(rounds, round)
	}
	slices.Sort(rounds)
	out := Ratio{Workload: f.workload, Figure: f.name, Against: t}
	var valid []float64
	for _, round := range rounds {
		v := math.NaN()
		if d, ok := other[round]; ok && d != 0 {
			v = lb[round] / d
			valid = append(valid, v)
		}
		out.Rounds = append(out.Rounds, v)
	}
	if len(valid) == 0 {
		return Ratio{}, false
	}
	out.Median = median(valid)
	out.Min, out.Max = slices.Min(valid), slices.Max(valid)
	return out, true
}

// median of v (sorted in place).
func median(v []float64) float64 {
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

// findRatio is the ratio of the figure against t, if the run measured it.
func findRatio(ratios []Ratio, workload, name, t string) (Ratio, bool) {
	for _, r := range ratios {
		if r.Workload == workload && r.Figure == name && r.Against == t {
			return r, true
		}
	}
	return Ratio{}, false
}

// spread is "lo–hi over n rounds" for a table cell or a goal line ("" for one round).
func (r Ratio) spread() string {
	n := 0
	for _, v := range r.Rounds {
		if !math.IsNaN(v) {
			n++
		}
	}
	if n < 2 {
		return ""
	}
	return fmt.Sprintf("%.2f–%.2f over %d rounds", r.Min, r.Max, n)
}
