package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/milvus-lb/milvus-lb/internal/admin"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/dataplane"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/listener"
	"github.com/milvus-lb/milvus-lb/internal/source"
)

// objectSource is where Kubernetes objects come from: files (serve) or an API server
// (controller). Run calls apply with every new set of objects until ctx ends.
type objectSource interface {
	Run(ctx context.Context, apply func(ingress.Objects, config.Problems)) error
}

// dataPlaneOptions are shared by serve and controller.
type dataPlaneOptions struct {
	AdminAddr        string
	AdvertiseAddress string
	Classes          []string
	Listener         listener.Options
	Limits           call.Limits
	LogLevel         string
	// RejectOnError keeps the previous configuration whole when a new one has any error
	// (file mode: an edit is all or nothing). Without it, a broken Ingress only loses its
	// own routes (controller mode: one team's mistake must not stall the others).
	RejectOnError bool
	// Ready, if set, is called once the first configuration is serving.
	Ready func(adminAddr net.Addr)
}

func addDataPlaneFlags(cmd *cobra.Command, o *dataPlaneOptions) {
	f := cmd.Flags()
	o.Listener = listener.DefaultOptions()
	o.Limits = call.DefaultLimits()
	f.StringVar(&o.AdminAddr, "admin-addr", "127.0.0.1:9901", "address of the admin server (status page, /metrics, get ingress API, pprof); loopback by default")
	f.StringVar(&o.AdvertiseAddress, "advertise-address", "", "address clients connect to, shown as ADDRESS (default: this host's first non-loopback IP)")
	f.StringSliceVar(&o.Classes, "ingress-class", ingress.DefaultClasses, "IngressClass names to serve")
	f.StringVar(&o.Listener.BindAddress, "bind-address", "", "host to bind listener ports on (default: all interfaces)")
	f.Uint32Var(&o.Listener.MaxConcurrentStreams, "max-concurrent-streams", o.Listener.MaxConcurrentStreams, "HTTP/2 streams per client connection")
	f.DurationVar(&o.Listener.HandshakeTimeout, "handshake-timeout", o.Listener.HandshakeTimeout, "limit for a TLS handshake and HTTP/1.1 request headers")
	f.StringVar(&o.LogLevel, "log-level", "info", "debug, info, warn or error")
	addLimitFlags(f, o)
}

