package controller

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// defaultDrain is the most a drain waits for calls in flight with the default
// deregistration delay (deregistration_delay.timeout_seconds, 300 s).
const defaultDrain = 300

// checkRollout checks that a Deployment of milvus-lb is replaced without a failed call: a
// rolling update that never takes a serving replica away first (maxUnavailable 0), a
// readiness probe on the admin port's /readyz (which fails from SIGTERM on), a preStop
// sleep during which a deleted pod serves on while its endpoint's removal propagates, a
// grace period above that sleep plus the drain, and a PodDisruptionBudget.
func checkRollout(t *testing.T, which string, objs []runtime.Object) {
	t.Helper()
	var d *appsv1.Deployment
	var pdb *policyv1.PodDisruptionBudget
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			d = o
		case *policyv1.PodDisruptionBudget:
			pdb = o
		}
	}
	if d == nil || pdb == nil {
		t.Fatalf("%s: Deployment %v, PodDisruptionBudget %v; want both", which, d != nil, pdb != nil)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("%s: rolling update %+v, want maxUnavailable 0", which, ru)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 {
		t.Errorf("%s: PodDisruptionBudget minAvailable %v, want at least 1", which, pdb.Spec.MinAvailable)
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" || p.HTTPGet.Port.String() != "admin" {
		t.Errorf("%s: readiness probe %+v, want GET /readyz on the admin port", which, p)
	}
	var sleep int64
	if l := c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		sleep = l.PreStop.Sleep.Seconds
	}
	if sleep < 5 {
		t.Errorf("%s: preStop sleep %d s, want at least 5 s for the endpoint's removal to propagate", which, sleep)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g <= sleep+defaultDrain {
		t.Errorf("%s: terminationGracePeriodSeconds %v, want above the preStop sleep (%d s) plus the default drain (%d s)", which, g, sleep, defaultDrain)
	}
}
