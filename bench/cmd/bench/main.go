// Command bench measures milvus-lb against nginx, HAProxy and Caddy in front of the same
// fake Milvus backend, and the backend directly as the limit, with the workloads of
// docs/benchmarks.md; it writes the results into docs/benchmarks.md (between its
// generated-results markers), docs/benchmarks.json and docs/benchmarks.png.
//
//	go run ./bench/cmd/bench            # the full run, about 15 minutes
//	go run ./bench/cmd/bench -quick     # smaller and shorter, about 3 minutes
//	go run ./bench/cmd/bench -workloads search,insert -peers haproxy -pprof /tmp/prof
//
// Run it on a quiet machine: it starts every process on this host and they share the
// CPUs. Any failed call fails the run.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/milvus-lb/milvus-lb/bench/internal/harness"
)

func main() {
	harness.MaybeChild()
	log.SetFlags(log.Ltime)
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// options are the command line's.
type options struct {
	quick, bound, keep, noCache              bool
	rounds, idleRounds, liteRows             int
	duration                                 time.Duration
	workloads, peers, lbEnv, annotations     []string
	lb, baseline, backend                    string
	out, jsonOut, pngOut, pprofDir, plotFrom string
}

func parseFlags() *options {
	var o options
	var workloads, peers, lbEnv, annotations string
	flag.BoolVar(&o.quick, "quick", false, "smaller, shorter workloads for a first look")
	flag.IntVar(&o.rounds, "rounds", 0, "rounds of each workload (default 3, or 2 with -quick)")
	flag.IntVar(&o.idleRounds, "idle-rounds", 1, "rounds of the idle workload (each long; its spread is what the machine makes of the collector's timing)")
	flag.StringVar(&workloads, "workloads", strings.Join(harness.AllWorkloads, ","), "workloads to run, comma-separated; \"chaos\" and \"mirror\" (not among the defaults) run milvus-lb alone through backend faults (chaos.go) and with a mirror healthy, slow or down (mirror.go); \"mixed\" (neither) Searches while 32 MiB inserts stream, in front of two backends (mixed.go)")
	flag.StringVar(&peers, "peers", strings.Join(harness.AllPeers, ","), "peers to compare with, comma-separated (\"\" for none)")
	flag.BoolVar(&o.bound, "bound", true, "also measure search and insert through the bounds: tls-pipe, HAProxy as a TLS-terminating TCP pipe (no HTTP/2 work, the least a balancer that terminates TLS pays here), and go-pipe, the same pipe in Go (what a Go balancer pays; not peers: no peer goal is measured against them)")
	flag.StringVar(&o.lb, "lb", "", "milvus-lb binary (default: build ./cmd/milvus-lb)")
	flag.StringVar(&o.baseline, "baseline", "", "another milvus-lb binary to measure beside it, as target \"baseline\" (a change against the commit before it)")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "Markdown file whose generated-results section is rewritten (\"\" for none)")
	flag.StringVar(&o.jsonOut, "json", "", "results as JSON (default: beside -out, .json)")
	flag.StringVar(&o.pngOut, "png", "", "plot (default: beside -out, .png; \"-\" for none)")
	flag.StringVar(&o.pprofDir, "pprof", "", "save milvus-lb's CPU, allocation, mutex and block profiles of each workload here, and the backend's and the load generator's CPU profiles with each target")
	flag.BoolVar(&o.keep, "keep", false, "keep the run directory (configurations, logs)")
	flag.DurationVar(&o.duration, "duration", 0, "measured window of search and insert (default 10s, or 3s with -quick)")
	flag.StringVar(&o.plotFrom, "plot", "", "redraw the plot (-png) of the run saved in this JSON file and do nothing else")
	flag.StringVar(&lbEnv, "lb-env", "", "environment for milvus-lb (and the baseline), comma-separated KEY=VALUE (GOGC=200,GOMAXPROCS=1)")
	flag.BoolVar(&o.noCache, "no-cache", false, "leave milvus-lb.io/cache off milvus-lb's Ingress (search-cached then measures a relayed Search)")
	flag.StringVar(&o.backend, "backend", "fake", "the backend: \"fake\" (bench/internal/backend, answers in microseconds) or \"milvus-lite\" (a real milvus-lite server, for search and search-cached only; lite.go)")
	flag.IntVar(&o.liteRows, "lite-rows", 20000, "-backend milvus-lite: rows of 768-dim vectors in the searched collection")
	flag.StringVar(&annotations, "lb-annotations", "", "annotations on milvus-lb's Ingress, not the baseline's, ';'-separated \"key: value\"; an alb.ingress.kubernetes.io/actions.NAME gets a rule path before the default one (with -baseline set to the same binary: what a route costs)")
	flag.Parse()
	o.workloads, o.peers, o.lbEnv, o.annotations = split(workloads), split(peers), split(lbEnv), splitOn(annotations, ";")
	if o.bound {
		for _, b := range harness.Bounds {
			if !slices.Contains(o.peers, b) {
				o.peers = append(o.peers, b)
			}
		}
	}
	return &o
}

