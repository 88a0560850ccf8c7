package source

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
)

// DefaultControllerNamespace is where the controller runs and where `cert import` stores
// certificates, as in deploy/.
const DefaultControllerNamespace = "milvus-lb-system"

// DefaultDebounce is how long Kube gathers changes before it builds a snapshot: long enough
// to fold the burst of events one `kubectl apply` or a rolling update makes into one apply,
// short enough that an endpoint change is served well within a second.
const DefaultDebounce = 100 * time.Millisecond

// KubeOptions configure the Kubernetes source.
type KubeOptions struct {
	// Namespace restricts the watch to one namespace (--watch-namespace); empty watches all.
	Namespace string
	// ControllerNamespace holds the certificate Secrets that `cert import` creates; only
	// Secrets there may give an ARN to a certificate. Default DefaultControllerNamespace.
	ControllerNamespace string
	// Debounce is the coalescing window; default DefaultDebounce.
	Debounce time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Gateway, if set, watches the Gateway API objects whose CRDs the API server serves
	// (looked up once, when Run starts).
	Gateway dynamic.Interface
}

// Kube is the controller-mode source: it watches Ingress, IngressClass, Service,
// EndpointSlice and Secret objects with client-go informers and hands translation a
// snapshot of their caches after every burst of changes. The caches are each up to date
// with their own watch, not with one another: a Service and its new EndpointSlice may
// arrive in consecutive snapshots, which translation handles like any other change.
//
// Run may be called once. Ingress may be called concurrently with Run.
type Kube struct {
	opts KubeOptions
	log  *slog.Logger

	factory   informers.SharedInformerFactory // Ingress, IngressClass, Service, EndpointSlice
	tlsSecret informers.SharedInformerFactory // kubernetes.io/tls Secrets in the watched namespaces
	// certSecret watches the controller namespace's certificate Secrets when the watched
	// namespace does not include it; nil otherwise.
	certSecret informers.SharedInformerFactory

	ingresses      cache.SharedIndexInformer
	ingressClasses cache.SharedIndexInformer
	services       cache.SharedIndexInformer
	slices         cache.SharedIndexInformer
	secretInformer []cache.SharedIndexInformer

	discovery discovery.DiscoveryInterface
	gateway   *gatewayWatch // nil: no Gateway API

	changed chan struct{} // capacity 1: "something changed since the last snapshot"
	once    sync.Once
}

// NewKube prepares the informers; nothing talks to the API server until Run.
func NewKube(client kubernetes.Interface, opts KubeOptions) *Kube {
	if opts.ControllerNamespace == "" {
		opts.ControllerNamespace = DefaultControllerNamespace
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	k := &Kube{opts: opts, log: opts.Logger, changed: make(chan struct{}, 1), discovery: client.Discovery()}

	ns := []informers.SharedInformerOption{informers.WithTransform(k.transform)}
	if opts.Namespace != "" {
		ns = append(ns, informers.WithNamespace(opts.Namespace))
	}
	// No periodic resync: the informers' watches are the source of truth, and a resync
	// would only rebuild an identical snapshot.
	k.factory = informers.NewSharedInformerFactoryWithOptions(client, 0, ns...)
	k.ingresses = k.factory.Networking().V1().Ingresses().Informer()
	k.ingressClasses = k.factory.Networking().V1().IngressClasses().Informer()
	k.services = k.factory.Core().V1().Services().Informer()
	k.slices = k.factory.Discovery().V1().EndpointSlices().Informer()

	k.watchSecrets(client, ns)
	k.handleEvents()
	return k
}

// watchSecrets makes the informers of the Secrets: the TLS ones of the watched
// namespaces, and, when those are not the controller's, the controller's imported
// certificates.
func (k *Kube) watchSecrets(client kubernetes.Interface, ns []informers.SharedInformerOption) {
	// Secrets hold every credential of the cluster; caching only the TLS ones keeps
	// tokens and passwords out of this process's memory.
	tlsOnly := informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS)).String()
	})
	k.tlsSecret = informers.NewSharedInformerFactoryWithOptions(client, 0, append(slices.Clone(ns), tlsOnly)...)
	k.secretInformer = append(k.secretInformer, k.tlsSecret.Core().V1().Secrets().Informer())
	if k.opts.Namespace != "" && k.opts.Namespace != k.opts.ControllerNamespace {
		k.certSecret = informers.NewSharedInformerFactoryWithOptions(client, 0,
			informers.WithNamespace(k.opts.ControllerNamespace),
			informers.WithTransform(k.transform),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.LabelSelector = certs.CertificateIDLabel
			}))
		k.secretInformer = append(k.secretInformer, k.certSecret.Core().V1().Secrets().Informer())
	}
}

