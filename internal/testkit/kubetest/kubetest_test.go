package kubetest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/milvus-lb/milvus-lb/internal/testkit/kubetest"
)

// TestStart checks what the other tests rely on: the version we built, kubectl through
// the admin kubeconfig, and a controller user that RBAC refuses until it is granted.
func TestStart(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	v, err := c.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != kubetest.Version {
		t.Errorf("server version %s, want %s", v.GitVersion, kubetest.Version)
	}

	out, err := c.Kubectl(ctx, "get", "namespace", "default", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "namespace/default" {
		t.Errorf("kubectl get namespace default = %q", out)
	}

	sa, err := kubernetes.NewForConfig(c.ControllerConfig())
	if err != nil {
		t.Fatal(err)
	}
	_, err = sa.CoreV1().Services("default").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("controller user without RBAC: list Services = %v, want Forbidden", err)
	}
	if err != nil && !strings.Contains(err.Error(), "system:serviceaccount:"+kubetest.ControllerNamespace+":"+kubetest.ControllerServiceAccount) {
		t.Errorf("Forbidden does not name the ServiceAccount user: %v", err)
	}
}
