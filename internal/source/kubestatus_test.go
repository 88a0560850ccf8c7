package source_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/source"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/kubetest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// replica is one controller replica without its data plane: source → Translate →
// Reporter, wired as cmd/milvus-lb wires them.
type replica struct {
	rep    *source.Reporter
	stop   context.CancelFunc
	done   chan struct{}
	logs   *testenv.LogBuffer
	models chan *config.Model
}

func startReplica(t *testing.T, client kubernetes.Interface, kopts source.KubeOptions, sopts source.StatusOptions) *replica {
	t.Helper()
	logs := &testenv.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	kopts.Logger, sopts.Logger = logger, logger
	k := source.NewKube(client, kopts)
	r := &replica{
		rep:    source.NewReporter(client, k, sopts),
		done:   make(chan struct{}),
		logs:   logs,
		models: make(chan *config.Model, 100),
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		k.Run(ctx, func(objs ingress.Objects, _ config.Problems) {
			model, problems := ingress.Translate(objs, ingress.Options{})
			r.rep.Report(model, problems)
		})
	}()
	go func() {
		defer wg.Done()
		r.rep.Run(ctx)
	}()
	go func() {
		wg.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("replica %s log:\n%s", sopts.Identity, logs.String())
		}
	})
	return r
}

// kill stops the replica without releasing its Lease (unless the options said so), as a
// crash would leave it.
func (r *replica) kill() {
	r.stop()
	<-r.done
}

// eventually polls check every 50 ms until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// importCert makes a certificate for host the way `milvus-lb cert import` does and
// stores it as the Secret the controller resolves the ARN through.
func importCert(t *testing.T, c kubernetes.Interface, host string) string {
	t.Helper()
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, host)
	crt, err := certs.Import(certPEM, ca.CertPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	create(t, c, certs.ToSecret(crt, source.DefaultControllerNamespace))
	return crt.ARN
}

func simpleIngress(ns, name, class, host, svc, listenPorts string) *networkingv1.Ingress {
	ing := guideIngress("")
	ing.Namespace, ing.Name = ns, name
	ing.Spec.IngressClassName = &class
	ing.Spec.Rules[0].Host = host
	ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = svc
	delete(ing.Annotations, "alb.ingress.kubernetes.io/certificate-arn")
	ing.Annotations["alb.ingress.kubernetes.io/listen-ports"] = listenPorts
	return ing
}

// kubectlAddress is the ADDRESS column of `kubectl get ingress NAME -n NS`, as the guide
// has the user read it.
func kubectlAddress(ctx context.Context, cluster *kubetest.Cluster, ns, name string) (string, error) {
	out, err := cluster.Kubectl(ctx, "get", "ingress", name, "-n", ns)
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		return "", fmt.Errorf("unexpected kubectl output:\n%s", out)
	}
	header, row := strings.Fields(lines[0]), strings.Fields(lines[1])
	i := slices.Index(header, "ADDRESS")
	if i < 0 || len(row) != len(header) {
		// An empty ADDRESS leaves a hole in the columns.
		return "", fmt.Errorf("no ADDRESS yet:\n%s", out)
	}
	return row[i], nil
}

