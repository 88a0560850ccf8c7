package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/milvus-lb/milvus-lb/bench/internal/harness"
)

// chaosSection is where the run's table goes in the Markdown file.
var chaosSection = section{title: "Through backend faults (`-workloads chaos`)", tag: "bench:chaos", command: "go run ./bench/cmd/bench -workloads chaos"}

// runChaos runs the chaos workload (harness.RunChaos) and writes its table into out,
// between the chaos markers.
func runChaos(ctx context.Context, dir, lb, out string, quick bool, d time.Duration) error {
	if d == 0 {
		d = 20 * time.Second
		if quick {
			d = 5 * time.Second
		}
	}
	m := harness.DescribeMachine(nil)
	start := time.Now()
	results, err := harness.RunChaos(ctx, dir, lb, d, log.Printf)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	var b strings.Builder
	b.WriteString(runLine(m, start))
	fmt.Fprintf(&b, "Each scenario: %v of load (and a tenth more of warm-up, counted), 8 callers on 2 TLS connections, no retries of their own, every 5th call an Insert where writes are listed; 3 fake Milvus backends answering in 2 ms.\n\n", d)
	b.WriteString("| scenario | fault | calls | failed reads | failed writes (of) | retried by milvus-lb | p50 | p99 |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range results {
		writes := "–"
		if r.Writes > 0 {
			writes = fmt.Sprintf("%d (%d)", r.FailedWrites, r.Writes)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %d | %.1f ms | %.1f ms |\n", r.Scenario, r.Note, r.Calls, r.FailedReads, writes, r.Retried,
			float64(r.P50)/float64(time.Millisecond), float64(r.P99)/float64(time.Millisecond))
	}
	fmt.Print(b.String())
	return chaosSection.write(out, b.String())
}

// runLine is the paragraph that says how a run was made: command, time, machine, load.
func runLine(m harness.Machine, start time.Time) string {
	m.LoadAfter = harness.LoadAverage()
	return fmt.Sprintf("Command: `%s` (%s, %.0f minutes). Machine: %s, %d cores; load average before %s, after %s.\n\n",
		commandLine(), m.Started, time.Since(start).Minutes(), m.CPU, m.Cores, m.LoadBefore, m.LoadAfter)
}
