package source

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
)

// Event reasons, as the AWS Load Balancer Controller names them, so that alerts and
// habits built on `kubectl describe ingress` carry over.
const (
	ReasonFailedBuildModel       = "FailedBuildModel"
	ReasonSuccessfullyReconciled = "SuccessfullyReconciled"
)

// EventComponent is the source.component of the Events the Reporter records.
const EventComponent = "milvus-lb"

// DefaultServiceName is the controller's own Service in deploy/, whose load-balancer
// address becomes the Ingresses' ADDRESS when --advertise-address is not given.
const DefaultServiceName = "milvus-lb"

// IngressGetter returns an Ingress from a cache. Kube implements it.
type IngressGetter interface {
	Ingress(namespace, name string) (*networkingv1.Ingress, bool)
}

// LeaderElection configures the Lease that decides which replica writes status and
// records Events. Zero durations take client-go's customary 15 s / 10 s / 2 s.
type LeaderElection struct {
	Namespace string // default StatusOptions.ControllerNamespace
	Name      string // default "milvus-lb-leader"

	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// ReleaseOnCancel gives up the Lease when Run's context ends, so that a replica that
	// shuts down cleanly hands over at once instead of after LeaseDuration.
	ReleaseOnCancel bool
}

// StatusOptions configure the Reporter.
type StatusOptions struct {
	// AdvertiseAddress is the IP or hostname to write into status; if empty, the
	// load-balancer address of the Service ControllerNamespace/ServiceName, else PodIP.
	AdvertiseAddress    string
	ControllerNamespace string // default DefaultControllerNamespace
	ServiceName         string // default DefaultServiceName
	PodIP               string
	// Identity names this replica in the Lease and in Events; default hostname plus a
	// random suffix. Replicas must not share one.
	Identity string
	// LeaderElection, if set, lets only the Lease holder write; nil means always write.
	LeaderElection *LeaderElection
	// Resync re-checks everything this often even without a new model, so that a
	// status edited by someone else, or a load-balancer address that arrived late, is
	// corrected; default one minute.
	Resync time.Duration
	Logger *slog.Logger
	// Gateway, if set, writes the status of the Gateway API objects.
	Gateway dynamic.Interface
}

// Reporter writes what the data plane serves back to the API server: the Ingresses'
// status.loadBalancer and Events for their problems and successful reconciles.
//
// Report may be called from any goroutine and never blocks on the API server; a single
// goroutine in Run does the writing, always for the latest model.
type Reporter struct {
	client   kubernetes.Interface
	getter   IngressGetter
	opts     StatusOptions
	log      *slog.Logger
	leading  atomic.Bool
	wake     chan struct{} // capacity 1
	mu       sync.Mutex
	model    *config.Model
	problems config.Problems

	// Owned by the Run goroutine.
	events      map[string]string // ns/name → signature of the last Events recorded
	lastAddrErr string
}

// NewReporter returns a Reporter that reads Ingresses from getter.
func NewReporter(client kubernetes.Interface, getter IngressGetter, opts StatusOptions) *Reporter {
	if opts.ControllerNamespace == "" {
		opts.ControllerNamespace = DefaultControllerNamespace
	}
	if opts.ServiceName == "" {
		opts.ServiceName = DefaultServiceName
	}
	if opts.Identity == "" {
		opts.Identity = defaultIdentity()
	}
	if opts.Resync <= 0 {
		opts.Resync = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Reporter{
		client: client,
		getter: getter,
		opts:   opts,
		log:    opts.Logger,
		wake:   make(chan struct{}, 1),
		events: map[string]string{},
	}
}

func defaultIdentity() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return host + "_" + hex.EncodeToString(b)
}

// Report hands the Reporter the model the data plane now serves and the problems found
// translating it. Its shape is the data plane's onApplied callback.
func (r *Reporter) Report(model *config.Model, problems config.Problems) {
	r.mu.Lock()
	r.model, r.problems = model, problems
	r.mu.Unlock()
	r.poke()
}

func (r *Reporter) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Leading reports whether this replica currently writes status.
func (r *Reporter) Leading() bool { return r.leading.Load() }

// Run writes status and Events until ctx is done, campaigning for the Lease first if
// leader election is configured. It returns nil when ctx is canceled, after its
// goroutines have ended.
func (r *Reporter) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if le := r.opts.LeaderElection; le != nil {
		cfg, err := r.electionConfig(le)
		if err != nil {
			return err
		}
		elector, err := leaderelection.NewLeaderElector(cfg) // validates the durations
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Run returns when leadership is lost; campaign again. All replicas serve
			// traffic either way: the Lease only decides who writes.
			for {
				elector.Run(ctx)
				if ctx.Err() != nil {
					return
				}
				elector, _ = leaderelection.NewLeaderElector(cfg) // valid: it was before
			}
		}()
	} else {
		r.leading.Store(true)
	}
	defer wg.Wait()

	ticker := time.NewTicker(r.opts.Resync)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-ticker.C:
		}
		if !r.leading.Load() {
			continue
		}
		r.mu.Lock()
		model, problems := r.model, r.problems
		r.mu.Unlock()
		if model != nil {
			r.reconcile(ctx, model, problems)
		}
	}
}

