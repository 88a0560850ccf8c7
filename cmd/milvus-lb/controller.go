package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/source"
)

// controllerOptions are the controller's own flags; the data plane's are in
// dataPlaneOptions.
type controllerOptions struct {
	Kubeconfig          string
	WatchNamespace      string
	ControllerNamespace string
	ServiceName         string
	LeaderElect         bool
	LeaderNamespace     string
	LeaseDuration       time.Duration
	RenewDeadline       time.Duration
	RetryPeriod         time.Duration
}

func newControllerCmd() *cobra.Command {
	var (
		o  dataPlaneOptions
		co controllerOptions
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run as a Kubernetes Ingress controller: watch the API server, serve, and write Ingress status",
		Long: `controller watches Ingress, IngressClass, Service, EndpointSlice and Secret objects in a
Kubernetes API server and serves the Ingresses of its classes exactly as "serve" serves them
from files, balancing across the ready EndpointSlice endpoints (pod IPs). It writes each
served Ingress's status.loadBalancer (the ADDRESS of "kubectl get ingress") and records
Events for problems and successful reconciles. When the Gateway API CRDs are installed, it
also serves the Gateways of GatewayClasses with controllerName
milvus-lb.io/gateway-controller with their GRPCRoutes and HTTPRoutes, and writes their
status. All replicas serve; with --leader-elect only
the holder of a coordination.k8s.io Lease writes status and Events.

In a pod it uses the in-cluster configuration and reads POD_NAME, POD_NAMESPACE and POD_IP
(the downward API, as in deploy/); elsewhere pass --kubeconfig.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runController(cmd.Context(), o, co)
		},
	}
	addDataPlaneFlags(cmd, &o)
	f := cmd.Flags()
	f.Lookup("advertise-address").Usage = "IP or hostname written into Ingress status as ADDRESS (default: the load-balancer address of --service-name, else POD_IP)"
	f.StringVar(&co.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster configuration)")
	f.StringVar(&co.WatchNamespace, "watch-namespace", "", "watch only this namespace (default: all)")
	f.StringVar(&co.ControllerNamespace, "controller-namespace", envOr("POD_NAMESPACE", source.DefaultControllerNamespace),
		"namespace of the controller's Service, leader Lease and imported certificates")
	f.StringVar(&co.ServiceName, "service-name", source.DefaultServiceName, "the controller's own Service, whose load-balancer address is the default ADDRESS")
	f.BoolVar(&co.LeaderElect, "leader-elect", false, "elect one replica to write status and Events (all replicas serve)")
	f.StringVar(&co.LeaderNamespace, "leader-election-namespace", "", "namespace of the leader Lease (default: --controller-namespace)")
	f.DurationVar(&co.LeaseDuration, "leader-election-lease-duration", 15*time.Second, "how long a leader's Lease lasts without renewal: the longest takeover after a crash")
	f.DurationVar(&co.RenewDeadline, "leader-election-renew-deadline", 10*time.Second, "how long the leader keeps retrying to renew before it gives up")
	f.DurationVar(&co.RetryPeriod, "leader-election-retry-period", 2*time.Second, "interval between Lease acquire and renew attempts")
	return cmd
}

func runController(ctx context.Context, o dataPlaneOptions, co controllerOptions) error {
	logger := newLogger(o.LogLevel)
	// client-go logs through klog; send it where everything else goes.
	klog.SetSlogLogger(logger)

	cfg, err := restConfig(co.Kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	// The Gateway API objects are read through a dynamic client: their CRDs are the
	// user's to install, and without them only Ingresses are served.
	gwClient, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}

	src := source.NewKube(client, source.KubeOptions{
		Namespace:           co.WatchNamespace,
		ControllerNamespace: co.ControllerNamespace,
		Logger:              logger,
		Gateway:             gwClient,
	})
	statusOpts := source.StatusOptions{
		AdvertiseAddress:    o.AdvertiseAddress,
		ControllerNamespace: co.ControllerNamespace,
		ServiceName:         co.ServiceName,
		PodIP:               os.Getenv("POD_IP"),
		Identity:            os.Getenv("POD_NAME"),
		Logger:              logger,
		Gateway:             gwClient,
	}
	if statusOpts.LeaderElection, err = co.leaderElection(); err != nil {
		return err
	}
	reporter := source.NewReporter(client, src, statusOpts)

	// The reporter stops as soon as the drain starts (ctx is canceled by the signal);
	// the data plane keeps serving calls in flight until they finish.
	repCtx, stopReporter := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := reporter.Run(repCtx); err != nil {
			logger.Error("status reporter stopped", "err", err)
		}
	}()
	defer wg.Wait()
	defer stopReporter()

	// A broken Ingress loses only its own routes: RejectOnError stays false.
	return runDataPlane(ctx, src, o, reporter.Report)
}

// leaderElection is the status writers' election as the flags set it; nil when it is
// off.
func (co controllerOptions) leaderElection() (*source.LeaderElection, error) {
	if !co.LeaderElect {
		return nil, nil
	}
	// client-go's own rule (leaderelection.NewLeaderElector), checked here so that a bad
	// flag stops the start instead of silently disabling status writes.
	if !(co.LeaseDuration > co.RenewDeadline && co.RenewDeadline > time.Duration(1.2*float64(co.RetryPeriod))) {
		return nil, fmt.Errorf("leader election needs --leader-election-lease-duration > --leader-election-renew-deadline > 1.2 × --leader-election-retry-period (got %s, %s, %s)",
			co.LeaseDuration, co.RenewDeadline, co.RetryPeriod)
	}
	return &source.LeaderElection{
		Namespace:     co.LeaderNamespace,
		LeaseDuration: co.LeaseDuration,
		RenewDeadline: co.RenewDeadline,
		RetryPeriod:   co.RetryPeriod,
		// On SIGTERM the data plane drains for up to the deregistration delay; status
		// writing need not wait for that, so hand the Lease over at once.
		ReleaseOnCancel: true,
	}, nil
}

// restConfig loads kubeconfig, or the in-cluster configuration when it is empty.
func restConfig(kubeconfig string) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
	} else {
		cfg, err = rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			return nil, errors.New("not running in a Kubernetes pod: pass --kubeconfig FILE")
		}
		if err != nil {
			return nil, fmt.Errorf("in-cluster configuration: %w", err)
		}
	}
	cfg.UserAgent = "milvus-lb"
	// client-go's default of 5 QPS makes the first status writes of a cluster with many
	// Ingresses take minutes.
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// importToCluster stores c as the kubernetes.io/tls Secret that the controller resolves
// c.ARN to (certs.ToSecret), in namespace (the controller's, milvus-lb-system by default),
// creating or replacing it. For `milvus-lb cert import --kubeconfig F [--namespace NS]`.
func importToCluster(ctx context.Context, kubeconfig, namespace string, c *certs.Certificate) error {
	if namespace == "" {
		namespace = source.DefaultControllerNamespace
	}
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	want := certs.ToSecret(c, namespace)
	secrets := client.CoreV1().Secrets(namespace)
	_, err = secrets.Create(ctx, want, metav1.CreateOptions{FieldManager: "milvus-lb"})
	if apierrors.IsAlreadyExists(err) {
		// The same certificate imported again (the ID comes from the certificate), or
		// a Secret left from an earlier import: make it exactly what ToSecret says.
		var cur *corev1.Secret
		cur, err = secrets.Get(ctx, want.Name, metav1.GetOptions{})
		if err == nil {
			upd := cur.DeepCopy()
			upd.Type, upd.Data, upd.StringData = want.Type, want.Data, nil
			upd.Labels = mergeMap(upd.Labels, want.Labels)
			upd.Annotations = mergeMap(upd.Annotations, want.Annotations)
			_, err = secrets.Update(ctx, upd, metav1.UpdateOptions{FieldManager: "milvus-lb"})
		}
	}
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %s not found: install the controller first (kubectl apply -f deploy/) or pass --namespace", namespace)
	}
	if err != nil {
		return fmt.Errorf("store certificate %s as Secret %s/%s: %w", c.ARN, namespace, want.Name, err)
	}
	return nil
}

func mergeMap(dst, src map[string]string) map[string]string {
	if dst == nil {
		dst = map[string]string{}
	}
	for k, v := range src {
		dst[k] = v
	}
	return dst
}
