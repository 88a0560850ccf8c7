package gatewayconformance

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// standIn does, for the suite's base manifests, the work that kube-controller-manager and
// a kubelet do in a cluster, and no more: the test API server runs no controllers and no
// node. Every pass (a few times a second) it
//   - creates the "default" ServiceAccount of each namespace (Pod admission needs it);
//   - gives each Deployment its replicas as Pods named <deployment>-standin-<i> (the
//     suite reads the backend's name from a Pod name without its last two parts), on
//     node "standin" (other Pods are bound there);
//   - "runs" each Pod: an address of its own as Pod IP (10.77.0.0/17, local in the
//     test's network namespace), the echo server as a local
//     process with the container's environment (POD_NAME, NAMESPACE from fieldRefs,
//     Secret volumes written to files), then Running and Ready;
//   - force-deletes Pods being deleted and those whose Deployment is gone, stopping their
//     process (no kubelet confirms a graceful deletion, no garbage collector runs);
//   - writes one EndpointSlice per Service with a selector: its Ready Pods, the Service's
//     ports with their target ports.
//
// Pods whose container is not echo-basic's HTTP or gRPC server (coredns, the TCP and UDP
// echo servers of the TCPRoute and UDPRoute tests) are marked Ready without a process: no
// GRPCRoute or HTTPRoute test sends to them.
type standIn struct {
	t      testing.TB
	c      kubernetes.Interface
	echo   string // the echo-basic binary
	dir    string // per-Pod files and logs
	nextIP int

	mu     sync.Mutex
	procs  map[string]*exec.Cmd // by Pod UID
	ips    map[string]string    // by Pod UID
	logged map[string]string    // the last message logged, by Pod UID
}

// logOnce logs msg about a Pod unless it was the last one logged about it.
func (s *standIn) logOnce(uid, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logged[uid] != msg {
		s.logged[uid] = msg
		s.t.Logf("stand-in: %s", msg)
	}
}

// nodeName is the node every Pod runs on: the suite copies it into the EndpointSlices it
// writes itself, and the API server requires it to be a valid name there.
const nodeName = "standin"

func startStandIn(t testing.TB, c kubernetes.Interface, echo string) {
	s := &standIn{t: t, c: c, echo: echo, dir: t.TempDir(), procs: map[string]*exec.Cmd{}, ips: map[string]string{}, logged: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := s.pass(ctx); err != nil && ctx.Err() == nil {
				t.Logf("stand-in: %v", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		for uid := range s.procs {
			s.stop(uid)
		}
	})
}

// pass reconciles once; an error is logged and the next pass tries again.
func (s *standIn) pass(ctx context.Context) error {
	if err := s.serviceAccounts(ctx); err != nil {
		return err
	}
	if err := s.deployments(ctx); err != nil {
		return err
	}
	pods, err := s.pods(ctx)
	if err != nil {
		return err
	}
	return s.endpointSlices(ctx, pods)
}

func (s *standIn) serviceAccounts(ctx context.Context) error {
	nss, err := s.c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, ns := range nss.Items {
		if ns.DeletionTimestamp != nil {
			continue
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name}}
		if _, err := s.c.CoreV1().ServiceAccounts(ns.Name).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// deployments creates the missing Pods of each Deployment and reports it available.
func (s *standIn) deployments(ctx context.Context) error {
	deps, err := s.c.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range deps.Items {
		d := &deps.Items[i]
		n := int32(1)
		if d.Spec.Replicas != nil {
			n = *d.Spec.Replicas
		}
		for r := range n {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{
					Name: fmt.Sprintf("%s-standin-%d", d.Name, r), Namespace: d.Namespace,
					Labels: d.Spec.Template.Labels, Annotations: d.Spec.Template.Annotations,
					OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
				},
				Spec: d.Spec.Template.Spec,
			}
			pod.Spec.NodeName = nodeName
			if _, err := s.c.CoreV1().Pods(d.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("pod %s/%s: %w", d.Namespace, pod.Name, err)
			}
		}
		if d.Status.ReadyReplicas != n || d.Status.ObservedGeneration != d.Generation {
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"}}}
			if _, err := s.c.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
				return err
			}
		}
	}
	return nil
}

