package source_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/source"
	"github.com/milvus-lb/milvus-lb/internal/testkit/kubetest"
)

// applied collects what a source hands to apply.
type applied struct {
	mu    sync.Mutex
	all   []ingress.Objects
	added chan struct{}
}

func newApplied() *applied { return &applied{added: make(chan struct{}, 1)} }

func (a *applied) apply(objs ingress.Objects, _ config.Problems) {
	a.mu.Lock()
	a.all = append(a.all, objs)
	a.mu.Unlock()
	select {
	case a.added <- struct{}{}:
	default:
	}
}

func (a *applied) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.all)
}

// wait returns the first snapshot at or after index from that satisfies ok.
func (a *applied) wait(t *testing.T, from int, timeout time.Duration, what string, ok func(ingress.Objects) bool) (ingress.Objects, int) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		a.mu.Lock()
		for i := from; i < len(a.all); i++ {
			if ok(a.all[i]) {
				objs := a.all[i]
				a.mu.Unlock()
				return objs, i + 1
			}
		}
		from = len(a.all)
		a.mu.Unlock()
		select {
		case <-a.added:
		case <-deadline.C:
			t.Fatalf("no snapshot with %s within %s", what, timeout)
		}
	}
}

// runSource runs a Kube source until the test ends.
func runSource(t *testing.T, client kubernetes.Interface, opts source.KubeOptions) (*source.Kube, *applied) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	k := source.NewKube(client, opts)
	a := newApplied()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx, a.apply) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Kube.Run: %v", err)
		}
	})
	return k, a
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// create creates objects as a user would, in order, failing the test on any error.
func create(t *testing.T, c kubernetes.Interface, objs ...any) {
	t.Helper()
	ctx := ctxT(t)
	opts := metav1.CreateOptions{}
	for _, obj := range objs {
		var err error
		switch o := obj.(type) {
		case *corev1.Namespace:
			_, err = c.CoreV1().Namespaces().Create(ctx, o, opts)
		case *networkingv1.IngressClass:
			_, err = c.NetworkingV1().IngressClasses().Create(ctx, o, opts)
		case *networkingv1.Ingress:
			_, err = c.NetworkingV1().Ingresses(o.Namespace).Create(ctx, o, opts)
		case *corev1.Service:
			_, err = c.CoreV1().Services(o.Namespace).Create(ctx, o, opts)
		case *discoveryv1.EndpointSlice:
			_, err = c.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o, opts)
		case *corev1.Secret:
			_, err = c.CoreV1().Secrets(o.Namespace).Create(ctx, o, opts)
		default:
			t.Fatalf("create: unsupported %T", obj)
		}
		if err != nil {
			t.Fatalf("create %T: %v", obj, err)
		}
	}
}