// resolvePaths makes the output paths absolute (relative ones are the module root's),
// puts the JSON and the plot beside -out unless given, and makes their directories and
// -pprof's.
func (o *options) resolvePaths(root string) error {
	resolve := func(p string) string {
		if p == "" || p == "-" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	o.out = resolve(o.out)
	if o.out != "" {
		base := strings.TrimSuffix(o.out, filepath.Ext(o.out))
		if o.jsonOut == "" {
			o.jsonOut = base + ".json"
		}
		if o.pngOut == "" {
			o.pngOut = base + ".png"
		}
	}
	o.jsonOut, o.pngOut, o.plotFrom = resolve(o.jsonOut), resolve(o.pngOut), resolve(o.plotFrom)
	dirs := []string{o.pprofDir}
	for _, f := range []string{o.out, o.jsonOut, o.pngOut} {
		if f != "" && f != "-" {
			dirs = append(dirs, filepath.Dir(f))
		}
	}
	for _, d := range dirs {
		if d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

// plan sizes the workloads and their rounds.
func (o *options) plan() (harness.Params, harness.Plan) {
	params, plan := harness.FullParams(), harness.Plan{Rounds: 3, IdleRounds: max(1, o.idleRounds), Workloads: o.workloads}
	if o.quick {
		params, plan.Rounds = harness.QuickParams(), 2
	}
	if o.rounds > 0 {
		plan.Rounds = o.rounds
	}
	if o.duration > 0 {
		params.Duration = o.duration
	}
	return params, plan
}

func run() error {
	o := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if err := o.resolvePaths(root); err != nil {
		return err
	}
	if o.plotFrom != "" {
		if o.pngOut == "" || o.pngOut == "-" {
			return errors.New("-plot needs a plot to draw (-png, or -out beside which it goes)")
		}
		return replot(ctx, root, o.plotFrom, o.pngOut)
	}
	dir, err := os.MkdirTemp("", "milvus-lb-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		log.Printf("run directory %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.lb == "" {
		if o.lb, err = buildLB(ctx, root, dir); err != nil {
			return err
		}
	}
	params, plan := o.plan()
	lbEnv := o.lbEnv
	if o.pprofDir != "" {
		lbEnv = append(lbEnv, harness.ProfileEnv...)
	}
	cfg := harness.Config{Dir: dir, LB: o.lb, Baseline: o.baseline, LBEnv: lbEnv, LBAnnotations: o.annotations, NoCache: o.noCache, BackendPprof: o.pprofDir != "", Peers: o.peers, Logf: log.Printf}
	return runPlan(ctx, o, cfg, params, plan, root)
}

// runPlan runs the workloads that are runs of their own (mirror, chaos; milvus-lite's;
// mixed), each taken out of the plan, and then the rest side by side.
func runPlan(ctx context.Context, o *options, cfg harness.Config, params harness.Params, plan harness.Plan, root string) error {
	if take(&plan, harness.Mirror) {
		if err := runMirror(ctx, cfg.Dir, o.lb, o.out, o.quick, o.duration, o.rounds); err != nil || len(plan.Workloads) == 0 {
			return err
		}
	}
	if take(&plan, harness.Chaos) {
		if err := runChaos(ctx, cfg.Dir, o.lb, o.out, o.quick, o.duration); err != nil || len(plan.Workloads) == 0 {
			return err
		}
	}
	switch o.backend {
	case "milvus-lite":
		if !flagSet("workloads") {
			plan.Workloads = []string{harness.Search, harness.SearchCached}
		}
		return runLite(ctx, cfg, params, plan, o.liteRows, root, o.out)
	case "fake":
	default:
		return fmt.Errorf("-backend %q: want fake or milvus-lite", o.backend)
	}
	if take(&plan, harness.Mixed) {
		if err := runMixed(ctx, cfg, params, plan.Rounds, o.out); err != nil || len(plan.Workloads) == 0 {
			return err
		}
	}
	saved, table, goals, err := measure(ctx, cfg, params, plan, o.pprofDir)
	if err != nil {
		return err
	}
	return o.write(ctx, root, saved, table, goals)
}

// take removes workload w from the plan and says whether it was in it.
func take(plan *harness.Plan, w string) bool {
	n := len(plan.Workloads)
	plan.Workloads = slices.DeleteFunc(plan.Workloads, func(x string) bool { return x == w })
	return len(plan.Workloads) < n
}

// buildLB builds milvus-lb into the run directory.
func buildLB(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "bin", "milvus-lb")
	log.Printf("building milvus-lb")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/milvus-lb")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build milvus-lb: %w", err)
	}
	return bin, nil
}

// measure runs the plan's workloads through every target, interleaved, and prints the
// table and the goals.
func measure(ctx context.Context, cfg harness.Config, params harness.Params, plan harness.Plan, pprofDir string) (savedRun, string, []string, error) {
	machine := harness.DescribeMachine(cfg.Peers)
	log.Printf("load average before: %s on %d cores", machine.LoadBefore, machine.Cores)
	start := time.Now()
	env, err := harness.Start(ctx, cfg)
	if err != nil {
		return savedRun{}, "", nil, err
	}
	defer env.Close()
	for _, t := range env.Targets {
		if t.TLSState != "" {
			machine.TLS = append(machine.TLS, t.Name+": "+t.TLSState)
		}
	}
	runner := harness.NewRunner(params)
	runner.Logf = log.Printf
	if pprofDir != "" {
		runner.Profile = harness.PprofCapture(pprofDir, log.Printf)
	}
	s, i, b := runner.MessageSizes()
	log.Printf("messages: search %d B, insert %d B, big insert %d B", s, i, b)
	results, err := runner.RunPlan(ctx, env, plan)
	if err != nil {
		return savedRun{}, "", nil, fmt.Errorf("run failed: %w", err)
	}
	machine.LoadAfter = harness.LoadAverage()
	machine.Minutes = time.Since(start).Minutes()
	env.Close()

	sum := harness.Summary(results)
	ratios := harness.Ratios(results, sum)
	saved := savedRun{Machine: machine, Params: params, Plan: plan, Summary: sum, Ratios: ratios, Results: results}
	table, goals := harness.Table(sum, ratios, saved.targets()), harness.Goals(sum, ratios)
	fmt.Println(table)
	for _, g := range goals {
		fmt.Println("- " + g)
	}
	log.Printf("load average after: %s", machine.LoadAfter)
	return saved, table, goals, nil
}

// write saves the run as JSON, draws its plot and rewrites the results section of -out,
// each where asked.
func (o *options) write(ctx context.Context, root string, saved savedRun, table string, goals []string) error {
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(saved, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.pngOut != "" && o.pngOut != "-" {
		if err := plot(ctx, root, saved, o.pngOut); err != nil {
			return err
		}
	}
	if o.out == "" {
		return nil
	}
	return resultsSection.write(o.out, report(saved.Machine, saved.Params, saved.Plan, o.quick, table, goals, o.pngOut, o.out))
}

// savedRun is what a run writes to its JSON file, and what -plot reads back.
type savedRun struct {
	Machine harness.Machine  `json:"machine"`
	Params  harness.Params   `json:"params"`
	Plan    harness.Plan     `json:"plan"`
	Summary []harness.Result `json:"summary"`
	// Ratios are milvus-lb's figures over the best peer's, the bound's and the
	// baseline's, round by round, with their median and spread.
	Ratios  []harness.Ratio  `json:"ratios"`
	Results []harness.Result `json:"results"`
}

// targets are the run's targets in the order they ran.
func (r savedRun) targets() []string {
	var out []string
	for _, res := range r.Results {
		if !slices.Contains(out, res.Target) {
			out = append(out, res.Target)
		}
	}
	return out
}

// plot draws the run's figures into png with bench/plot.
func plot(ctx context.Context, root string, run savedRun, png string) error {
	chart, err := harness.Chart(fmt.Sprintf("milvus-lb and peers in front of a fake Milvus, %d cores (medians of %d rounds)", run.Machine.Cores, run.Plan.Rounds), run.Summary, run.targets())
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "run", ".", "-out", png)
	cmd.Dir, cmd.Stdin, cmd.Stdout, cmd.Stderr = filepath.Join(root, "bench", "plot"), bytes.NewReader(chart), os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// replot redraws the plot of a saved run (its JSON) without running anything.
func replot(ctx context.Context, root, from, png string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var run savedRun
	if err := json.Unmarshal(b, &run); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	if len(run.Results) == 0 {
		return fmt.Errorf("%s: no results", from)
	}
	return plot(ctx, root, run, png)
}

func split(s string) []string { return splitOn(s, ",") }

// flagSet says whether the command line set the flag called name.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// splitOn splits s at sep, trimming each part and leaving out empty ones.
func splitOn(s, sep string) []string {
	var out []string
	for _, f := range strings.Split(s, sep) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(b))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run bench from inside the milvus-lb module")
	}
	return filepath.Dir(mod), nil
}