func (r *Reporter) electionConfig(le *LeaderElection) (leaderelection.LeaderElectionConfig, error) {
	ns, name := le.Namespace, le.Name
	if ns == "" {
		ns = r.opts.ControllerNamespace
	}
	if name == "" {
		name = "milvus-lb-leader"
	}
	dur := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, ns, name,
		r.client.CoreV1(), r.client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: r.opts.Identity})
	if err != nil {
		return leaderelection.LeaderElectionConfig{}, fmt.Errorf("leader election lock %s/%s: %w", ns, name, err)
	}
	return leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            name,
		LeaseDuration:   dur(le.LeaseDuration, 15*time.Second),
		RenewDeadline:   dur(le.RenewDeadline, 10*time.Second),
		RetryPeriod:     dur(le.RetryPeriod, 2*time.Second),
		ReleaseOnCancel: le.ReleaseOnCancel,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				r.log.Info("leading: this replica writes Ingress status", "lease", ns+"/"+name, "identity", r.opts.Identity)
				// A new leader knows nothing of what the old one recorded; it will
				// record each Ingress's current state once.
				r.leading.Store(true)
				r.poke()
			},
			OnStoppedLeading: func() {
				r.leading.Store(false)
				r.log.Info("stopped leading", "lease", ns+"/"+name, "identity", r.opts.Identity)
			},
		},
	}, nil
}

// reconcile brings every served Ingress's status to the current address and records the
// Events that changed since the last reconcile.
func (r *Reporter) reconcile(ctx context.Context, model *config.Model, problems config.Problems) {
	addrs, err := r.address(ctx)
	if err != nil {
		if msg := err.Error(); msg != r.lastAddrErr {
			r.log.Warn("no address to write into Ingress status", "err", err)
			r.lastAddrErr = msg
		}
	} else {
		r.lastAddrErr = ""
	}

	failed := map[string][]config.Problem{}
	for _, p := range problems.Errors() {
		if key, ok := strings.CutPrefix(p.Object, "Ingress "); ok {
			failed[key] = append(failed[key], p)
		}
	}

	seen := map[string]bool{}
	for _, st := range model.Ingresses {
		key := st.Namespace + "/" + st.Name
		ing, ok := r.getter.Ingress(st.Namespace, st.Name)
		if !ok {
			continue
		}
		seen[key] = true
		if errs := failed[key]; len(errs) > 0 {
			r.recordFailures(ctx, ing, errs)
			continue
		}
		if !st.Served {
			continue // another class; or served by nobody, which its class says
		}
		if addrs != nil {
			r.writeStatus(ctx, ing, withPorts(addrs, st.Ports))
		}
		if sig := fmt.Sprintf("ok generation %d", ing.Generation); r.events[key] != sig {
			if r.event(ctx, ing, corev1.EventTypeNormal, ReasonSuccessfullyReconciled, "Successfully reconciled") {
				r.events[key] = sig
			}
		}
	}
	r.reconcileGateways(ctx, model.GatewayAPI, addrs)
	for key := range r.events {
		if !seen[key] {
			delete(r.events, key) // deleted, or out of sight
		}
	}
}

func (r *Reporter) recordFailures(ctx context.Context, ing *networkingv1.Ingress, errs []config.Problem) {
	key := ing.Namespace + "/" + ing.Name
	msgs := make([]string, 0, len(errs))
	for _, p := range errs {
		m := p.Message
		if p.Field != "" {
			m = p.Field + ": " + m
		}
		msgs = append(msgs, m)
	}
	// One Event per distinct problem, and none again while the set stays the same: a
	// broken Ingress must not get a new Event every time some Pod elsewhere moves.
	sig := "failed: " + strings.Join(msgs, "\n")
	if r.events[key] == sig {
		return
	}
	ok := true
	for _, m := range msgs {
		ok = r.event(ctx, ing, corev1.EventTypeWarning, ReasonFailedBuildModel, "Failed build model due to "+m) && ok
	}
	if ok { // else try again on the next reconcile
		r.events[key] = sig
	}
}

// address is what goes into status.loadBalancer.ingress, without ports.
func (r *Reporter) address(ctx context.Context) ([]networkingv1.IngressLoadBalancerIngress, error) {
	if a := r.opts.AdvertiseAddress; a != "" {
		return []networkingv1.IngressLoadBalancerIngress{lbIngress(a)}, nil
	}
	svc, err := r.client.CoreV1().Services(r.opts.ControllerNamespace).Get(ctx, r.opts.ServiceName, metav1.GetOptions{})
	switch {
	case err == nil && svc.Spec.Type == corev1.ServiceTypeLoadBalancer && len(svc.Status.LoadBalancer.Ingress) > 0:
		var out []networkingv1.IngressLoadBalancerIngress
		for _, in := range svc.Status.LoadBalancer.Ingress {
			out = append(out, networkingv1.IngressLoadBalancerIngress{IP: in.IP, Hostname: in.Hostname})
		}
		return out, nil
	case err != nil && !apierrors.IsNotFound(err):
		if r.opts.PodIP == "" {
			return nil, fmt.Errorf("get Service %s/%s: %w", r.opts.ControllerNamespace, r.opts.ServiceName, err)
		}
	}
	if r.opts.PodIP != "" {
		return []networkingv1.IngressLoadBalancerIngress{{IP: r.opts.PodIP}}, nil
	}
	return nil, fmt.Errorf("no --advertise-address, no load-balancer address on Service %s/%s, and no pod IP (POD_IP)",
		r.opts.ControllerNamespace, r.opts.ServiceName)
}

