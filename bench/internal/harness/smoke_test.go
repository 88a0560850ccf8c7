package harness

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

func TestMain(m *testing.M) {
	MaybeChild()
	os.Exit(m.Run())
}

// buildMilvusLB builds the balancer from this tree, as the benchmark does.
func buildMilvusLB(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "milvus-lb")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/milvus-lb/milvus-lb/cmd/milvus-lb").CombinedOutput()
	if err != nil {
		t.Fatalf("go build milvus-lb: %v\n%s", err, out)
	}
	return bin
}

// TestSmoke runs every workload, tiny, through every target: the backend directly,
// milvus-lb, the three peers (installed by scripts/setup.sh; missing ones fail the test)
// and the two pipe bounds (search and insert only). It asserts that every call succeeds
// with the expected reply (the workloads check each reply and fail on the first bad one)
// and that every figure was measured; nothing about speed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts seven servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := Start(ctx, Config{Dir: t.TempDir(), LB: buildMilvusLB(t), Peers: append(slices.Clone(AllPeers), Bounds...), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if len(env.Targets) != 7 {
		t.Fatalf("%d targets started, want 7", len(env.Targets))
	}
	r := NewRunner(SmokeParams())
	r.Logf = t.Logf
	results, err := r.RunPlan(ctx, env, Plan{Workloads: AllWorkloads, Rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, w := range AllWorkloads {
		for _, t0 := range env.Targets {
			if measures(w, t0.Name) {
				want++
			}
		}
	}
	if want != len(AllWorkloads)*5+2*len(Bounds) {
		t.Fatalf("the plan measures %d workloads and targets, want %d", want, len(AllWorkloads)*5+2*len(Bounds))
	}
	if len(results) != want {
		t.Fatalf("%d results, want %d", len(results), want)
	}
	for _, res := range results {
		var missing string
		switch {
		case res.Calls == 0:
			missing = "calls"
		case (res.Workload == Search || res.Workload == Many) && res.P99ms <= 0:
			missing = "p99"
		case (res.Workload == Insert || res.Workload == Big) && res.MBps <= 0:
			missing = "throughput"
		case res.Workload == Big && res.PeakMiB <= 0:
			missing = "peak RSS"
		case (res.Workload == Many || res.Workload == Idle) && res.RSSMiB <= 0:
			missing = "RSS"
		}
		if missing != "" {
			t.Errorf("%s: no %s measured", res, missing)
		}
	}
	for _, t0 := range env.Targets {
		if t0.proc.exited() {
			t.Errorf("%s exited during the run: %v\n%s", t0.Name, t0.proc.err, t0.proc.tail())
		}
		// Like with like: every balancer negotiates the same TLS with the load generator
		// (milvus-lb TLS 1.3 by the bench Ingress's ssl-policy, BenchSSLPolicy; HAProxy
		// AES-128-GCM by its configuration), so that none pays more for its cipher.
		if want := env.Target(MilvusLB).TLSState; t0.TLS && t0.TLSState != want {
			t.Errorf("%s negotiated %q, milvus-lb %q", t0.Name, t0.TLSState, want)
		}
	}
	if got := env.Target(MilvusLB).TLSState; !strings.HasPrefix(got, "TLS 1.3,") {
		t.Errorf("milvus-lb negotiated %q, want TLS 1.3", got)
	}
}

// TestMixedSmoke runs the mixed workload, tiny, through the first of two backends
// directly, milvus-lb and the three peers in front of both: Searches alone, then while
// inserts stream. It asserts that every call succeeds, that both phases and the inserts
// were measured, and that the backends marked the Searches that overlapped an insert
// (direct sends everything to one backend, so some did); nothing about speed.
func TestMixedSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts seven servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := Start(ctx, Config{Dir: t.TempDir(), LB: buildMilvusLB(t), Peers: AllPeers, Backends: 2, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	r := NewRunner(SmokeParams())
	r.Logf = t.Logf
	results, err := r.RunPlan(ctx, env, Plan{Workloads: []string{Mixed}, Rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(AllPeers)+2 {
		t.Fatalf("%d results, want %d", len(results), len(AllPeers)+2)
	}
	for _, res := range results {
		if res.Calls == 0 || res.P99ms <= 0 || res.AloneP99ms <= 0 {
			t.Errorf("%s: a figure was not measured", res)
		}
		// A 2 MiB insert may outlast the smoke's 350 ms window on a busy machine (CI saw
		// it once): then the backend marked Searches beside it, which shows it went.
		if res.MBps <= 0 && res.BusyPct == 0 {
			t.Errorf("%s: no insert finished and none was in flight beside a Search", res)
		}
		if res.Target == Direct && res.BusyPct == 0 {
			t.Errorf("%s: no Search was marked as overlapping an insert", res)
		}
	}
}

// TestLiteSmoke runs search and search-cached, tiny, with a real milvus-lite as the
// backend (Config.Lite, `bench -backend milvus-lite`): directly, through milvus-lb and
// the three peers. Every reply is compared with milvus-lite's own answer byte for byte;
// milvus-lb must answer search-cached from its cache (the backend's CPU per call far
// below a relayed search's). Nothing about speed.
func TestLiteSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts milvus-lite and four balancers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	lite := &Lite{Python: testenv.Python(t), Script: filepath.Join(testenv.Root(t), "test", "clients", "milvus_lite_server.py"), Rows: 200}
	env, err := Start(ctx, Config{Dir: t.TempDir(), LB: buildMilvusLB(t), Peers: AllPeers, Lite: lite, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if len(env.SearchReply) == 0 {
		t.Fatal("no reply of milvus-lite to compare with")
	}
	r := NewRunner(SmokeParams())
	r.Logf, r.SearchReply = t.Logf, env.SearchReply
	results, err := r.RunPlan(ctx, env, Plan{Workloads: []string{Search, SearchCached}, Rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2*(len(AllPeers)+2) {
		t.Fatalf("%d results, want %d", len(results), 2*(len(AllPeers)+2))
	}
	var relayed, cached Result
	for _, res := range results {
		if res.Calls == 0 || res.P99ms <= 0 {
			t.Errorf("%s: a figure was not measured", res)
		}
		if res.Target == MilvusLB && res.Workload == Search {
			relayed = res
		} else if res.Target == MilvusLB {
			cached = res
		}
	}
	// The backend's CPU in the window over the calls: hits cost it nothing.
	if cached.BackendCPUus*10 > relayed.BackendCPUus {
		t.Errorf("milvus-lite spent %.0f µs per search-cached call through milvus-lb and %.0f µs per relayed one: the cache did not answer",
			cached.BackendCPUus, relayed.BackendCPUus)
	}
}
