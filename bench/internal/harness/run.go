package harness

import "context"

// Plan is what one run measures.
type Plan struct {
	Workloads []string
	// Rounds of each workload; in a round every target runs once, so that targets take
	// turns and a slow minute of the machine falls on all. Each round starts one target
	// later (A B C, B C A, C A B): a target's place in the round is worth a few per cent
	// (the same binary in the two places after the direct run measured 0.975× and 0.988×
	// its own CPU per call in two runs of fixed order, 0.998× with the order turned:
	// docs/benchmarks.md), and turning the order spreads that over every target.
	Rounds int
	// IdleRounds is the number of rounds of the idle workload (each long). Before each
	// run of a memory workload (idle, big-insert) the balancer is restarted: memory a
	// process freed is often kept and reused, which would hide what the workload costs.
	IdleRounds int
}

// Run runs the plan through every target of env. The first failed call ends the run with
// an error; the results so far are returned with it.
func (r *Runner) RunPlan(ctx context.Context, env *Env, plan Plan) ([]Result, error) {
	var out []Result
	for _, w := range plan.Workloads {
		rounds := plan.Rounds
		if w == Idle && plan.IdleRounds > 0 {
			rounds = plan.IdleRounds
		}
		for round := 1; round <= rounds; round++ {
			for k := range env.Targets {
				t := env.Targets[(k+round-1)%len(env.Targets)]
				if !measures(w, t.Name) {
					continue
				}
				if w == Big || w == Idle {
					if err := env.Restart(ctx, t); err != nil {
						return out, err
					}
				}
				res, err := r.Run(ctx, w, t, round)
				if err != nil {
					return out, err
				}
				r.Logf("%s", res)
				out = append(out, res)
			}
		}
	}
	return out, nil
}

// measures says whether workload w runs through target t: the bounds (the pipes) run the
// throughput workloads only; what they hold per connection or per call is no balancer's.
func measures(w, t string) bool {
	return !isBound(t) || w == Search || w == Insert
}

// Summary is the median of each figure over the rounds of one workload and target.
func Summary(results []Result) []Result {
	type key struct{ w, t string }
	groups := map[key][]Result{}
	var order []key
	for _, r := range results {
		k := key{r.Workload, r.Target}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out []Result
	for _, k := range order {
		g := groups[k]
		med := func(f func(Result) float64) float64 {
			v := make([]float64, len(g))
			for i, r := range g {
				v[i] = f(r)
			}
			return median(v)
		}
		s := Result{Workload: k.w, Target: k.t, Round: len(g)}
		s.RPS = med(func(r Result) float64 { return r.RPS })
		s.MBps = med(func(r Result) float64 { return r.MBps })
		s.P50ms = med(func(r Result) float64 { return r.P50ms })
		s.P99ms = med(func(r Result) float64 { return r.P99ms })
		s.RSSMiB = med(func(r Result) float64 { return r.RSSMiB })
		s.PeakMiB = med(func(r Result) float64 { return r.PeakMiB })
		s.PerConnKiB = med(func(r Result) float64 { return r.PerConnKiB })
		s.CPUus = med(func(r Result) float64 { return r.CPUus })
		s.BackendCPUus = med(func(r Result) float64 { return r.BackendCPUus })
		s.ClientCPUus = med(func(r Result) float64 { return r.ClientCPUus })
		s.IdlePct = med(func(r Result) float64 { return r.IdlePct })
		s.AloneP99ms = med(func(r Result) float64 { return r.AloneP99ms })
		s.BusyPct = med(func(r Result) float64 { return r.BusyPct })
		s.BusyP99ms = med(func(r Result) float64 { return r.BusyP99ms })
		s.FreeP99ms = med(func(r Result) float64 { return r.FreeP99ms })
		s.Seconds = med(func(r Result) float64 { return r.Seconds })
		var calls int64
		for _, r := range g {
			calls += r.Calls
		}
		s.Calls = calls
		out = append(out, s)
	}
	return out
}
