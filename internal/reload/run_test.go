package reload_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/reload"
)

// sets is a source that applies its sets of objects in order, then waits for ctx (or
// fails with err, if set). ended is closed when its Run returns.
type sets struct {
	objs  []ingress.Objects
	err   error
	ended chan struct{}
}

func (s *sets) Run(ctx context.Context, apply func(ingress.Objects, config.Problems)) error {
	defer close(s.ended)
	for _, o := range s.objs {
		apply(o, nil)
	}
	if s.err != nil {
		return s.err
	}
	<-ctx.Done()
	return nil
}

func runAsync(ctx context.Context, p *reload.Pipeline, src reload.Source) <-chan error {
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, src) }()
	return done
}

func wait(t *testing.T, done <-chan error, src *sets) error {
	t.Helper()
	select {
	case err := <-done:
		select {
		case <-src.ended:
		default:
			t.Error("Run returned before the source's Run did")
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s")
		return nil
	}
}

// A balancer does not start on a first configuration it refuses: Run ends at once with
// the problems, whatever the source would do next.
func TestRunRefusesToStart(t *testing.T) {
	p := reload.New(reload.Options{Gateway: gateway.New(balancer.NewRegistry(), nil, nil, nil), RejectOnError: true})
	src := &sets{objs: []ingress.Objects{manifest(t, "milvus-demoo")}, ended: make(chan struct{})}
	err := wait(t, runAsync(context.Background(), p, src), src)
	start, ok := errors.AsType[*reload.StartError](err)
	if !ok || !strings.HasPrefix(err.Error(), "refusing to start: configuration has 1 error(s)") ||
		!strings.Contains(start.Result.Problems.Report(), "Service milvus/milvus-demoo not found") {
		t.Fatalf("Run = %v, want a StartError reporting the missing Service", err)
	}
}

// Once serving, a refused set does not stop the balancer; the end of ctx does, and is no
// error.
func TestRunServesUntilCanceled(t *testing.T) {
	gw := gateway.New(balancer.NewRegistry(), nil, nil, nil)
	p := reload.New(reload.Options{Gateway: gw, RejectOnError: true})
	src := &sets{objs: []ingress.Objects{manifest(t, "milvus-demo"), manifest(t, "milvus-demoo")}, ended: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(ctx, p, src)
	deadline := time.Now().Add(10 * time.Second)
	for p.Rejected() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the second set was never refused")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v after a refused reload while serving", err)
	default:
	}
	cancel()
	if err := wait(t, done, src); err != nil || gw.Current().Generation != 1 {
		t.Errorf("Run after cancel = %v, generation %d; want nil, 1", err, gw.Current().Generation)
	}
}

// A source that fails ends Run with its error.
func TestRunReturnsTheSourceError(t *testing.T) {
	p := reload.New(reload.Options{Gateway: gateway.New(balancer.NewRegistry(), nil, nil, nil)})
	src := &sets{objs: []ingress.Objects{manifest(t, "milvus-demo")}, err: errors.New("watch failed"), ended: make(chan struct{})}
	if err := wait(t, runAsync(context.Background(), p, src), src); err == nil || err.Error() != "watch failed" {
		t.Errorf("Run = %v, want the source's error", err)
	}
}
