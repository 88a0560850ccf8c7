package harness

import (
	"fmt"
	"strings"
)

// String is one line for the progress log.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %-9s round %d:", r.Workload, r.Target, r.Round)
	switch r.Workload {
	case Search, SearchCached:
		fmt.Fprintf(&b, " %.0f calls/s, p50 %.2f ms, p99 %.2f ms, CPU/call µs: %.1f (backend %.1f, client %.1f), idle %.0f%%", r.RPS, r.P50ms, r.P99ms, r.CPUus, r.BackendCPUus, r.ClientCPUus, r.IdlePct)
	case Insert:
		fmt.Fprintf(&b, " %.1f msg/s, %.1f MB/s, p50 %.1f ms, p99 %.1f ms, CPU/call µs: %.0f (backend %.0f, client %.0f), idle %.0f%%", r.RPS, r.MBps, r.P50ms, r.P99ms, r.CPUus, r.BackendCPUus, r.ClientCPUus, r.IdlePct)
	case Big:
		fmt.Fprintf(&b, " %d inserts in %.1f s (%.0f MB/s), peak RSS %.1f MiB", r.Calls, r.Seconds, r.MBps, r.PeakMiB)
	case Many:
		fmt.Fprintf(&b, " %.0f calls/s, p50 %.2f ms, p99 %.2f ms, RSS %.1f MiB, CPU/call µs: %.0f (backend %.0f, client %.0f), idle %.0f%%", r.RPS, r.P50ms, r.P99ms, r.RSSMiB, r.CPUus, r.BackendCPUus, r.ClientCPUus, r.IdlePct)
	case Idle:
		fmt.Fprintf(&b, " %d connections, RSS %.1f MiB, %.1f KiB per connection", r.Calls, r.RSSMiB, r.PerConnKiB)
	case Mixed:
		fmt.Fprintf(&b, " Search p99 %.2f ms alone, %.2f ms with inserts (%.0f calls/s; %.0f%% beside an insert, p99 %.2f ms, the others %.2f ms), inserts %.0f MB/s",
			r.AloneP99ms, r.P99ms, r.RPS, r.BusyPct, r.BusyP99ms, r.FreeP99ms, r.MBps)
	}
	return b.String()
}