// handleEvents makes every change of a watched object a notification (k.changed), but
// for the Ingresses' own status writes, and logs failed watches.
func (k *Kube) handleEvents() {
	notify := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { k.notify() },
		UpdateFunc: func(any, any) { k.notify() },
		DeleteFunc: func(any) { k.notify() },
	}
	for _, inf := range append([]cache.SharedIndexInformer{k.ingressClasses, k.services, k.slices}, k.secretInformer...) {
		inf.AddEventHandler(notify)
	}
	k.ingresses.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { k.notify() },
		UpdateFunc: func(oldObj, newObj any) {
			// Our own status writes come back as updates; they change nothing that
			// translation reads, and rebuilding for them would double the work.
			o, ok1 := oldObj.(*networkingv1.Ingress)
			n, ok2 := newObj.(*networkingv1.Ingress)
			if ok1 && ok2 && statusOnly(o, n) {
				return
			}
			k.notify()
		},
		DeleteFunc: func(any) { k.notify() },
	})
	for _, inf := range k.informers() {
		name := inf.kind
		inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			// Forbidden here almost always means the ClusterRole of deploy/ is missing
			// or the wrong ServiceAccount is bound; the controller stays not ready.
			k.log.Warn("kubernetes watch failed; retrying", "kind", name, "err", err)
		})
	}
}

type namedInformer struct {
	cache.SharedIndexInformer
	kind string
}

func (k *Kube) informers() []namedInformer {
	out := []namedInformer{
		{k.ingresses, "Ingress"},
		{k.ingressClasses, "IngressClass"},
		{k.services, "Service"},
		{k.slices, "EndpointSlice"},
	}
	for _, inf := range k.secretInformer {
		out = append(out, namedInformer{inf, "Secret"})
	}
	if k.gateway != nil {
		for _, gk := range gatewayKinds {
			if inf := k.gateway.informers[gk.kind]; inf != nil {
				out = append(out, namedInformer{inf, gk.kind})
			}
		}
		if k.gateway.namespaces != nil {
			out = append(out, namedInformer{k.gateway.namespaces, "Namespace"})
		}
	}
	return out
}

// statusOnly reports whether an Ingress update changed nothing but its status.
// metadata.generation moves with every spec change.
func statusOnly(o, n *networkingv1.Ingress) bool {
	return o.Generation == n.Generation && o.Generation != 0 &&
		maps.Equal(o.Annotations, n.Annotations) && maps.Equal(o.Labels, n.Labels) &&
		o.DeletionTimestamp.Equal(n.DeletionTimestamp)
}

// transform runs on every object before it is cached.
func (k *Kube) transform(obj any) (any, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return obj, nil // a cache.DeletedFinalStateUnknown tombstone
	}
	// managedFields is often the biggest part of an object and nothing here reads it.
	m.SetManagedFields(nil)
	if s, ok := obj.(*corev1.Secret); ok && s.Namespace != k.opts.ControllerNamespace {
		if _, claims := s.Annotations[certs.CertificateARNAnnotation]; claims {
			// Only the controller namespace, where `cert import` writes and which only
			// cluster admins should be able to write, may say which certificate an ARN
			// is. Anyone who may create a Secret elsewhere would otherwise be able to
			// serve their own certificate for someone else's Ingress.
			a := maps.Clone(s.Annotations)
			delete(a, certs.CertificateARNAnnotation)
			s.Annotations = a
		}
	}
	return obj, nil
}

func (k *Kube) notify() {
	select {
	case k.changed <- struct{}{}:
	default:
	}
}

// Run starts the informers, waits until their caches are filled, applies the first
// snapshot, and then applies a new one at most Debounce after any change, until ctx is
// done. apply is called from one goroutine at a time, never concurrently. The objects it
// receives are shared with the informer caches and must not be modified.
//
// Run returns nil when ctx is canceled, after every informer goroutine has ended.
func (k *Kube) Run(ctx context.Context, apply func(ingress.Objects, config.Problems)) error {
	started := false
	k.once.Do(func() { started = true })
	if !started {
		return errors.New("kube source: Run called twice")
	}
	k.watchGateway()
	factories := k.factories()
	stop := make(chan struct{})
	for _, f := range factories {
		f.Start(stop)
	}
	defer func() {
		close(stop)
		for _, f := range factories {
			f.Shutdown() // waits for the informer goroutines
		}
	}()
	if !k.waitSynced(ctx) {
		return nil // ctx canceled before the first snapshot
	}
	// Drain the notifications of the initial lists: the first snapshot covers them.
	select {
	case <-k.changed:
	default:
	}
	apply(k.Snapshot(), nil)
	k.applyChanges(ctx, apply)
	return nil
}