func newServeCmd() *cobra.Command {
	var (
		o        dataPlaneOptions
		files    []string
		stateDir string
		restart  restartOptions
	)
	cmd := &cobra.Command{
		Use:   "serve -f FILE [-f FILE...]",
		Short: "Serve the Ingresses in Kubernetes manifest files, reloading them when they change",
		Long: `serve reads Ingress, IngressClass, Service, EndpointSlice/Endpoints and Secret objects
from YAML or JSON files (multi-document; a directory means every manifest in it), plus the
certificates imported with "milvus-lb cert import", and serves them. Edits are applied when
the files change; an edit with errors is reported and the previous configuration keeps
serving. SIGTERM drains: listeners stop accepting, HTTP/2 clients get GOAWAY, and in-flight
calls may finish within the backends' deregistration delay. SIGHUP restarts in place: the
executable at the same path takes over the listening sockets, then this process drains.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("serve needs at least one -f FILE")
			}
			store, err := openStore(stateDir)
			if err != nil {
				return err
			}
			o.RejectOnError = true
			logger := newLogger(o.LogLevel)
			ctx, err := withRestarts(cmd.Context(), &o, restart)
			if err != nil {
				return err
			}
			return runDataPlane(ctx, source.NewFiles(files, store, logger), o, nil)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file or directory (repeatable)")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "state directory holding imported certificates (default "+defaultStateDirHelp()+")")
	addDataPlaneFlags(cmd, &o)
	addRestartFlags(cmd, &restart)
	return cmd
}

func openStore(dir string) (*certs.Store, error) {
	if dir == "" {
		d, err := certs.DefaultStateDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	return certs.NewStore(dir), nil
}

func defaultStateDirHelp() string {
	if d, err := certs.DefaultStateDir(); err == nil {
		return d
	}
	return "$XDG_STATE_HOME/milvus-lb"
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// runDataPlane serves what src provides until ctx ends, then drains. It returns an error
// if the first configuration cannot be served (after printing its problems) or a socket
// cannot be opened. onApplied, if set, sees every model that was applied (for the
// controller's status writer).
func runDataPlane(ctx context.Context, src objectSource, o dataPlaneOptions, onApplied func(*config.Model, config.Problems)) error {
	logger := newLogger(o.LogLevel)
	if o.AdvertiseAddress == "" {
		o.AdvertiseAddress = hostAddress()
	}
	dp := dataplane.New(dataplane.Options{Listener: o.Listener, Limits: o.Limits, Log: logger})
	defer dp.Close(0)
	gw, lm := dp.Gateway, dp.Listeners
	metrics := admin.NewMetrics(gw, dp.Registry)
	metrics.Registry.MustRegister(admin.ConnCollector(lm.ConnStats))
	dp.SetObserver(metrics)

	adminLn, err := o.Listener.Listen("tcp", o.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin server: %w", err)
	}
	adminSrv := &http.Server{
		Handler:           (&admin.Server{Gateway: gw, Metrics: metrics, Address: o.AdvertiseAddress, Ports: lm.Ports}).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = adminSrv.Serve(adminLn) }()
	defer adminSrv.Close()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	first := true
	apply := func(objs ingress.Objects, srcProblems config.Problems) {
		model, problems := ingress.Translate(objs, ingress.Options{Classes: o.Classes})
		all := append(append(config.Problems{}, srcProblems...), problems...)
		all.Sort()
		errs := all.Errors()
		for _, p := range all {
			lvl := slog.LevelWarn
			if p.Severity == config.Error {
				lvl = slog.LevelError
			}
			logger.Log(ctx, lvl, "configuration problem", "problem", p.String())
		}
		var applyErr error
		if o.RejectOnError && len(errs) > 0 {
			applyErr = fmt.Errorf("configuration has %d error(s)", len(errs))
		} else if _, err := gw.Apply(ctx, model, all); err != nil {
			applyErr = err
		}
		if applyErr != nil {
			metrics.Reloaded(false)
			if first {
				fmt.Fprint(os.Stderr, all.Report())
				cancel(fmt.Errorf("refusing to start: %w", applyErr))
				return
			}
			logger.Error("configuration rejected; the previous one keeps serving", "error", applyErr)
			return
		}
		metrics.Reloaded(true)
		snap := gw.Current()
		logger.Info("configuration applied", "generation", snap.Generation, "listeners", lm.Ports(),
			"backends", len(snap.Backends), "warnings", len(all)-len(errs), "errors", len(errs))
		if first {
			first = false
			logger.Info("serving", "address", o.AdvertiseAddress, "ports", lm.Ports(), "admin", adminLn.Addr().String())
			if o.Ready != nil {
				o.Ready(adminLn.Addr())
			}
		}
		if onApplied != nil {
			onApplied(model, all)
		}
	}

	srcDone := make(chan error, 1)
	go func() { srcDone <- src.Run(ctx, apply) }()
	select {
	case <-ctx.Done():
	case err := <-srcDone:
		if err != nil && ctx.Err() == nil {
			cancel(err)
		}
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		dp.Close(0)
		return cause
	}
	limit := drainLimit(gw.Current())
	logger.Info("draining: no new connections, GOAWAY sent, waiting for calls in flight", "limit", limit)
	dp.Close(limit)
	logger.Info("drained; exiting")
	return nil
}

// drainLimit is the longest deregistration delay of the backends in force: the most any
// call in flight may keep the balancer alive after SIGTERM.
func drainLimit(s *gateway.Snapshot) time.Duration {
	var limit time.Duration
	for _, b := range s.Backends {
		limit = max(limit, b.DeregistrationDelay.D())
	}
	if limit == 0 && len(s.Backends) == 0 {
		limit = 5 * time.Second
	}
	return limit
}

// hostAddress is the default ADDRESS: the first non-loopback unicast IP of this host, or
// the loopback address when there is none.
func hostAddress() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		var v6 string
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			if ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
			if v6 == "" {
				v6 = ipn.IP.String()
			}
		}
		if v6 != "" {
			return v6
		}
	}
	return "127.0.0.1"
}