// updateSlice replaces the EndpointSlice of the same name.
func updateSlice(t *testing.T, c kubernetes.Interface, sl *discoveryv1.EndpointSlice) {
	t.Helper()
	api := c.DiscoveryV1().EndpointSlices(sl.Namespace)
	cur, err := api.Get(ctxT(t), sl.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sl = sl.DeepCopy()
	sl.ResourceVersion = cur.ResourceVersion
	if _, err := api.Update(ctxT(t), sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createNamespace(t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	create(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

func ptr[T any](v T) *T { return &v }

// endpointSlice is a slice of Service ns/svc on port 19530 (named "milvus").
func endpointSlice(ns, name, svc string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: "kubetest"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("milvus"), Port: ptr(int32(19530)), Protocol: ptr(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

func endpoint(ip string, ready, serving, terminating bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
	}
}

func service(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "milvus", Port: 19530, TargetPort: intstr.FromInt32(19530)}},
		},
	}
}

func findSlice(objs ingress.Objects, ns, name string) *discoveryv1.EndpointSlice {
	for _, s := range objs.EndpointSlices {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

func findSecret(objs ingress.Objects, ns, name string) *corev1.Secret {
	for _, s := range objs.Secrets {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

func tlsSecret(ns, name string, annotations map[string]string, labels map[string]string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations, Labels: labels},
		Type:       corev1.SecretTypeTLS,
		// The API server does not parse them; only translation does.
		Data: map[string][]byte{corev1.TLSCertKey: []byte("cert"), corev1.TLSPrivateKeyKey: []byte("key")},
	}
}

// TestKubeSnapshot checks that the objects a user creates arrive in one snapshot, with
// EndpointSlice conditions as given, that only TLS Secrets are read, that only the
// controller namespace may name a certificate ARN, and that changes arrive within a
// second.
func TestKubeSnapshot(t *testing.T) {
	cluster := kubetest.Start(t)
	checkNoLeaks(t)
	c := cluster.Client
	ctx := ctxT(t)
	createNamespace(t, c, "milvus")
	createNamespace(t, c, source.DefaultControllerNamespace)

	const arn = "arn:milvus-lb:acm:local:000000000000:certificate/11111111-1111-4111-8111-111111111111"
	create(t, c,
		&networkingv1.IngressClass{
			ObjectMeta: metav1.ObjectMeta{Name: "alb"},
			Spec:       networkingv1.IngressClassSpec{Controller: ingress.ControllerName},
		},
		service("milvus", "milvus-demo"),
		endpointSlice("milvus", "milvus-demo-a", "milvus-demo",
			endpoint("10.0.0.1", true, true, false),
			endpoint("10.0.0.2", false, true, true), // draining: still serving, terminating
			endpoint("10.0.0.3", false, false, false),
		),
		tlsSecret(source.DefaultControllerNamespace, "milvus-lb-cert-1",
			map[string]string{certs.CertificateARNAnnotation: arn}, map[string]string{certs.CertificateIDLabel: "1"}),
		// A user Secret claiming the same ARN must not be able to take it over.
		tlsSecret("milvus", "impostor", map[string]string{certs.CertificateARNAnnotation: arn}, nil),
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "db-password", Namespace: "milvus"},
			StringData: map[string]string{"password": "hunter2"},
		},
		guideIngress(arn),
	)
	ing, err := c.NetworkingV1().Ingresses("milvus").Get(ctx, "milvus-demo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	_, a := runSource(t, c, source.KubeOptions{})
	objs, next := a.wait(t, 0, 30*time.Second, "the guide's objects", func(o ingress.Objects) bool {
		return len(o.Ingresses) == 1 && findSlice(o, "milvus", "milvus-demo-a") != nil
	})
	if n := len(objs.IngressClasses); n != 1 || objs.IngressClasses[0].Name != "alb" {
		t.Errorf("IngressClasses = %d, want alb", n)
	}
	var svcNames []string
	for _, s := range objs.Services {
		svcNames = append(svcNames, s.Namespace+"/"+s.Name)
	}
	if !strings.Contains(strings.Join(svcNames, ","), "milvus/milvus-demo") {
		t.Errorf("Services = %v, want milvus/milvus-demo among them", svcNames)
	}
	if got := objs.Ingresses[0]; got.UID != ing.UID || len(got.ManagedFields) != 0 {
		t.Errorf("Ingress UID %s (want %s), managedFields %d (want stripped)", got.UID, ing.UID, len(got.ManagedFields))
	}
	sl := findSlice(objs, "milvus", "milvus-demo-a")
	want := []struct {
		ip                          string
		ready, serving, terminating bool
	}{{"10.0.0.1", true, true, false}, {"10.0.0.2", false, true, true}, {"10.0.0.3", false, false, false}}
	for i, w := range want {
		ep := sl.Endpoints[i]
		cd := ep.Conditions
		if ep.Addresses[0] != w.ip || *cd.Ready != w.ready || *cd.Serving != w.serving || *cd.Terminating != w.terminating {
			t.Errorf("endpoint %d = %v ready=%v serving=%v terminating=%v, want %+v", i, ep.Addresses, *cd.Ready, *cd.Serving, *cd.Terminating, w)
		}
	}
	if s := findSecret(objs, "milvus", "db-password"); s != nil {
		t.Errorf("an Opaque Secret was read: %s/%s", s.Namespace, s.Name)
	}
	if s := findSecret(objs, source.DefaultControllerNamespace, "milvus-lb-cert-1"); s == nil || s.Annotations[certs.CertificateARNAnnotation] != arn {
		t.Errorf("certificate Secret missing or without its ARN: %+v", s)
	}
	if s := findSecret(objs, "milvus", "impostor"); s == nil {
		t.Error("the TLS Secret milvus/impostor is missing")
	} else if _, ok := s.Annotations[certs.CertificateARNAnnotation]; ok {
		t.Error("a Secret outside the controller namespace kept its certificate-arn annotation")
	}

	// An endpoint that becomes ready is in a snapshot within a second.
	start := time.Now()
	updateSlice(t, c, endpointSlice("milvus", "milvus-demo-a", "milvus-demo",
		endpoint("10.0.0.1", true, true, false),
		endpoint("10.0.0.3", true, true, false)))
	_, next = a.wait(t, next, time.Second, "10.0.0.3 ready", func(o ingress.Objects) bool {
		s := findSlice(o, "milvus", "milvus-demo-a")
		return s != nil && len(s.Endpoints) == 2 && *s.Endpoints[1].Conditions.Ready
	})
	t.Logf("endpoint change applied after %s", time.Since(start).Round(time.Millisecond))

	// A deleted slice is gone within a second too.
	if err := c.DiscoveryV1().EndpointSlices("milvus").Delete(ctx, "milvus-demo-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, next = a.wait(t, next, time.Second, "the slice deleted", func(o ingress.Objects) bool {
		return findSlice(o, "milvus", "milvus-demo-a") == nil
	})

	// A burst of changes, as a rolling update makes, is gathered into a few snapshots
	// rather than one per object.
	const burst = 40
	before := a.count()
	start = time.Now()
	for i := range burst {
		create(t, c, endpointSlice("milvus", fmt.Sprintf("burst-%02d", i), "milvus-demo", endpoint(fmt.Sprintf("10.0.1.%d", i+1), true, true, false)))
	}
	took := time.Since(start)
	a.wait(t, next, time.Second, "the whole burst", func(o ingress.Objects) bool { return findSlice(o, "milvus", fmt.Sprintf("burst-%02d", burst-1)) != nil })
	applies := a.count() - before
	// At most one snapshot per debounce window while the burst lasted, plus the last.
	if limit := int(took/source.DefaultDebounce) + 2; applies > limit {
		t.Errorf("%d changes in %s gave %d snapshots, want at most %d", burst, took.Round(time.Millisecond), applies, limit)
	}
	t.Logf("%d changes in %s gave %d snapshots", burst, took.Round(time.Millisecond), applies)
}

// TestKubeWatchNamespace checks that --watch-namespace keeps other namespaces out, but
// still reads the certificates of the controller namespace.
func TestKubeWatchNamespace(t *testing.T) {
	cluster := kubetest.Start(t)
	checkNoLeaks(t)
	c := cluster.Client
	for _, ns := range []string{"team-a", "team-b", source.DefaultControllerNamespace} {
		createNamespace(t, c, ns)
	}
	for _, ns := range []string{"team-a", "team-b"} {
		create(t, c, service(ns, "milvus"), tlsSecret(ns, "tls", nil, nil))
	}
	create(t, c,
		tlsSecret(source.DefaultControllerNamespace, "milvus-lb-cert-2",
			map[string]string{certs.CertificateARNAnnotation: "arn:x"}, map[string]string{certs.CertificateIDLabel: "2"}),
		tlsSecret(source.DefaultControllerNamespace, "unlabelled", nil, nil))

	_, a := runSource(t, c, source.KubeOptions{Namespace: "team-a"})
	objs, _ := a.wait(t, 0, 30*time.Second, "a first snapshot", func(ingress.Objects) bool { return true })
	var got []string
	for _, s := range objs.Services {
		got = append(got, "Service "+s.Namespace+"/"+s.Name)
	}
	for _, s := range objs.Secrets {
		got = append(got, "Secret "+s.Namespace+"/"+s.Name)
	}
	want := fmt.Sprint([]string{"Service team-a/milvus", "Secret milvus-lb-system/milvus-lb-cert-2", "Secret team-a/tls"})
	if fmt.Sprint(got) != want {
		t.Errorf("objects = %v, want %v", got, want)
	}
}

func guideIngress(arn string) *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{
			Name: "milvus-demo", Namespace: "milvus",
			Annotations: map[string]string{
				"alb.ingress.kubernetes.io/scheme":                   "internet-facing",
				"alb.ingress.kubernetes.io/backend-protocol-version": "GRPC",
				"alb.ingress.kubernetes.io/target-type":              "ip",
				"alb.ingress.kubernetes.io/listen-ports":             `[{"HTTPS":443}]`,
				"alb.ingress.kubernetes.io/certificate-arn":          arn,
			},
		},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr("alb"),
			Rules: []networkingv1.IngressRule{{
				Host: "milvus-demo.milvus.io",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path: "/", PathType: &prefix,
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: "milvus-demo", Port: networkingv1.ServiceBackendPort{Number: 19530},
						}},
					}},
				}},
			}},
		},
	}
}

// checkNoLeaks registers a cleanup, to run after those registered later (the sources and
// reporters of the test), that fails the test if any goroutine of this package, of
// client-go's informers or of its leader election is still running.
func checkNoLeaks(t *testing.T) {
	t.Cleanup(func() {
		patterns := []string{"milvus-lb/internal/source.", "k8s.io/client-go/tools/cache.", "k8s.io/client-go/tools/leaderelection."}
		var leaked string
		deadline := time.Now().Add(5 * time.Second)
		for {
			leaked = ""
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			for g := range strings.SplitSeq(string(buf), "\n\n") {
				for _, p := range patterns {
					if strings.Contains(g, p) {
						leaked += g + "\n\n"
						break
					}
				}
			}
			if leaked == "" || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if leaked != "" {
			t.Errorf("goroutines left running:\n%s", leaked)
		}
	})
}
