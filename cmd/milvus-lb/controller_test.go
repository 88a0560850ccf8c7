package main

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/kubetest"
)

// TestControllerNeedsAConfiguration: outside a pod and without --kubeconfig, the command
// says what to do instead of failing on a missing service-account file.
func TestControllerNeedsAConfiguration(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	cmd := newControllerCmd()
	cmd.SetArgs([]string{"--admin-addr", "127.0.0.1:0"})
	cmd.SetOut(new(strings.Builder))
	cmd.SetErr(new(strings.Builder))
	err := cmd.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Fatalf("controller outside a pod = %v, want an error pointing at --kubeconfig", err)
	}
}

// TestImportToCluster stores a certificate as the Secret the controller resolves its ARN
// through; importing it again (a renewed key pair for the same certificate id, or the
// same files twice) replaces the data, and a missing namespace says how to create it.
func TestImportToCluster(t *testing.T) {
	cluster := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "milvus-demo.milvus.io")
	c, err := certs.Import(certPEM, ca.CertPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	err = importToCluster(ctx, cluster.Kubeconfig, "", c)
	if err == nil || !strings.Contains(err.Error(), "namespace milvus-lb-system not found") {
		t.Fatalf("import before the namespace exists = %v, want a hint to install deploy/", err)
	}

	if _, err := cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "milvus-lb-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second import finds the Secret and updates it
		if err := importToCluster(ctx, cluster.Kubeconfig, "", c); err != nil {
			t.Fatalf("importToCluster: %v", err)
		}
	}
	s, err := cluster.Client.CoreV1().Secrets("milvus-lb-system").Get(ctx, certs.SecretName(c.ID), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != corev1.SecretTypeTLS || s.Labels[certs.CertificateIDLabel] != c.ID ||
		s.Annotations[certs.CertificateARNAnnotation] != c.ARN || string(s.Data[corev1.TLSPrivateKeyKey]) != string(c.KeyPEM) {
		t.Errorf("Secret = type %s labels %v annotations %v, want kubernetes.io/tls labelled %s and annotated %s with the key",
			s.Type, s.Labels, s.Annotations, c.ID, c.ARN)
	}
}
