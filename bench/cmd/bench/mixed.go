package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/milvus-lb/milvus-lb/bench/internal/harness"
)

// mixedSection is where the run's table goes in the Markdown file.
var mixedSection = section{title: "Searches beside large inserts (`-workloads mixed`)", tag: "bench:mixed", command: "go run ./bench/cmd/bench -workloads mixed"}

// mixedBackends is how many fake backends the mixed workload balances over: enough that
// a balancer has a backend without an insert to send a Search to.
const mixedBackends = 2

// runMixed runs the mixed workload (harness.Mixed) in an Env of its own, milvus-lb (and
// the baseline) and the peers in front of mixedBackends backends, and writes its table
// into out, between the mixed markers.
func runMixed(ctx context.Context, cfg harness.Config, params harness.Params, rounds int, out string) error {
	cfg.Backends = mixedBackends
	cfg.Dir = filepath.Join(cfg.Dir, "mixed")
	cfg.Peers = slices.DeleteFunc(slices.Clone(cfg.Peers), func(p string) bool { return p == harness.TLSPipe })
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return err
	}
	m := harness.DescribeMachine(cfg.Peers)
	start := time.Now()
	table, err := tableOf(ctx, cfg, params, harness.Plan{Workloads: []string{harness.Mixed}, Rounds: rounds})
	if err != nil {
		return fmt.Errorf("mixed: %w", err)
	}

	var b strings.Builder
	b.WriteString(runLine(m, start))
	fmt.Fprintf(&b, "Each round, each target: %d Search callers over %d connections for %v (after %v of warm-up) alone, then again while %d caller(s) on a connection of their own send %.0f MiB inserts back to back; %d fake backends, balanced by calls in flight (direct: the first backend only). Medians of %d interleaved rounds; a Search is \"beside an insert\" when its backend had an insert in flight while it was there.\n\n",
		params.MixedCallers, params.MixedConns, params.Duration, params.Warmup, params.MixedInserts, float64(params.BigRows*(4*harness.Dim+2))/(1<<20), mixedBackends, rounds)
	b.WriteString(table)
	fmt.Print(b.String())
	return mixedSection.write(out, b.String())
}

// tableOf starts an Env of cfg, runs plan through it and returns the table of the
// medians. A real backend's reply to the Search is what every Search must answer.
func tableOf(ctx context.Context, cfg harness.Config, params harness.Params, plan harness.Plan) (string, error) {
	env, err := harness.Start(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer env.Close()
	runner := harness.NewRunner(params)
	runner.Logf, runner.SearchReply = log.Printf, env.SearchReply
	results, err := runner.RunPlan(ctx, env, plan)
	if err != nil {
		return "", err
	}
	env.Close()
	sum := harness.Summary(results)
	var targets []string
	for _, t := range env.Targets {
		targets = append(targets, t.Name)
	}
	return harness.Table(sum, harness.Ratios(results, sum), targets), nil
}
