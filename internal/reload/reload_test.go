package reload_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/gatewayapi"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/reload"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// manifest is the guide's setup, with the Ingress's rule pointing at Service service of
// namespace milvus (milvus-demo exists; any other name makes the set broken).
func manifest(t *testing.T, service string) ingress.Objects {
	t.Helper()
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "milvus-demo.milvus.io")
	c, err := certs.Import(certPEM, ca.CertPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	objs := testenv.GuideObjects(t, testenv.GuideSetup{Certificate: c, Endpoints: []string{"10.0.0.1:19530"},
		Annotations: map[string]string{ingress.AnnotationHealthCheckType: "none"}})
	objs.Ingresses[0].Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = service
	return objs
}

// recorder is what the pipeline reports to: the reload counter, ready and status.
type recorder struct {
	ok, failed, ready, status int
}

func (r *recorder) Reloaded(ok bool) {
	if ok {
		r.ok++
	} else {
		r.failed++
	}
}

func newPipeline(rec *recorder, gw reload.Gateway, rejectOnError bool) *reload.Pipeline {
	return reload.New(reload.Options{Gateway: gw, RejectOnError: rejectOnError, Metrics: rec,
		Ready:  func(*gateway.Snapshot) { rec.ready++ },
		Status: func(*config.Model, config.Problems) { rec.status++ },
	})
}

// Standalone: an edit with an error is refused whole, the previous generation keeps
// serving, and the refusal is kept (what, when, which generation serves) until a later
// edit is applied.
func TestRefusedReloadKeepsServing(t *testing.T) {
	ctx := context.Background()
	gw := gateway.New(balancer.NewRegistry(), nil, nil, nil)
	var rec recorder
	p := newPipeline(&rec, gw, true)

	if res := p.Reload(ctx, manifest(t, "milvus-demo"), nil); res.Err != nil || res.Snapshot.Generation != 1 {
		t.Fatalf("first reload: %v, snapshot %+v", res.Err, res.Snapshot)
	}
	if p.Rejected() != nil || rec.ok != 1 || rec.ready != 1 || rec.status != 1 {
		t.Fatalf("after an applied reload: rejected %+v, recorder %+v", p.Rejected(), rec)
	}

	before := time.Now()
	res := p.Reload(ctx, manifest(t, "milvus-demoo"), nil)
	if res.Err == nil || res.Snapshot != nil || gw.Current().Generation != 1 {
		t.Fatalf("a broken edit: err %v, snapshot %v, serving generation %d; want refused, 1 serving",
			res.Err, res.Snapshot, gw.Current().Generation)
	}
	rej := p.Rejected()
	if rej == nil || rej.Serving != 1 || rej.At.Before(before) || rej.Error != res.Err.Error() ||
		len(rej.Problems.Errors()) != 1 || !strings.Contains(rej.Problems[0].String(), "Service milvus/milvus-demoo not found") {
		t.Fatalf("rejection %+v, want the missing Service, generation 1 serving, stamped now", rej)
	}
	if rec.ok != 1 || rec.failed != 1 || rec.ready != 1 || rec.status != 1 {
		t.Errorf("after a refused reload: recorder %+v, want one failure counted and no status or ready call", rec)
	}

	if res := p.Reload(ctx, manifest(t, "milvus-demo"), nil); res.Err != nil || res.Snapshot.Generation != 2 {
		t.Fatalf("the mended edit: %v", res.Err)
	}
	if p.Rejected() != nil || rec.ready != 1 || rec.status != 2 {
		t.Errorf("after the mended edit: rejected %+v, recorder %+v; want no rejection, ready still once", p.Rejected(), rec)
	}
}

// A refusal is over once another generation serves, even in the moment between the
// gateway publishing it and the pipeline forgetting the refusal: a status read then
// must not show the new generation as the one kept after a rejected edit.
func TestRejectionEndsWithTheGenerationItKept(t *testing.T) {
	ctx := context.Background()
	gw := gateway.New(balancer.NewRegistry(), nil, nil, nil)
	var rec recorder
	p := newPipeline(&rec, gw, true)
	if res := p.Reload(ctx, manifest(t, "milvus-demo"), nil); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := p.Reload(ctx, manifest(t, "milvus-demoo"), nil); res.Err == nil || p.Rejected() == nil {
		t.Fatalf("a broken edit: %v, rejection %+v; want refused", res.Err, p.Rejected())
	}
	// What the pipeline does first when it applies, without the rest of it.
	model, problems := gatewayapi.TranslateAll(manifest(t, "milvus-demo"), ingress.Options{})
	if _, err := gw.Apply(ctx, model, problems); err != nil {
		t.Fatal(err)
	}
	if rej := p.Rejected(); rej != nil {
		t.Errorf("generation %d serves, and the rejection that kept generation %d is still reported", gw.Current().Generation, rej.Serving)
	}
}

// Controller: a broken Ingress loses its own routes and the rest is applied, with the
// problem kept in the snapshot.
func TestErrorsServeTheRestWithoutRejectOnError(t *testing.T) {
	gw := gateway.New(balancer.NewRegistry(), nil, nil, nil)
	var rec recorder
	p := newPipeline(&rec, gw, false)
	res := p.Reload(context.Background(), manifest(t, "milvus-demoo"), nil)
	if res.Err != nil || p.Rejected() != nil {
		t.Fatalf("reload: %v, rejected %+v; want applied", res.Err, p.Rejected())
	}
	snap := gw.Current()
	if snap.Generation != 1 || len(snap.Problems.Errors()) != 1 || len(snap.Model.Ingresses) != 1 || snap.Model.Ingresses[0].Served {
		t.Errorf("snapshot generation %d, problems %v, ingresses %+v; want the broken Ingress listed, not served",
			snap.Generation, snap.Problems, snap.Model.Ingresses)
	}
}

// refusing is a gateway that cannot serve anything, as when a port cannot be bound.
type refusing struct{ *gateway.Gateway }

func (refusing) Apply(context.Context, *config.Model, config.Problems) (*gateway.Snapshot, error) {
	return nil, errors.New("opening listeners: listen tcp :8080: bind: address already in use")
}

// A model the gateway refuses is a rejection too, in either mode.
func TestGatewayRefusalIsARejection(t *testing.T) {
	var rec recorder
	p := newPipeline(&rec, refusing{gateway.New(balancer.NewRegistry(), nil, nil, nil)}, false)
	res := p.Reload(context.Background(), manifest(t, "milvus-demo"), nil)
	if rej := p.Rejected(); res.Err == nil || rej == nil || !strings.Contains(rej.Error, "address already in use") || rej.Serving != 0 {
		t.Fatalf("reload: %v, rejection %+v; want the bind error, nothing serving", res.Err, rej)
	}
	if rec.failed != 1 || rec.ready != 0 {
		t.Errorf("recorder %+v, want one failure and no ready", rec)
	}
}
