package testenv

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/source"
)

// GuideARN is the placeholder certificate-arn of the guide's ingress.yaml.
const GuideARN = "arn:aws:acm:region:account-id:certificate/certificate-id"

// The guide's Service, which its Ingress routes to, and the key of its backend in a model.
const (
	GuideNamespace  = "milvus"
	GuideService    = "milvus-demo"
	GuideBackendKey = "milvus/milvus-demo:19530"
)

// GuideIngress returns the guide's ingress.yaml (test/testdata/guide/ingress.yaml, the one
// copy every test and the demo use) with the certificate ARN that `cert import` printed
// and, where a test cannot bind 443, another HTTPS port. Nothing else changes.
func GuideIngress(t testing.TB, arn string, port int) string {
	t.Helper()
	s := strings.Replace(string(guideIngress(t)), GuideARN, arn, 1)
	if port != 443 {
		s = strings.Replace(s, `'[{"HTTPS":443}]'`, `'[{"HTTPS":`+strconv.Itoa(port)+`}]'`, 1)
	}
	return s
}

func guideIngress(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(guideIngressFile(t))
	if err != nil {
		t.Fatalf("testenv: the guide's ingress.yaml: %v", err)
	}
	return b
}

func guideIngressFile(t testing.TB) string {
	return filepath.Join(Root(t), "test", "testdata", "guide", "ingress.yaml")
}

// GuideSetup is what a test changes in the guide's setup.
type GuideSetup struct {
	// ListenPorts replaces the guide's '[{"HTTPS":443}]', e.g. `[{"HTTP":8080},{"HTTPS":8443}]`.
	ListenPorts string
	// Certificate replaces the guide's placeholder ARN; its Secret is added as `cert
	// import` stores it.
	Certificate *certs.Certificate
	// Annotations are set on the Ingress, over the guide's.
	Annotations map[string]string
	// Endpoints are the Service's endpoints (IPv4 host:port), one EndpointSlice each,
	// ready; none leaves the Service without endpoints.
	Endpoints []string
}

// GuideObjects are the guide's objects as an API server or `serve -f` would hand them to
// translation: its Ingress (read from test/testdata/guide/ingress.yaml, changed as s
// says), the Service milvus/milvus-demo with port 19530, its EndpointSlices and the
// certificate's Secret.
func GuideObjects(t testing.TB, s GuideSetup) ingress.Objects {
	t.Helper()
	objs, problems := source.ParseManifest(guideIngressFile(t), guideIngress(t))
	if len(problems) > 0 || len(objs.Ingresses) != 1 {
		t.Fatalf("testenv: the guide's ingress.yaml: %d Ingresses, problems %v", len(objs.Ingresses), problems)
	}
	a := objs.Ingresses[0].Annotations
	if s.ListenPorts != "" {
		a[ingress.AnnotationListenPorts] = s.ListenPorts
	}
	if c := s.Certificate; c != nil {
		a[ingress.AnnotationCertificateARN] = c.ARN
		objs.Secrets = append(objs.Secrets, certs.ToSecret(c, certs.SecretNamespace))
	}
	for k, v := range s.Annotations {
		a[k] = v
	}
	meta := metav1.ObjectMeta{Namespace: GuideNamespace, Name: GuideService}
	objs.Services = append(objs.Services, &corev1.Service{ObjectMeta: meta,
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "milvus", Port: 19530}}}})
	for i, ep := range s.Endpoints {
		objs.EndpointSlices = append(objs.EndpointSlices, endpointSlice(t, i, ep))
	}
	return objs
}

// endpointSlice is the i-th slice of the guide's Service, with one ready endpoint: one
// slice per endpoint because every fake backend listens on a port of its own.
func endpointSlice(t testing.TB, i int, addr string) *discoveryv1.EndpointSlice {
	host, p, err := net.SplitHostPort(addr)
	port, perr := strconv.ParseInt(p, 10, 32)
	if err != nil || perr != nil {
		t.Fatalf("testenv: endpoint %q is not host:port", addr)
	}
	name, port32, ready := "milvus", int32(port), true
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: GuideNamespace, Name: GuideService + "-" + strconv.Itoa(i),
			Labels: map[string]string{discoveryv1.LabelServiceName: GuideService}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port32}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}
}
