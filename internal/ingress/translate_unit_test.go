package ingress

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// apiObjects builds, in Go, what an API server would hand over: no Files, and an Ingress
// written without a namespace (kubectl would put it in "default").
func apiObjects(class string) Objects {
	cert := selfSignedPEM()
	ready := true
	port := int32(19530)
	name := "milvus"
	return Objects{
		Ingresses: []*networkingv1.Ingress{nil, {
			ObjectMeta: metav1.ObjectMeta{Name: "demo"},
			Spec: networkingv1.IngressSpec{
				IngressClassName: &class,
				TLS:              []networkingv1.IngressTLS{{SecretName: "demo-tls"}},
				DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: "milvus", Port: networkingv1.ServiceBackendPort{Number: 19530},
				}},
			},
		}},
		Services: []*corev1.Service{{
			ObjectMeta: metav1.ObjectMeta{Name: "milvus", Namespace: "default"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "milvus", Port: 19530}}},
		}},
		EndpointSlices: []*discoveryv1.EndpointSlice{{
			ObjectMeta: metav1.ObjectMeta{Name: "milvus-1", Namespace: "default",
				Labels: map[string]string{discoveryv1.LabelServiceName: "milvus"}},
			Ports:     []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"fd00::1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		}},
		// A Secret as written in a file, with stringData: the API server would fold it
		// into data, a file source does not.
		Secrets: []*corev1.Secret{{
			ObjectMeta: metav1.ObjectMeta{Name: "demo-tls"},
			Type:       corev1.SecretTypeTLS,
			StringData: map[string]string{"tls.crt": string(cert.cert), "tls.key": string(cert.key)},
		}},
	}
}

func TestTranslateAPIObjects(t *testing.T) {
	model, problems := Translate(apiObjects("alb"), Options{})
	if len(problems) != 0 {
		t.Fatalf("problems:\n%s", problems.Report())
	}
	if len(model.Listeners) != 1 || model.Listeners[0].Port != 443 || len(model.Listeners[0].Certificates) != 1 {
		t.Fatalf("listeners = %+v; want HTTPS 443 with the spec.tls certificate", model.Listeners)
	}
	if ref := model.Listeners[0].Certificates[0].Ref; ref != "secret default/demo-tls" {
		t.Errorf("certificate ref = %q", ref)
	}
	be := model.Backends["default/milvus:19530"]
	if be == nil || len(be.Endpoints) != 1 || be.Endpoints[0].Address != "[fd00::1]:19530" {
		t.Fatalf("backend = %+v; want the IPv6 endpoint in brackets", be)
	}
	st := model.Ingresses[0]
	if st.Namespace != "default" || !st.Served || st.Source != "" {
		t.Errorf("status = %+v", st)
	}
}

func TestTranslateClassesOption(t *testing.T) {
	objs := apiObjects("alb")
	model, problems := Translate(objs, Options{Classes: []string{"internal"}})
	if len(problems.Errors()) != 0 || len(model.Listeners) != 0 || model.Ingresses[0].Served {
		t.Errorf("class alb served although only internal is: %+v %v", model, problems)
	}
	// Nothing says alb is another controller's class, so the user hears why it is not served.
	if len(problems) != 1 || !strings.Contains(problems[0].Message, `class "alb" is not served`) {
		t.Errorf("problems = %v; want one warning that class alb is not served", problems)
	}
	model, _ = Translate(apiObjects("internal"), Options{Classes: []string{"internal"}})
	if !model.Ingresses[0].Served {
		t.Errorf("class internal not served")
	}
}

func TestProblemsWithoutFiles(t *testing.T) {
	objs := apiObjects("alb")
	objs.Services = nil
	_, problems := Translate(objs, Options{})
	want := "Ingress default/demo: spec.defaultBackend.service.name: Service default/milvus not found"
	if len(problems) != 1 || problems[0].String() != want || problems[0].Severity != config.Error {
		t.Errorf("problems = %q; want exactly %q", problems.Report(), want)
	}
}

func TestSupportedAnnotations(t *testing.T) {
	got := SupportedAnnotations()
	for _, a := range got {
		if !strings.HasPrefix(a, ALBAnnotationPrefix) && !strings.HasPrefix(a, "milvus-lb.io/") {
			t.Errorf("unexpected annotation %s", a)
		}
	}
	if len(got) != len(supported)+1 {
		t.Errorf("SupportedAnnotations() has %d names, want %d", len(got), len(supported)+1)
	}
}

func TestTranslateDuplicateIngress(t *testing.T) {
	objs := apiObjects("alb")
	twin := objs.Ingresses[1].DeepCopy()
	objs.Ingresses = append(objs.Ingresses, twin)
	model, problems := Translate(objs, Options{})
	want := "error: Ingress default/demo: defined more than once; only one definition is used\n"
	if problems.Report() != want {
		t.Errorf("problems:\n%s\nwant:\n%s", problems.Report(), want)
	}
	if len(model.Ingresses) != 1 || !model.Ingresses[0].Served {
		t.Errorf("ingresses = %+v; want the first definition served", model.Ingresses)
	}
}

// "not found" says where certificates were looked for: a user who imported as another
// user, or into another --state-dir, learns which directory was read.
func TestCertificateNotFoundNamesStore(t *testing.T) {
	objs := apiObjects("alb")
	objs.Ingresses[1].Annotations = map[string]string{AnnotationCertificateARN: "arn:milvus-lb:acm:local:000000000000:certificate/x"}
	objs.CertificateStore = "state directory /home/u/.local/state/milvus-lb"
	_, problems := Translate(objs, Options{})
	want := "certificate arn:milvus-lb:acm:local:000000000000:certificate/x not found in state directory /home/u/.local/state/milvus-lb; no certificate is imported (milvus-lb cert import)"
	if errs := problems.Errors(); len(errs) != 1 || errs[0].Message != want {
		t.Errorf("problems:\n%s\nwant the error %q", problems.Report(), want)
	}
}
