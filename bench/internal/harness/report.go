package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
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
	// TLS is what the load generator negotiated with each target ("milvus-lb: TLS 1.3,
	// TLS_AES_128_GCM_SHA256, X25519").
	TLS []string `json:"tls,omitempty"`
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
	{Big, "peak RSS", "MiB", func(r Result) float64 { return r.PeakMiB }, false, 48, true},
	{Big, "MB/s", "MB/s", func(r Result) float64 { return r.MBps }, true, 0, false},
	{Many, "p99", "ms", func(r Result) float64 { return r.P99ms }, false, 0, true},
	{Many, "RSS", "MiB", func(r Result) float64 { return r.RSSMiB }, false, 0, false},
	{Many, "CPU per call", "µs", func(r Result) float64 { return r.CPUus }, false, 0, false},
	{Many, "backend CPU per call", "µs", func(r Result) float64 { return r.BackendCPUus }, false, 0, false},
	{Many, "load generator CPU per call", "µs", func(r Result) float64 { return r.ClientCPUus }, false, 0, false},
	{Many, "machine idle", "%", func(r Result) float64 { return r.IdlePct }, false, 0, false},
	{Idle, "RSS per connection", "KiB", func(r Result) float64 { return r.PerConnKiB }, false, 20, true},
	{Mixed, "Search p99 alone", "ms", func(r Result) float64 { return r.AloneP99ms }, false, 0, false},
	{Mixed, "Search p99 with inserts", "ms", func(r Result) float64 { return r.P99ms }, false, 0, false},
	{Mixed, "p99 with inserts / alone", "×", func(r Result) float64 { return r.P99ms / r.AloneP99ms }, false, 0, false},
	{Mixed, "Search p50 with inserts", "ms", func(r Result) float64 { return r.P50ms }, false, 0, false},
	{Mixed, "Search calls/s with inserts", "calls/s", func(r Result) float64 { return r.RPS }, true, 0, false},
	{Mixed, "Searches beside an insert", "%", func(r Result) float64 { return r.BusyPct }, false, 0, false},
	{Mixed, "their p99", "ms", func(r Result) float64 { return r.BusyP99ms }, false, 0, false},
	{Mixed, "the others' p99", "ms", func(r Result) float64 { return r.FreeP99ms }, false, 0, false},
	{Mixed, "their p99 / the others'", "×", func(r Result) float64 { return r.BusyP99ms / r.FreeP99ms }, false, 0, false},
	{Mixed, "insert MB/s", "MB/s", func(r Result) float64 { return r.MBps }, true, 0, false},
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
// ratio to the best peer and, where the run measured them, to the bounds (tls-pipe,
// go-pipe) and to the baseline: each the ratio of the medians, then the lowest and
// highest ratio of a round (ratios).
func Table(sum []Result, ratios []Ratio, targets []string) string {
	var b strings.Builder
	b.WriteString("| workload | figure |")
	for _, t := range targets {
		if t == Direct {
			t = "direct (limit)"
		}
		b.WriteString(" " + t + " |")
	}
	versus := []string{""} // the best peer
	for _, t := range notPeers() {
		if slices.Contains(targets, t) {
			versus = append(versus, t)
		}
	}
	for _, t := range versus {
		if t == "" {
			t = "best peer"
		}
		b.WriteString(" milvus-lb vs " + t + " |")
	}
	b.WriteString("\n|---|---|")
	for range len(targets) + len(versus) {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
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
		for _, t := range versus {
			b.WriteString(" " + ratioCell(sum, ratios, f, t) + " |")
		}
		b.WriteString("\n")
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

// ratioCell is milvus-lb's median over t's (the best peer if t is ""), with the spread
// of the per-round ratios.
func ratioCell(sum []Result, ratios []Ratio, f figure, t string) string {
	lb, ok := lookup(sum, f.workload, MilvusLB)
	if !ok {
		return ""
	}
	var other float64
	if t == "" {
		name, best, ok := bestPeer(sum, f)
		if !ok {
			return ""
		}
		t, other = name, best
	} else if r, ok := lookup(sum, f.workload, t); ok {
		other = f.get(r)
	}
	if other == 0 {
		return ""
	}
	cell := fmt.Sprintf("%.2f×", f.get(lb)/other)
	var notes []string
	if !isBound(t) && t != Baseline {
		notes = append(notes, t)
	}
	if r, ok := findRatio(ratios, f.workload, f.name, t); ok && r.spread() != "" {
		notes = append(notes, r.spread())
	}
	if len(notes) > 0 {
		cell += " (" + strings.Join(notes, "; ") + ")"
	}
	return cell
}

// Goals checks the goals of the second performance round (issue 16) against the
// medians and says, one line each, whether each is met, with the spread of each ratio
// over the rounds: a goal met by the medians but not in every round is a goal met by
// this run, not by a margin the machine's noise cannot take away.
func Goals(sum []Result, ratios []Ratio) []string {
	c := &goalCheck{sum: sum, ratios: ratios}
	c.cached()
	c.against(Search, "calls/s", "", "calls/s ", &bound{"≥", 1.5, "×"})
	c.against(Search, "calls/s", TLSPipe, "", &bound{"≥", 0.95, "×"})
	c.against(Search, "calls/s", GoPipe, "", nil)
	c.against(Search, "p99", "", "p99 ", &bound{"<", 1, "×"})
	c.line("Search")
	c.against(Insert, "messages/s", TLSPipe, "messages/s ", &bound{"≥", 1, "×"})
	c.against(Insert, "messages/s", GoPipe, "", nil)
	c.against(Insert, "messages/s", "", "", &bound{">", 1, "×"})
	c.line("Insert")
	c.against(Big, "MB/s", "", "MB/s ", &bound{">", 1, "×"})
	if lb, ok := lookup(sum, Big, MilvusLB); ok {
		c.value(fmt.Sprintf("peak RSS %.1f MiB", lb.PeakMiB), lb.PeakMiB, bound{"≤", 48, " MiB"})
	}
	c.line("Big inserts")
	c.against(Many, "p99", "", "p99 ", &bound{"≤", 1, "×"})
	c.against(Many, "RSS", "", "RSS ", &bound{"≤", 1.2, "×"})
	c.line("Many clients")
	if lb, ok := lookup(sum, Idle, MilvusLB); ok {
		c.value(fmt.Sprintf("%.1f KiB each", lb.PerConnKiB), lb.PerConnKiB, bound{"≤", 20, " KiB"})
	}
	c.line("Idle connections")
	return c.out
}

// bound is a goal: a figure op x, x in unit.
type bound struct {
	op   string // ≥, >, ≤ or <
	x    float64
	unit string
}

func (b bound) met(v float64) bool {
	switch b.op {
	case "≥":
		return v >= b.x
	case ">":
		return v > b.x
	case "≤":
		return v <= b.x
	}
	return v < b.x
}

// check is the goal and whether v meets it, as the report words it.
func (b bound) check(v float64) string {
	mark := "**not met**"
	if b.met(v) {
		mark = "met"
	}
	return fmt.Sprintf("goal %s %s%s: %s", b.op, strconv.FormatFloat(b.x, 'f', -1, 64), b.unit, mark)
}

// goalCheck builds Goals' lines: parts for one workload, then its line.
type goalCheck struct {
	sum    []Result
	ratios []Ratio
	parts  []string
	out    []string
}

// against adds milvus-lb's figure against target t's (the best peer's for ""), with
// the ratio's spread over the rounds and its goal; b is nil for the pipe in Go, shown
// for reference, with no goal. Nothing if either was not measured.
func (c *goalCheck) against(workload, name, t, prefix string, b *bound) {
	f := figureOf(workload, name)
	lb, ok := lookup(c.sum, workload, MilvusLB)
	var other float64
	if t == "" {
		t, other, _ = bestPeer(c.sum, f)
	} else if o, found := lookup(c.sum, workload, t); found {
		other = f.get(o)
	}
	if !ok || other == 0 {
		return
	}
	r := f.get(lb) / other
	text := fmt.Sprintf("%s%.2f× %s's %s", prefix, r, t, num(other))
	if rr, ok := findRatio(c.ratios, workload, name, t); ok && rr.spread() != "" {
		text += " (" + rr.spread() + ")"
	}
	if b == nil {
		text += " (the pipe in Go; no goal)"
	} else {
		text += ", " + b.check(r)
	}
	c.parts = append(c.parts, text)
}

// value adds a figure of milvus-lb's own, text, and its goal.
func (c *goalCheck) value(text string, v float64, b bound) {
	c.parts = append(c.parts, text+", "+b.check(v))
}

// line ends the workload's parts as a line titled title, if it has any.
func (c *goalCheck) line(title string) {
	if len(c.parts) > 0 {
		c.out = append(c.out, title+": "+strings.Join(c.parts, "; "))
	}
	c.parts = nil
}

// cached adds the reply cache's lines: against milvus-lb's own uncached Search, and
// against the best peer's.
func (c *goalCheck) cached() {
	lb, ok := lookup(c.sum, SearchCached, MilvusLB)
	if !ok {
		return
	}
	if own, ok := lookup(c.sum, Search, MilvusLB); ok {
		r := lb.RPS / own.RPS
		c.out = append(c.out, fmt.Sprintf("Search, cached: %.2f× milvus-lb's own uncached calls/s, %s", r, bound{"≥", 1.8, "×"}.check(r)))
	}
	if name, best, ok := bestPeer(c.sum, figureOf(SearchCached, "calls/s")); ok {
		r := lb.RPS / best
		c.out = append(c.out, fmt.Sprintf("Search, cached: %.2f× the calls/s of the best peer (%s), %s", r, name, bound{"≥", 2.5, "×"}.check(r)))
	}
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