func events(t *testing.T, c kubernetes.Interface, ns, name, reason string) []corev1.Event {
	t.Helper()
	list, err := c.CoreV1().Events(ns).List(ctxT(t), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Ingress,involvedObject.name=" + name + ",reason=" + reason,
	})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func lbStatus(t *testing.T, c kubernetes.Interface, ns, name string) []networkingv1.IngressLoadBalancerIngress {
	t.Helper()
	ing, err := c.NetworkingV1().Ingresses(ns).Get(ctxT(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ing.Status.LoadBalancer.Ingress
}

// TestReporterStatusAndEvents is the guide's `kubectl apply -f ingress.yaml` then
// `kubectl get ingress`: ADDRESS fills in for the served Ingress, an Ingress of another
// class is left alone, a broken one gets one Event per problem and no more for unrelated
// changes, and a fixed one is served.
func TestReporterStatusAndEvents(t *testing.T) {
	cluster := kubetest.Start(t)
	checkNoLeaks(t)
	c := cluster.Client
	ctx := ctxT(t)
	for _, ns := range []string{"milvus", source.DefaultControllerNamespace} {
		createNamespace(t, c, ns)
	}
	arn := importCert(t, c, "milvus-demo.milvus.io")
	create(t, c,
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "alb"}, Spec: networkingv1.IngressClassSpec{Controller: ingress.ControllerName}},
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}},
		service("milvus", "milvus-demo"),
		endpointSlice("milvus", "milvus-demo-1", "milvus-demo", endpoint("10.0.0.1", true, true, false)),
		simpleIngress("milvus", "other-class", "nginx", "other.milvus.io", "milvus-demo", `[{"HTTP":80}]`),
		simpleIngress("milvus", "broken", "alb", "broken.milvus.io", "missing", `[{"HTTP":80}]`),
	)
	// The guide's manifest, applied with kubectl as the guide does.
	manifest := filepath.Join(t.TempDir(), "ingress.yaml")
	writeGuideManifest(t, manifest, arn)
	if out, err := cluster.Kubectl(ctx, "apply", "-f", manifest); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("kubectl apply: %s", strings.TrimSpace(out))
	}

	startReplica(t, c, source.KubeOptions{}, source.StatusOptions{AdvertiseAddress: "lb.milvus.example", Identity: "only"})

	eventually(t, 10*time.Second, func() error {
		addr, err := kubectlAddress(ctx, cluster, "milvus", "milvus-demo")
		if err != nil {
			return err
		}
		if addr != "lb.milvus.example" {
			return fmt.Errorf("ADDRESS = %q", addr)
		}
		return nil
	})
	got := lbStatus(t, c, "milvus", "milvus-demo")
	if len(got) != 1 || got[0].Hostname != "lb.milvus.example" || len(got[0].Ports) != 1 || got[0].Ports[0].Port != 443 {
		t.Errorf("status.loadBalancer.ingress = %+v, want hostname lb.milvus.example with port 443", got)
	}
	eventually(t, 5*time.Second, func() error {
		if n := len(events(t, c, "milvus", "milvus-demo", source.ReasonSuccessfullyReconciled)); n != 1 {
			return fmt.Errorf("%d SuccessfullyReconciled Events on milvus-demo, want 1", n)
		}
		if n := len(events(t, c, "milvus", "broken", source.ReasonFailedBuildModel)); n != 1 {
			return fmt.Errorf("%d FailedBuildModel Events on broken, want 1", n)
		}
		return nil
	})
	ev := events(t, c, "milvus", "broken", source.ReasonFailedBuildModel)[0]
	if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, "missing") {
		t.Errorf("Event on broken: %s %q, want a Warning naming the missing Service", ev.Type, ev.Message)
	}
	if s := lbStatus(t, c, "milvus", "broken"); len(s) != 0 {
		t.Errorf("broken Ingress got status %+v", s)
	}
	if s := lbStatus(t, c, "milvus", "other-class"); len(s) != 0 {
		t.Errorf("Ingress of class nginx got status %+v", s)
	}
	if n := len(events(t, c, "milvus", "other-class", source.ReasonSuccessfullyReconciled)); n != 0 {
		t.Errorf("Ingress of class nginx got %d Events", n)
	}

	// Unrelated changes: endpoints move, another Ingress arrives. Once the new Ingress
	// has its status, the reconcile that wrote it has seen broken again.
	updateSlice(t, c, endpointSlice("milvus", "milvus-demo-1", "milvus-demo",
		endpoint("10.0.0.1", true, true, false), endpoint("10.0.0.2", true, true, false)))
	create(t, c, simpleIngress("milvus", "late", "alb", "late.milvus.io", "milvus-demo", `[{"HTTP":80}]`))
	eventually(t, 10*time.Second, func() error {
		if s := lbStatus(t, c, "milvus", "late"); len(s) == 0 {
			return fmt.Errorf("no status on late")
		}
		return nil
	})
	if n := len(events(t, c, "milvus", "broken", source.ReasonFailedBuildModel)); n != 1 {
		t.Errorf("%d FailedBuildModel Events on broken after unrelated changes, want still 1", n)
	}
	if n := len(events(t, c, "milvus", "milvus-demo", source.ReasonSuccessfullyReconciled)); n != 1 {
		t.Errorf("%d SuccessfullyReconciled Events on milvus-demo after unrelated changes, want still 1", n)
	}

	// Fixing the broken Ingress (its Service appears) serves it.
	create(t, c, service("milvus", "missing"))
	eventually(t, 10*time.Second, func() error {
		if s := lbStatus(t, c, "milvus", "broken"); len(s) == 0 || s[0].Hostname != "lb.milvus.example" {
			return fmt.Errorf("status of the fixed Ingress = %+v", s)
		}
		if n := len(events(t, c, "milvus", "broken", source.ReasonSuccessfullyReconciled)); n != 1 {
			return fmt.Errorf("%d SuccessfullyReconciled Events on the fixed Ingress", n)
		}
		return nil
	})
}

