package controller

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// TestImageReference checks that both ways to install the controller name the image that
// scripts/image.sh builds, at the release version: the version is internal/version/VERSION,
// the chart's appVersion must equal it and its image tag defaults to it, and the plain
// Deployment of deploy/ names the same image as the rendered chart.
func TestImageReference(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "internal", "version", "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(string(b))

	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	b, err = os.ReadFile(filepath.Join(root, "deploy", "helm", "milvus-lb", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &chart); err != nil {
		t.Fatal(err)
	}
	if chart.AppVersion != version {
		t.Errorf("Chart.yaml appVersion is %q, internal/version/VERSION %q: they must be equal", chart.AppVersion, version)
	}

	b, err = os.ReadFile(filepath.Join(root, "deploy", "30-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	plain := deploymentImage(t, decodeAll(t, string(b)))
	if want := ":" + version; !strings.HasSuffix(plain, want) {
		t.Errorf("deploy/30-deployment.yaml names image %q, want the tag %s", plain, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, helmPath(t), "template", "milvus-lb", filepath.Join(root, "deploy", "helm", "milvus-lb"),
		"--namespace", "milvus-lb-system")
	home := t.TempDir()
	c.Env = append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_DATA_HOME="+home)
	rendered, err := c.Output()
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	if got := deploymentImage(t, decodeAll(t, string(rendered))); got != plain {
		t.Errorf("the chart renders image %q, deploy/ names %q: they must be equal", got, plain)
	}
}

func deploymentImage(t *testing.T, objs []runtime.Object) string {
	t.Helper()
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok {
			return d.Spec.Template.Spec.Containers[0].Image
		}
	}
	t.Fatal("no Deployment")
	return ""
}
