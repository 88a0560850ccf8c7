package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/milvus-lb/milvus-lb/bench/internal/harness"
)

// mirrorSection is where the run's table goes in the Markdown file.
var mirrorSection = section{title: "Mirroring (`-workloads mirror`)", tag: "bench:mirror", command: "go run ./bench/cmd/bench -workloads mirror"}

// runMirror runs the mirror workload (harness.RunMirror) and writes its table into out,
// between the mirror markers.
func runMirror(ctx context.Context, dir, lb, out string, quick bool, d time.Duration, rounds int) error {
	if d == 0 {
		d = 5 * time.Second
		if quick {
			d = 2 * time.Second
		}
	}
	if rounds == 0 {
		rounds = 3
	}
	m := harness.DescribeMachine(nil)
	start := time.Now()
	results, err := harness.RunMirror(ctx, dir, lb, d, rounds, log.Printf)
	if err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	var b strings.Builder
	b.WriteString(runLine(m, start))
	fmt.Fprintf(&b, "%d rounds; in each, every scenario for %v (after %v of load not counted), the order turned by one each round; "+
		"4 callers on 2 TLS connections making Search and Query calls one after another, no retries; a fake Milvus primary answering in 2 ms; "+
		"with the mirror annotation, `percent` 100: every call is copied. The ratios are the median over the rounds of the scenario's figure over "+
		"the no-mirror one of the same round.\n\n", rounds, d, 500*time.Millisecond)
	b.WriteString("| scenario | mirror | calls/s | failed | p50 | p99 | p50 / no mirror | p99 / no mirror | copies sent | copies dropped |\n" +
		"| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %d | %.2f ms | %.2f ms | %.2f | %.2f | %d | %d |\n", r.Scenario, r.Note, r.CallsPerSec, r.Failed,
			float64(r.P50)/float64(time.Millisecond), float64(r.P99)/float64(time.Millisecond), r.P50Ratio, r.P99Ratio, r.Copies, r.Dropped)
	}
	fmt.Print(b.String())
	return mirrorSection.write(out, b.String())
}
