package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/milvus-lb/milvus-lb/bench/internal/harness"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// liteSection is where the run's table goes in the Markdown file.
var liteSection = section{title: "With real parts: pymilvus and milvus-lite", tag: "bench:lite", command: "go run ./bench/cmd/bench -backend milvus-lite"}

// runLite runs the Search workloads (search, search-cached) with a real milvus-lite as
// the backend (harness.Lite), in an Env of its own, and writes their table into out,
// between the lite markers: what the reply cache gives when a relayed Search costs what
// a search of real data costs, where the fake backend's costs microseconds.
func runLite(ctx context.Context, cfg harness.Config, params harness.Params, plan harness.Plan, rows int, root, out string) error {
	for _, w := range plan.Workloads {
		if w != harness.Search && w != harness.SearchCached {
			return fmt.Errorf("-backend milvus-lite runs %s and %s only, not %s", harness.Search, harness.SearchCached, w)
		}
	}
	cfg.Lite = &harness.Lite{Python: filepath.Join(testenv.CacheDir(), "venv", "bin", "python"),
		Script: filepath.Join(root, "test", "clients", "milvus_lite_server.py"), Rows: rows}
	if _, err := os.Stat(cfg.Lite.Python); err != nil {
		return fmt.Errorf("no milvus-lite venv (scripts/setup.sh makes it): %w", err)
	}
	cfg.Dir = filepath.Join(cfg.Dir, "lite")
	cfg.Peers = slices.DeleteFunc(slices.Clone(cfg.Peers), func(p string) bool { return p == harness.TLSPipe })
	cfg.BackendPprof = false // milvus-lite is no Go process
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return err
	}
	m := harness.DescribeMachine(cfg.Peers)
	start := time.Now()
	table, err := tableOf(ctx, cfg, params, plan)
	if err != nil {
		return fmt.Errorf("milvus-lite backend: %w", err)
	}

	var b strings.Builder
	b.WriteString(runLine(m, start))
	fmt.Fprintf(&b, "The backend: one milvus-lite server (Python, faiss), collection of %d rows of %d-dim float vectors, AUTOINDEX (HNSW) with COSINE, flushed and loaded; every target's every Search is checked to be its reply to the workload's vector, byte for byte. "+
		"%d callers over %d connections, %v measured after %v of warm-up; search asks for the collection's default level (milvus-lb relays it), search-cached for Eventually (milvus-lb answers it from its cache, the others relay it). Medians of %d interleaved rounds.\n\n",
		rows, harness.Dim, params.SearchCallers, params.SearchConns, params.Duration, params.Warmup, plan.Rounds)
	b.WriteString(table)
	fmt.Print(b.String())
	return liteSection.write(out, b.String())
}