// informerFactory is what Run starts and shuts down: client-go's informer factories.
type informerFactory interface {
	Start(<-chan struct{})
	Shutdown()
}

// watchGateway makes the Gateway API's informers when the Gateway API is served and its
// CRDs are installed (k.gateway; nil otherwise). The CRDs are looked up once: a cluster
// that installs them later needs a restart, as the log says.
func (k *Kube) watchGateway() {
	if k.opts.Gateway == nil {
		return
	}
	if k.gateway = k.newGatewayWatch(k.opts.Gateway, GatewayResources(k.discovery)); k.gateway == nil {
		k.log.Info("the Gateway API CRDs are not installed; only Ingresses are served (restart after installing them)")
	}
}

// factories are the informer factories to start: the Ingresses' and their objects', the
// Secrets', and the Gateway API's when watchGateway made them.
func (k *Kube) factories() []informerFactory {
	factories := []informerFactory{k.factory, k.tlsSecret}
	if k.certSecret != nil {
		factories = append(factories, k.certSecret)
	}
	if k.gateway != nil {
		factories = append(factories, k.gateway.factory)
		if k.gateway.nsFactory != nil {
			factories = append(factories, k.gateway.nsFactory)
		}
	}
	return factories
}

// waitSynced waits for every informer's first list; false if ctx ended first.
func (k *Kube) waitSynced(ctx context.Context) bool {
	begin := time.Now()
	synced := make([]cache.InformerSynced, 0, 8)
	for _, inf := range k.informers() {
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return false
	}
	k.log.Info("kubernetes caches synced", "namespace", k.namespaceForLog(), "took", time.Since(begin).Round(time.Millisecond))
	return true
}

// applyChanges applies a snapshot Debounce after each change until ctx ends. The window
// starts at the first change and is not extended by later ones, so a steady stream of
// endpoint updates still gets applied every Debounce.
func (k *Kube) applyChanges(ctx context.Context, apply func(ingress.Objects, config.Problems)) {
	timer := time.NewTimer(k.opts.Debounce)
	timer.Stop() // armed at the first change; since Go 1.23 a stopped timer delivers nothing stale
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.changed:
		}
		timer.Reset(k.opts.Debounce)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		select {
		case <-k.changed: // folded into this snapshot
		default:
		}
		apply(k.Snapshot(), nil)
	}
}

func (k *Kube) namespaceForLog() string {
	if k.opts.Namespace == "" {
		return "(all)"
	}
	return k.opts.Namespace
}

// Snapshot lists the informer caches into Objects, each kind sorted by namespace and name
// so that the same cluster state always gives the same input.
func (k *Kube) Snapshot() ingress.Objects {
	objs := ingress.Objects{
		Ingresses:      list[*networkingv1.Ingress](k.ingresses),
		IngressClasses: list[*networkingv1.IngressClass](k.ingressClasses),
		Services:       list[*corev1.Service](k.services),
		EndpointSlices: list[*discoveryv1.EndpointSlice](k.slices),
		// Only Secrets of the controller namespace may carry an ARN (see transform).
		CertificateStore: "namespace " + k.opts.ControllerNamespace,
	}
	seen := map[string]bool{}
	for _, inf := range k.secretInformer {
		for _, s := range list[*corev1.Secret](inf) {
			if key := s.Namespace + "/" + s.Name; !seen[key] {
				seen[key] = true
				objs.Secrets = append(objs.Secrets, s)
			}
		}
	}
	sortObjects(objs.Secrets)
	k.gateway.snapshot(&objs)
	return objs
}

// Ingress returns the cached Ingress namespace/name, for the status Reporter.
func (k *Kube) Ingress(namespace, name string) (*networkingv1.Ingress, bool) {
	obj, ok, err := k.ingresses.GetIndexer().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	ing, ok := obj.(*networkingv1.Ingress)
	return ing, ok
}

func list[T metav1.Object](inf cache.SharedIndexInformer) []T {
	items := inf.GetIndexer().List()
	out := make([]T, 0, len(items))
	for _, it := range items {
		if v, ok := it.(T); ok {
			out = append(out, v)
		}
	}
	sortObjects(out)
	return out
}

func sortObjects[T metav1.Object](objs []T) {
	slices.SortFunc(objs, func(a, b T) int {
		if c := strings.Compare(a.GetNamespace(), b.GetNamespace()); c != 0 {
			return c
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
}