// TestReporterLeaderElection runs two replicas that advertise different addresses, so
// that the status tells who wrote it: only the leader writes, and when it dies without
// releasing its Lease the other takes over within the lease duration.
func TestReporterLeaderElection(t *testing.T) {
	cluster := kubetest.Start(t)
	checkNoLeaks(t)
	c := cluster.Client
	for _, ns := range []string{"milvus", source.DefaultControllerNamespace} {
		createNamespace(t, c, ns)
	}
	create(t, c,
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "milvus-lb"}, Spec: networkingv1.IngressClassSpec{Controller: ingress.ControllerName}},
		service("milvus", "milvus-demo"),
		endpointSlice("milvus", "milvus-demo-1", "milvus-demo", endpoint("10.0.0.1", true, true, false)),
		simpleIngress("milvus", "milvus-demo", "milvus-lb", "milvus-demo.milvus.io", "milvus-demo", `[{"HTTP":80}]`),
	)
	const lease = 3 * time.Second
	le := &source.LeaderElection{LeaseDuration: lease, RenewDeadline: 2 * time.Second, RetryPeriod: 250 * time.Millisecond}
	addrs := map[string]string{"a": "10.1.0.1", "b": "10.1.0.2"}
	replicas := map[string]*replica{}
	for _, id := range []string{"a", "b"} {
		replicas[id] = startReplica(t, c, source.KubeOptions{}, source.StatusOptions{
			AdvertiseAddress: addrs[id], Identity: id, LeaderElection: le,
		})
	}

	var leader string
	eventually(t, 15*time.Second, func() error {
		s := lbStatus(t, c, "milvus", "milvus-demo")
		if len(s) != 1 {
			return fmt.Errorf("status = %+v", s)
		}
		for id, a := range addrs {
			if s[0].IP == a {
				leader = id
				return nil
			}
		}
		return fmt.Errorf("status %+v is no replica's address", s)
	})
	follower := map[string]string{"a": "b", "b": "a"}[leader]
	if !replicas[leader].rep.Leading() || replicas[follower].rep.Leading() {
		t.Fatalf("status written by %s, but Leading: a=%v b=%v", leader, replicas["a"].rep.Leading(), replicas["b"].rep.Leading())
	}
	l, err := c.CoordinationV1().Leases(source.DefaultControllerNamespace).Get(ctxT(t), "milvus-lb-leader", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != leader {
		t.Errorf("Lease holder = %v, want %s", l.Spec.HolderIdentity, leader)
	}

	killed := time.Now()
	replicas[leader].kill()
	// The Lease was not released: the follower may take it once it has not been renewed
	// for LeaseDuration, and it then writes its own address.
	eventually(t, lease+3*time.Second, func() error {
		if s := lbStatus(t, c, "milvus", "milvus-demo"); len(s) != 1 || s[0].IP != addrs[follower] {
			return fmt.Errorf("status = %+v, want %s", s, addrs[follower])
		}
		return nil
	})
	t.Logf("%s took over %s after %s was killed (lease %s)", follower, time.Since(killed).Round(10*time.Millisecond), leader, lease)
	if !replicas[follower].rep.Leading() {
		t.Error("the follower writes status but does not say it leads")
	}
}

// TestReporterGracefulHandover: a leader that shuts down cleanly (SIGTERM in a pod)
// releases its Lease, so the other replica takes over at once rather than after the
// lease duration.
func TestReporterGracefulHandover(t *testing.T) {
	cluster := kubetest.Start(t)
	checkNoLeaks(t)
	c := cluster.Client
	for _, ns := range []string{"milvus", source.DefaultControllerNamespace} {
		createNamespace(t, c, ns)
	}
	create(t, c,
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "milvus-lb"}, Spec: networkingv1.IngressClassSpec{Controller: ingress.ControllerName}},
		service("milvus", "milvus-demo"),
		simpleIngress("milvus", "milvus-demo", "milvus-lb", "milvus-demo.milvus.io", "milvus-demo", `[{"HTTP":80}]`),
	)
	const lease = 15 * time.Second // client-go's default: a crash would cost this long
	le := &source.LeaderElection{LeaseDuration: lease, RenewDeadline: 10 * time.Second, RetryPeriod: 250 * time.Millisecond, ReleaseOnCancel: true}
	a := startReplica(t, c, source.KubeOptions{}, source.StatusOptions{AdvertiseAddress: "10.1.0.1", Identity: "a", LeaderElection: le})
	eventually(t, 15*time.Second, func() error {
		if s := lbStatus(t, c, "milvus", "milvus-demo"); len(s) != 1 || s[0].IP != "10.1.0.1" {
			return fmt.Errorf("status = %+v, want a's address", s)
		}
		return nil
	})
	b := startReplica(t, c, source.KubeOptions{}, source.StatusOptions{AdvertiseAddress: "10.1.0.2", Identity: "b", LeaderElection: le})

	stopped := time.Now()
	a.kill() // cancels its context: with ReleaseOnCancel the Lease is given up
	eventually(t, 5*time.Second, func() error {
		if s := lbStatus(t, c, "milvus", "milvus-demo"); len(s) != 1 || s[0].IP != "10.1.0.2" {
			return fmt.Errorf("status = %+v, want b's address", s)
		}
		return nil
	})
	t.Logf("b took over %s after a stopped (lease %s)", time.Since(stopped).Round(10*time.Millisecond), lease)
	if !b.rep.Leading() {
		t.Error("b writes status but does not say it leads")
	}
}

