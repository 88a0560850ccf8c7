package controller

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/milvus-lb/milvus-lb/internal/testkit/kubetest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// helmVersion is what scripts/test.d/21-helm.sh builds.
const helmVersion = "v3.22.0"

func helmPath(t *testing.T) string {
	t.Helper()
	p := filepath.Join(testenv.CacheDir(), "bin", "helm-"+helmVersion)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("helm %s not found at %s: run scripts/test.d/21-helm.sh", helmVersion, p)
	}
	return p
}

// TestHelmChart renders deploy/helm/milvus-lb as `helm install -n milvus-lb-system` would,
// checks that it lints, that a real API server accepts every object without a warning,
// and that it says what the plain manifests of deploy/ say.
func TestHelmChart(t *testing.T) {
	helm := helmPath(t)
	root := repoRoot(t)
	chart := filepath.Join(root, "deploy", "helm", "milvus-lb")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := func(args ...string) string {
		t.Helper()
		c := exec.CommandContext(ctx, helm, args...)
		// Helm keeps state in $HOME; keep it out of the user's.
		home := t.TempDir()
		c.Env = append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_DATA_HOME="+home)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("lint", "--strict", chart)
	rendered := run("template", "milvus-lb", chart, "--namespace", "milvus-lb-system")

	cluster := kubetest.Start(t)
	path := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(path, []byte(rendered), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := cluster.Kubectl(ctx, "apply", "-f", filepath.Join(root, "deploy", "00-namespace.yaml")); err != nil {
		t.Fatal(err, out)
	}
	out, err := cluster.Kubectl(ctx, "apply", "-f", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl apply -f <(helm template ...):\n%s", out)
	if strings.Contains(out, "Warning") {
		t.Errorf("the API server warned about the chart's objects:\n%s", out)
	}

	chartObjs := decodeAll(t, rendered)
	var plain strings.Builder
	for _, f := range []string{"10-rbac.yaml", "20-ingressclass.yaml", "30-deployment.yaml", "40-pdb.yaml", "50-service.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, "deploy", f))
		if err != nil {
			t.Fatal(err)
		}
		plain.WriteString("---\n")
		plain.Write(b)
	}
	plainObjs := decodeAll(t, plain.String())

	if got, want := kinds(chartObjs), kinds(plainObjs); !slices.Equal(got, want) {
		t.Errorf("chart objects %v\nplain objects %v", got, want)
	}
	// The RBAC that the controller's tests prove sufficient must be the chart's too.
	if got, want := clusterRoleRules(t, chartObjs), clusterRoleRules(t, plainObjs); !slices.Equal(got, want) {
		t.Errorf("ClusterRole rules differ:\nchart %v\nplain %v", got, want)
	}
	// A replica goes without failing a call: both say how (rollout.go's checks).
	checkRollout(t, "chart", chartObjs)
	checkRollout(t, "deploy/", plainObjs)
	// Same flags, but for --service-name, which the chart sets for its release name.
	if got, want := controllerArgs(t, chartObjs), controllerArgs(t, plainObjs); !slices.Equal(got, want) {
		t.Errorf("controller args differ:\nchart %v\nplain %v", got, want)
	}
	// extraEnv adds to the container's environment (docs/operations.md: GOMAXPROCS).
	withEnv := decodeAll(t, run("template", "milvus-lb", chart, "--namespace", "milvus-lb-system",
		"--set-json", `extraEnv=[{"name":"GOMAXPROCS","value":"1"}]`))
	if got, want := controllerEnv(t, withEnv), append(controllerEnv(t, chartObjs), "GOMAXPROCS=1"); !slices.Equal(got, want) {
		t.Errorf("with extraEnv, the environment is %v, want %v", got, want)
	}
}

// controllerEnv is the controller container's environment, NAME=value (NAME= for a
// valueFrom), in order.
func controllerEnv(t *testing.T, objs []runtime.Object) []string {
	t.Helper()
	var out []string
	for _, e := range controller(t, objs).Env {
		out = append(out, e.Name+"="+e.Value)
	}
	return out
}

// controller is the Deployment's container.
func controller(t *testing.T, objs []runtime.Object) corev1.Container {
	t.Helper()
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok {
			return d.Spec.Template.Spec.Containers[0]
		}
	}
	t.Fatal("no Deployment")
	return corev1.Container{}
}

func decodeAll(t *testing.T, yamlDocs string) []runtime.Object {
	t.Helper()
	var out []runtime.Object
	for _, doc := range strings.Split(yamlDocs, "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("decode %q: %v", doc, err)
		}
		out = append(out, obj)
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func kinds(objs []runtime.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, fmt.Sprintf("%T", o))
	}
	sort.Strings(out)
	return out
}

func clusterRoleRules(t *testing.T, objs []runtime.Object) []string {
	t.Helper()
	for _, o := range objs {
		if cr, ok := o.(*rbacv1.ClusterRole); ok {
			var out []string
			for _, r := range cr.Rules {
				out = append(out, fmt.Sprint(r.APIGroups, r.Resources, r.Verbs))
			}
			return out
		}
	}
	t.Fatal("no ClusterRole")
	return nil
}

func controllerArgs(t *testing.T, objs []runtime.Object) []string {
	t.Helper()
	var out []string
	for _, a := range controller(t, objs).Args {
		if !strings.HasPrefix(a, "--service-name=") {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}
