// Package reload is the one path from a set of Kubernetes objects to the configuration
// milvus-lb serves. Every set goes through the same steps, in this order:
//
//  1. translation (gatewayapi.TranslateAll: ingress.Translate and gatewayapi.Translate,
//     pure) into a model and problems;
//  2. the source's problems (files that do not parse) merged with translation's, sorted;
//  3. every problem logged;
//  4. refusal when the set has errors and the pipeline rejects on errors (serve: an edit is
//     all or nothing), or when the gateway cannot serve the model; the previous
//     configuration keeps serving and the rejection is kept for the status page;
//  5. otherwise the gateway applies it (compile, open ports, swap the snapshot);
//  6. the reload counter;
//  7. ready, once, after the first configuration applied;
//  8. the status callback (the controller writes Ingress status; `get ingress` reads the
//     gateway's snapshot, which step 5 has swapped in).
//
// `milvus-lb serve`, `milvus-lb controller`, `milvus-lb validate` (with a gateway that
// opens no port) and the in-process test harness (internal/testkit/lbtest) all use it.
package reload

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/gatewayapi"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
)

// Gateway serves models: *gateway.Gateway.
type Gateway interface {
	Apply(ctx context.Context, m *config.Model, problems config.Problems) (*gateway.Snapshot, error)
	Current() *gateway.Snapshot
}

// Counter counts reloads by outcome: *admin.Metrics.
type Counter interface {
	Reloaded(ok bool)
}

// Options configure a Pipeline. Gateway is required; the rest may be zero.
type Options struct {
	Gateway Gateway
	// Translate selects the IngressClasses served (and how annotation files are read).
	Translate ingress.Options
	// RejectOnError keeps the previous configuration whole when a new one has any error
	// (file mode: an edit is all or nothing). Without it, a broken Ingress only loses its
	// own routes (controller mode: one team's mistake must not stall the others).
	RejectOnError bool
	Metrics       Counter
	Log           *slog.Logger // nil: nothing is logged
	// Ready is called once, after the first configuration is applied.
	Ready func(*gateway.Snapshot)
	// Status is called after every applied configuration, with its model and problems.
	Status func(*config.Model, config.Problems)
}

// Result is what one reload did.
type Result struct {
	Model    *config.Model
	Problems config.Problems // the source's and translation's, sorted
	// Snapshot is the configuration now serving; nil when the reload was refused.
	Snapshot *gateway.Snapshot
	Err      error // why the reload was refused; nil when it was applied
}

// Rejection describes the last refused reload, for the status page and API.
type Rejection struct {
	At       time.Time       `json:"at"`
	Error    string          `json:"error"`
	Problems config.Problems `json:"problems"`
	// Serving is the generation that keeps serving instead; 0 when none ever did.
	Serving uint64 `json:"servingGeneration"`
}

// Pipeline runs reloads one at a time. Reload and Run may be called from any goroutine;
// Rejected from any goroutine at any time.
type Pipeline struct {
	opts     Options
	log      *slog.Logger
	mu       sync.Mutex // serializes reloads
	served   atomic.Bool
	rejected atomic.Pointer[Rejection]
}

// New returns a pipeline that applies to o.Gateway.
func New(o Options) *Pipeline {
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Pipeline{opts: o, log: log}
}

// Rejected returns the last refused reload, or nil if the last reload was applied (or
// none was refused yet). A refusal is over as soon as another generation serves: the
// gateway publishes an applied snapshot before the pipeline forgets the refusal, and a
// status read between the two would show the new generation still "keeping" the old.
func (p *Pipeline) Rejected() *Rejection {
	if rej := p.rejected.Load(); rej != nil && p.opts.Gateway.Current().Generation == rej.Serving {
		return rej
	}
	return nil
}

// Reload takes one set of objects, with the problems its source found reading them,
// through every step of the pipeline.
func (p *Pipeline) Reload(ctx context.Context, objs ingress.Objects, srcProblems config.Problems) Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	model, problems := gatewayapi.TranslateAll(objs, p.opts.Translate)
	all := append(slices.Clone(srcProblems), problems...)
	all.Sort()
	for _, pr := range all {
		lvl := slog.LevelWarn
		if pr.Severity == config.Error {
			lvl = slog.LevelError
		}
		p.log.Log(ctx, lvl, "configuration problem", "problem", pr.String())
	}
	res := Result{Model: model, Problems: all}
	if errs := all.Errors(); p.opts.RejectOnError && len(errs) > 0 {
		res.Err = fmt.Errorf("configuration has %d error(s)", len(errs))
	} else {
		res.Snapshot, res.Err = p.opts.Gateway.Apply(ctx, model, all)
	}
	if res.Err != nil {
		p.refused(res)
	} else {
		p.applied(res)
	}
	return res
}

func (p *Pipeline) refused(res Result) {
	p.count(false)
	rej := &Rejection{At: time.Now(), Error: res.Err.Error(), Problems: res.Problems,
		Serving: p.opts.Gateway.Current().Generation}
	if rej.Problems == nil {
		rej.Problems = config.Problems{} // a list in JSON, as the status's own problems
	}
	p.rejected.Store(rej)
	if p.served.Load() {
		p.log.Error("configuration rejected; the previous one keeps serving", "error", res.Err)
	}
}

func (p *Pipeline) applied(res Result) {
	p.count(true)
	p.rejected.Store(nil)
	snap := res.Snapshot
	errs := len(res.Problems.Errors())
	ports := make([]int, 0, len(snap.Listeners))
	for port := range snap.Listeners {
		ports = append(ports, port)
	}
	slices.Sort(ports)
	p.log.Info("configuration applied", "generation", snap.Generation, "listeners", ports,
		"backends", len(snap.Backends), "warnings", len(res.Problems)-errs, "errors", errs)
	if !p.served.Swap(true) && p.opts.Ready != nil {
		p.opts.Ready(snap)
	}
	if p.opts.Status != nil {
		p.opts.Status(res.Model, res.Problems)
	}
}

func (p *Pipeline) count(ok bool) {
	if p.opts.Metrics != nil {
		p.opts.Metrics.Reloaded(ok)
	}
}