// pods runs the Pods that are not yet running, removes those that are going, and returns
// the Ready ones.
func (s *standIn) pods(ctx context.Context) ([]corev1.Pod, error) {
	pods, err := s.c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	deps, err := s.c.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	owners := map[string]bool{}
	for _, d := range deps.Items {
		owners[string(d.UID)] = true
	}
	var ready []corev1.Pod
	seen := map[string]bool{}
	for i := range pods.Items {
		p := &pods.Items[i]
		ref := metav1.GetControllerOf(p)
		if p.DeletionTimestamp != nil || (ref != nil && ref.Kind == "Deployment" && !owners[string(ref.UID)]) {
			zero := int64(0)
			if err := s.c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
			continue
		}
		seen[string(p.UID)] = true
		if p.Status.Phase != corev1.PodRunning {
			// A Pod that cannot start yet (its Secret is not there) waits; the others go on.
			if err := s.run(ctx, p); err != nil {
				s.logOnce(string(p.UID), fmt.Sprintf("pod %s/%s: %v", p.Namespace, p.Name, err))
			}
			continue // Ready from the next pass, as the API server has it
		}
		ready = append(ready, *p)
	}
	s.mu.Lock()
	for uid := range s.procs {
		if !seen[uid] {
			s.stop(uid)
		}
	}
	s.mu.Unlock()
	return ready, nil
}

// run starts the Pod's echo server (if it is one) on a fresh address and marks
// the Pod Running and Ready there.
func (s *standIn) run(ctx context.Context, p *corev1.Pod) error {
	uid := string(p.UID)
	s.mu.Lock()
	ip, ok := s.ips[uid]
	if !ok {
		s.nextIP++
		ip = fmt.Sprintf("10.77.%d.%d", s.nextIP/250, s.nextIP%250+1)
		s.ips[uid] = ip
	}
	_, running := s.procs[uid]
	s.mu.Unlock()
	if p.Spec.NodeName == "" { // a Pod of the test's own, not of a Deployment: schedule it
		b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
			Target: corev1.ObjectReference{Kind: "Node", Name: nodeName}}
		if err := s.c.CoreV1().Pods(p.Namespace).Bind(ctx, b, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if !running && len(p.Spec.Containers) > 0 && isEcho(&p.Spec.Containers[0]) {
		if err := s.startEcho(ctx, p, ip); err != nil {
			return err
		}
	}
	now := metav1.Now()
	p.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		HostIP: "10.77.0.1", HostIPs: []corev1.HostIP{{IP: "10.77.0.1"}}, StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
	}
	_, err := s.c.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return nil // the next pass sees the new version
	}
	return err
}

// isEcho: the suite's echo-basic image, as its HTTP (default) or gRPC server.
func isEcho(c *corev1.Container) bool {
	if !strings.Contains(c.Image, "/echo-basic:") {
		return false
	}
	for _, e := range c.Env {
		if e.Name == "TCP_ECHO_SERVER" || e.Name == "UDP_ECHO_SERVER" {
			return false
		}
	}
	return true
}