// TestRBACFromDeploy applies deploy/ as an administrator would, then runs the controller
// with the token of its ServiceAccount: the ClusterRole and Role there must be enough for
// everything it does (watch, status, Events, Lease), and nothing works without them.
func TestRBACFromDeploy(t *testing.T) {
	cluster := kubetest.Start(t)
	checkNoLeaks(t)
	c := cluster.Client
	ctx := ctxT(t)
	sa, err := kubernetes.NewForConfig(cluster.ControllerConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sa.NetworkingV1().Ingresses("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("before deploy/ is applied, the controller's list of Ingresses returned %v, want Forbidden", err)
	}

	out, err := cluster.Kubectl(ctx, "apply", "-f", deployDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl apply -f deploy/:\n%s", out)
	if strings.Contains(out, "Warning") {
		t.Errorf("kubectl apply -f deploy/ warned (PodSecurity or deprecation):\n%s", out)
	}

	createNamespace(t, c, "milvus")
	arn := importCert(t, c, "milvus-demo.milvus.io")
	ing := guideIngress(arn)
	create(t, c,
		service("milvus", "milvus-demo"),
		endpointSlice("milvus", "milvus-demo-1", "milvus-demo", endpoint("10.0.0.1", true, true, false)),
		ing,
		simpleIngress("milvus", "broken", "alb", "broken.milvus.io", "missing", `[{"HTTP":80}]`),
	)

	// No --advertise-address: the controller's own Service (deploy/50-service.yaml) has
	// no load-balancer address yet, so the pod IP is used until the cloud assigns one.
	r := startReplica(t, sa, source.KubeOptions{}, source.StatusOptions{
		PodIP: "10.2.0.9", Identity: "milvus-lb-0", Resync: 200 * time.Millisecond,
		LeaderElection: &source.LeaderElection{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 250 * time.Millisecond},
	})
	eventually(t, 15*time.Second, func() error {
		if s := lbStatus(t, c, "milvus", "milvus-demo"); len(s) != 1 || s[0].IP != "10.2.0.9" {
			return fmt.Errorf("status = %+v, want the pod IP", s)
		}
		if n := len(events(t, c, "milvus", "broken", source.ReasonFailedBuildModel)); n != 1 {
			return fmt.Errorf("%d FailedBuildModel Events", n)
		}
		return nil
	})

	// The cloud gives the Service its address; the Ingress follows.
	svc, err := c.CoreV1().Services(source.DefaultControllerNamespace).Get(ctx, source.DefaultServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: "k8s-milvuslb-0123456789.elb.example"}}
	if _, err := c.CoreV1().Services(source.DefaultControllerNamespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if s := lbStatus(t, c, "milvus", "milvus-demo"); len(s) != 1 || s[0].Hostname != "k8s-milvuslb-0123456789.elb.example" {
			return fmt.Errorf("status = %+v, want the Service's load-balancer hostname", s)
		}
		return nil
	})

	if logs := r.logs.String(); strings.Contains(strings.ToLower(logs), "forbidden") {
		t.Errorf("the controller was refused something its ClusterRole should allow:\n%s", logs)
	}
}

// deployDir is the repository's deploy/ directory.
func deployDir(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy")
}

// writeGuideManifest writes the guide's ingress.yaml, with the ARN `cert import` printed.
func writeGuideManifest(t *testing.T, path, arn string) {
	t.Helper()
	manifest := `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: milvus-demo
  namespace: milvus
  annotations:
    alb.ingress.kubernetes.io/scheme: internet-facing
    alb.ingress.kubernetes.io/backend-protocol-version: GRPC
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/listen-ports: '[{"HTTPS":443}]'
    alb.ingress.kubernetes.io/certificate-arn: "` + arn + `"
spec:
  ingressClassName: alb
  rules:
    - host: milvus-demo.milvus.io
      http:
        paths:
        - path: /
          pathType: Prefix
          backend:
            service:
              name: milvus-demo
              port:
                number: 19530
`
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
}