func lbIngress(a string) networkingv1.IngressLoadBalancerIngress {
	if net.ParseIP(a) != nil {
		return networkingv1.IngressLoadBalancerIngress{IP: a}
	}
	return networkingv1.IngressLoadBalancerIngress{Hostname: a}
}

func withPorts(addrs []networkingv1.IngressLoadBalancerIngress, ports []int) []networkingv1.IngressLoadBalancerIngress {
	out := make([]networkingv1.IngressLoadBalancerIngress, len(addrs))
	for i, a := range addrs {
		out[i] = networkingv1.IngressLoadBalancerIngress{IP: a.IP, Hostname: a.Hostname}
		for _, p := range ports {
			out[i].Ports = append(out[i].Ports, networkingv1.IngressPortStatus{Port: int32(p), Protocol: corev1.ProtocolTCP})
		}
	}
	return out
}

func sameLB(a, b []networkingv1.IngressLoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y networkingv1.IngressLoadBalancerIngress) bool {
		return x.IP == y.IP && x.Hostname == y.Hostname &&
			slices.EqualFunc(x.Ports, y.Ports, func(p, q networkingv1.IngressPortStatus) bool {
				return p.Port == q.Port && p.Protocol == q.Protocol && ptrEq(p.Error, q.Error)
			})
	})
}

func ptrEq(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// writeStatus updates the status subresource when it differs from want. The cached
// Ingress may lag behind our own last write; a conflict means exactly that, so the
// second attempt starts from a fresh read.
func (r *Reporter) writeStatus(ctx context.Context, ing *networkingv1.Ingress, want []networkingv1.IngressLoadBalancerIngress) {
	api := r.client.NetworkingV1().Ingresses(ing.Namespace)
	for attempt := 0; attempt < 2; attempt++ {
		if sameLB(ing.Status.LoadBalancer.Ingress, want) {
			return
		}
		upd := ing.DeepCopy()
		upd.Status.LoadBalancer.Ingress = want
		_, err := api.UpdateStatus(ctx, upd, metav1.UpdateOptions{FieldManager: EventComponent})
		if err == nil {
			r.log.Info("wrote Ingress status", "ingress", ing.Namespace+"/"+ing.Name, "address", describeLB(want))
			return
		}
		if !apierrors.IsConflict(err) || attempt == 1 {
			if ctx.Err() == nil && !apierrors.IsNotFound(err) {
				r.log.Warn("write Ingress status", "ingress", ing.Namespace+"/"+ing.Name, "err", err)
			}
			return
		}
		if ing, err = api.Get(ctx, ing.Name, metav1.GetOptions{}); err != nil {
			return
		}
	}
}

func describeLB(lbs []networkingv1.IngressLoadBalancerIngress) string {
	var parts []string
	for _, l := range lbs {
		parts = append(parts, l.IP+l.Hostname)
	}
	return strings.Join(parts, ",")
}

// event records an Event on ing and reports whether it was written. Events are written
// directly rather than through client-go's record.EventBroadcaster: the Reporter already
// deduplicates, and a direct write ends with Run instead of in a background goroutine.
func (r *Reporter) event(ctx context.Context, ing *networkingv1.Ingress, typ, reason, msg string) bool {
	const maxMessage = 1024 // the API server rejects longer Event messages
	if len(msg) > maxMessage {
		msg = msg[:maxMessage-3] + "..."
	}
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			// The same naming client-go uses: unique per object and time.
			Name:      fmt.Sprintf("%s.%x", ing.Name, now.UnixNano()),
			Namespace: ing.Namespace,
		},
		InvolvedObject: corev1.ObjectReference{
			APIVersion:      "networking.k8s.io/v1",
			Kind:            "Ingress",
			Namespace:       ing.Namespace,
			Name:            ing.Name,
			UID:             ing.UID,
			ResourceVersion: ing.ResourceVersion,
		},
		Reason:              reason,
		Message:             msg,
		Type:                typ,
		Source:              corev1.EventSource{Component: EventComponent, Host: r.opts.Identity},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: ingress.ControllerName,
		ReportingInstance:   r.opts.Identity,
		Action:              "Reconcile",
	}
	if _, err := r.client.CoreV1().Events(ing.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		if ctx.Err() == nil {
			r.log.Warn("record Event", "ingress", ing.Namespace+"/"+ing.Name, "reason", reason, "err", err)
		}
		return false
	}
	return true
}