// commandLine is how this run was started, as a reader would type it.
func commandLine() string {
	return strings.Join(append([]string{"go run ./bench/cmd/bench"}, os.Args[1:]...), " ")
}

func report(m harness.Machine, p harness.Params, plan harness.Plan, quick bool, table string, goals []string, png, out string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Command: `%s` (%s, %.0f minutes).\n\n", commandLine(), m.Started, m.Minutes)
	fmt.Fprintf(&b, "Machine: %s, %d cores, %.0f GiB, Linux %s, %s; %s. ", m.CPU, m.Cores, m.MemoryGiB, m.Kernel, m.Go, strings.Join(m.Versions, ", "))
	fmt.Fprintf(&b, "Load average before the run %s, after %s (the load generator, the backend and the balancers share these cores).\n\n", m.LoadBefore, m.LoadAfter)
	if len(m.TLS) > 0 {
		fmt.Fprintf(&b, "TLS as negotiated by the load generator (Go's defaults, ALPN h2): %s.\n\n", strings.Join(m.TLS, "; "))
	}
	mode := "full"
	if quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "Workloads (%s): Search %d callers over %d connections; Insert %d rows × %d dims, %d callers over %d connections; ",
		mode, p.SearchCallers, p.SearchConns, p.InsertRows, harness.Dim, p.InsertCallers, p.InsertConns)
	fmt.Fprintf(&b, "big insert %d concurrent × %d rows (%.0f MiB) × %d each; many clients %d connections × 1 Search/s for %v; idle %d connections held %v. ",
		p.BigCallers, p.BigRows, float64(p.BigRows*(4*harness.Dim+2))/(1<<20), p.BigPerCaller, p.ManyConns, p.ManyDuration, p.IdleConns, p.IdleHold)
	fmt.Fprintf(&b, "Search and Insert: %v measured after %v warm-up. Medians of %d interleaved rounds, each starting one target later (idle: %d); ", p.Duration, p.Warmup, plan.Rounds, plan.IdleRounds)
	b.WriteString("each ratio is the ratio of the medians, then the lowest and highest ratio of the same round's two figures: a ratio whose rounds straddle 1.00 is within the noise.\n\n")
	b.WriteString(table)
	b.WriteString("\nGoals:\n\n")
	for _, g := range goals {
		b.WriteString("- " + g + "\n")
	}
	if png != "" && png != "-" {
		rel, err := filepath.Rel(filepath.Dir(out), png)
		if err != nil {
			rel = png
		}
		fmt.Fprintf(&b, "\n![benchmark figures](%s)\n", rel)
	}
	return b.String()
}
