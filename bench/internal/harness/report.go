package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine describes where a run took place, for the report.
type Machine struct {
	CPU        string   `json:"cpu"`
	Cores      int      `json:"cores"`
	MemoryGiB  float64  `json:"memory_gib"`
	Kernel     string   `json:"kernel"`
	Go         string   `json:"go"`
	Versions   []string `json:"versions"`
	LoadBefore string   `json:"load_before"`
	LoadAfter  string   `json:"load_after"`
	Started    string   `json:"started"`
	Minutes    float64  `json:"minutes"`
}

// DescribeMachine reads CPU, memory, kernel and the balancers' versions.
func DescribeMachine(peers []string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: LoadAverage(), Started: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(string(b), "MemTotal: %f kB", &kb)
		m.MemoryGiB = math.Round(kb/1024/1024*10) / 10
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	for _, p := range peers {
		bin, err := peerBinary(p)
		if err != nil {
			continue
		}
		var args []string
		switch p {
		case Nginx:
			args = []string{"-v"}
		case HAProxy:
			args = []string{"-v"}
		case Caddy:
			args = []string{"version"}
		}
		out, _ := exec.Command(bin, args...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		line = strings.TrimPrefix(line, "nginx version: ")
		line, _, _ = strings.Cut(line, " - ") // HAProxy's web site
		m.Versions = append(m.Versions, strings.TrimSpace(line))
	}
	return m
}

// LoadAverage is the first three fields of /proc/loadavg.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// figure is one row of the table: how to read it from a summary and which way is better.
type figure struct {
	workload, name, unit string
	get                  func(Result) float64
	higherBetter         bool
	goal                 float64 // an absolute limit for milvus-lb (0: none)
	plot                 bool
}

var figures = []figure{
	{Search, "calls/s", "calls/s", func(r Result) float64 { return r.RPS }, true, 0, true},
	{Search, "p50", "ms", func(r Result) float64 { return r.P50ms }, false, 0, false},
	{Search, "p99", "ms", func(r Result) float64 { return r.P99ms }, false, 0, true},
	{Search, "CPU per call", "µs", func(r Result) float64 { return r.CPUus }, false, 0, true},
	{Search, "backend CPU per call", "µs", func(r Result) float64 { return r.BackendCPUus }, false, 0, false},
	{Search, "load generator CPU per call", "µs", func(r Result) float64 { return r.ClientCPUus }, false, 0, false},
	{Search, "machine idle", "%", func(r Result) float64 { return r.IdlePct }, false, 0, false},
	{SearchCached, "calls/s", "calls/s", func(r Result) float64 { return r.RPS }, true, 0, true},
	{SearchCached, "p99", "ms", func(r Result) float64 { return r.P99ms }, false, 0, false},
	{SearchCached, "CPU per call", "µs", func(r Result) float64 { return r.CPUus }, false, 0, false},
	{Insert, "messages/s", "msg/s", func(r Result) float64 { return r.RPS }, true, 0, false},
	{Insert, "MB/s", "MB/s", func(r Result) float64 { return r.MBps }, true, 0, true},
	{Insert, "p99", "ms", func(r Result) float64 { return r.P99ms }, false, 0, false},
	{Insert, "CPU per call", "µs", func(r Result) float64 { return r.CPUus }, false, 0, false},
	{Insert, "backend CPU per call", "µs", func(r Result) float64 { return r.BackendCPUus }, false, 0, false},
	{Insert, "load generator CPU per call", "µs", func(r Result) float64 { return r.ClientCPUus }, false, 0, false},
	{Insert, "machine idle", "%", func(r Result) float64 { return r.IdlePct }, false, 0, false},
	{Big, "peak RSS", "MiB", func(r Result) float64 { return r.PeakMiB }, false, 256, true},
	{Big, "MB/s", "MB/s", func(r Result) float64 { return r.MBps }, true, 0, false},
	{Many, "p99", "ms", func(r Result) float64 { return r.P99ms }, false, 0, true},
	{Many, "RSS", "MiB", func(r Result) float64 { return r.RSSMiB }, false, 0, false},
	{Idle, "RSS per connection", "KiB", func(r Result) float64 { return r.PerConnKiB }, false, 30, true},
}

func figureOf(workload, name string) figure {
	for _, f := range figures {
		if f.workload == workload && f.name == name {
			return f
		}
	}
	panic("no figure " + workload + " " + name)
}

func lookup(sum []Result, w, t string) (Result, bool) {
	for _, r := range sum {
		if r.Workload == w && r.Target == t {
			return r, true
		}
	}
	return Result{}, false
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// Table is the Markdown table of the medians, one column per target, with milvus-lb's
// ratio to the best peer.
func Table(sum []Result, targets []string) string {
	var b strings.Builder
	b.WriteString("| workload | figure |")
	for _, t := range targets {
		if t == Direct {
			t = "direct (limit)"
		}
		b.WriteString(" " + t + " |")
	}
	b.WriteString(" milvus-lb vs best peer |\n|---|---|")
	for range targets {
		b.WriteString("---:|")
	}
	b.WriteString("---:|\n")
	for _, f := range figures {
		if _, ok := lookup(sum, f.workload, MilvusLB); !ok {
			if _, ok := lookup(sum, f.workload, Direct); !ok {
				continue
			}
		}
		fmt.Fprintf(&b, "| %s | %s (%s) |", f.workload, f.name, f.unit)
		for _, t := range targets {
			v := math.NaN()
			if r, ok := lookup(sum, f.workload, t); ok {
				v = f.get(r)
			}
			fmt.Fprintf(&b, " %s |", num(v))
		}
		b.WriteString(" " + ratio(sum, f) + " |\n")
	}
	return b.String()
}

// bestPeer is the peer with the best value of f.
func bestPeer(sum []Result, f figure) (string, float64, bool) {
	name, best, found := "", 0.0, false
	for _, p := range AllPeers {
		r, ok := lookup(sum, f.workload, p)
		if !ok {
			continue
		}
		v := f.get(r)
		if !found || (f.higherBetter && v > best) || (!f.higherBetter && v < best) {
			name, best, found = p, v, true
		}
	}
	return name, best, found
}

func ratio(sum []Result, f figure) string {
	lb, ok := lookup(sum, f.workload, MilvusLB)
	if !ok {
		return ""
	}
	name, best, ok := bestPeer(sum, f)
	if !ok || best == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f× (%s)", f.get(lb)/best, name)
}

// Goals checks the goals against the medians and says, one line each, whether
// each is met.
func Goals(sum []Result) []string {
	var out []string
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	get := func(w, t string) (Result, bool) { return lookup(sum, w, t) }
	if lb, ok := get(Search, MilvusLB); ok {
		if name, best, ok := bestPeer(sum, figureOf(Search, "calls/s")); ok {
			peer, _ := get(Search, name)
			r := lb.RPS / best
			out = append(out, fmt.Sprintf("Search: %.2f× the calls/s of the best peer (%s), goal ≥ 1.3×: %s; p99 %.2f ms vs %s's %.2f ms: %s",
				r, name, mark(r >= 1.3), lb.P99ms, name, peer.P99ms, mark(lb.P99ms <= peer.P99ms)))
		}
	}
	if lb, ok := get(SearchCached, MilvusLB); ok {
		if own, ok := get(Search, MilvusLB); ok {
			r := lb.RPS / own.RPS
			out = append(out, fmt.Sprintf("Search, cached: %.2f× milvus-lb's own uncached calls/s, goal ≥ 1.8×: %s", r, mark(r >= 1.8)))
		}
		if name, best, ok := bestPeer(sum, figureOf(SearchCached, "calls/s")); ok {
			r := lb.RPS / best
			out = append(out, fmt.Sprintf("Search, cached: %.2f× the calls/s of the best peer (%s), goal ≥ 2.5×: %s", r, name, mark(r >= 2.5)))
		}
	}
	if lb, ok := get(Insert, MilvusLB); ok {
		if name, best, ok := bestPeer(sum, figureOf(Insert, "MB/s")); ok {
			r := lb.MBps / best
			out = append(out, fmt.Sprintf("Insert: %.2f× the throughput of the best peer (%s), goal ≥ 1.3×: %s", r, name, mark(r >= 1.3)))
		}
	}
	if lb, ok := get(Big, MilvusLB); ok {
		out = append(out, fmt.Sprintf("Big inserts: peak RSS %.0f MiB, goal ≤ 256 MiB: %s", lb.PeakMiB, mark(lb.PeakMiB <= 256)))
	}
	if lb, ok := get(Idle, MilvusLB); ok {
		out = append(out, fmt.Sprintf("Idle connections: %.1f KiB each, goal ≤ 30 KiB: %s", lb.PerConnKiB, mark(lb.PerConnKiB <= 30)))
	}
	return out
}

// Chart is the plot description bench/plot reads.
func Chart(title string, sum []Result, targets []string) ([]byte, error) {
	type panel struct {
		Title  string    `json:"title"`
		Unit   string    `json:"unit"`
		Values []float64 `json:"values"`
		Goal   float64   `json:"goal,omitempty"`
	}
	var panels []panel
	for _, f := range figures {
		if !f.plot {
			continue
		}
		p := panel{Title: f.workload + ": " + f.name, Unit: f.unit, Goal: f.goal}
		if f.higherBetter {
			p.Title += " (higher is better)"
		} else {
			p.Title += " (lower is better)"
		}
		any := false
		for _, t := range targets {
			v := 0.0
			if r, ok := lookup(sum, f.workload, t); ok {
				v, any = f.get(r), true
			}
			p.Values = append(p.Values, v)
		}
		if any {
			panels = append(panels, p)
		}
	}
	var buf bytes.Buffer
	err := json.NewEncoder(&buf).Encode(map[string]any{"title": title, "targets": targets, "panels": panels})
	return buf.Bytes(), err
}