// startEcho starts echo-basic with the container's environment, POD_IP set (the patched
// server listens there, see scripts/gateway-conformance.sh), and its Secret volumes
// written under the Pod's directory (paths in the environment follow them).
func (s *standIn) startEcho(ctx context.Context, p *corev1.Pod, ip string) error {
	c := &p.Spec.Containers[0]
	dir := filepath.Join(s.dir, p.Namespace+"_"+p.Name)
	mounts := map[string]string{} // mountPath → local directory
	for _, m := range c.VolumeMounts {
		for _, v := range p.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			sec, err := s.c.CoreV1().Secrets(p.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			local := filepath.Join(dir, m.Name)
			if err := os.MkdirAll(local, 0o700); err != nil {
				return err
			}
			for k, b := range sec.Data {
				if err := os.WriteFile(filepath.Join(local, k), b, 0o600); err != nil {
					return err
				}
			}
			mounts[m.MountPath] = local
		}
	}
	env := []string{"POD_IP=" + ip}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				v = p.Name
			case "metadata.namespace":
				v = p.Namespace
			case "status.podIP":
				v = ip
			}
		}
		for _, mp := range slices.Sorted(maps.Keys(mounts)) {
			if strings.HasPrefix(v, mp) {
				v = mounts[mp] + strings.TrimPrefix(v, mp)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(s.echo)
	cmd.Env, cmd.Stdout, cmd.Stderr, cmd.Dir = env, log, log, dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	go func() { _ = cmd.Wait(); log.Close() }()
	s.mu.Lock()
	s.procs[string(p.UID)] = cmd
	s.mu.Unlock()
	return nil
}

// stop kills a Pod's process; s.mu is held.
func (s *standIn) stop(uid string) {
	if cmd := s.procs[uid]; cmd != nil {
		_ = cmd.Process.Kill()
	}
	delete(s.procs, uid)
}

// endpointSlices writes, for every Service with a selector, one EndpointSlice of its Ready
// Pods, as the EndpointSlice controller would (numeric target ports; named ones are
// looked up in the Pod's container ports).
func (s *standIn) endpointSlices(ctx context.Context, pods []corev1.Pod) error {
	svcs, err := s.c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if len(svc.Spec.Selector) == 0 {
			continue // the test manages its EndpointSlices itself
		}
		want := s.slice(svc, pods)
		cur, err := s.c.DiscoveryV1().EndpointSlices(svc.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = s.c.DiscoveryV1().EndpointSlices(svc.Namespace).Create(ctx, want, metav1.CreateOptions{})
		case err == nil && !sameEndpoints(cur, want):
			want.ResourceVersion = cur.ResourceVersion
			_, err = s.c.DiscoveryV1().EndpointSlices(svc.Namespace).Update(ctx, want, metav1.UpdateOptions{})
		}
		if err != nil && !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("endpointslice %s/%s: %w", svc.Namespace, want.Name, err)
		}
	}
	return nil
}

func (s *standIn) slice(svc *corev1.Service, pods []corev1.Pod) *discoveryv1.EndpointSlice {
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name + "-standin", Namespace: svc.Namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: "standin.milvus-lb.test",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{},
	}
	var first *corev1.Pod
	yes := true
	for i := range pods {
		p := &pods[i]
		if p.Namespace != svc.Namespace || p.Status.PodIP == "" || !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		if first == nil {
			first = p
		}
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{p.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{Ready: &yes, Serving: &yes},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		})
	}
	for _, sp := range svc.Spec.Ports {
		port := sp.TargetPort.IntVal
		if sp.TargetPort.StrVal != "" && first != nil {
			for _, c := range first.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == sp.TargetPort.StrVal {
						port = cp.ContainerPort
					}
				}
			}
		}
		if port == 0 {
			port = sp.Port
		}
		name, proto := sp.Name, sp.Protocol
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port, AppProtocol: sp.AppProtocol})
	}
	return es
}

// sameEndpoints: the slice's addresses and ports are already what want says.
func sameEndpoints(cur, want *discoveryv1.EndpointSlice) bool {
	key := func(es *discoveryv1.EndpointSlice) string {
		var b strings.Builder
		for _, e := range es.Endpoints {
			fmt.Fprintf(&b, "%v;", e.Addresses)
		}
		for _, p := range es.Ports {
			ap := ""
			if p.AppProtocol != nil {
				ap = *p.AppProtocol
			}
			fmt.Fprintf(&b, "%s/%d/%s;", *p.Name, *p.Port, ap)
		}
		return b.String()
	}
	return key(cur) == key(want)
}
