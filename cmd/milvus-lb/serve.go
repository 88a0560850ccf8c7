package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/milvus-lb/milvus-lb/internal/admin"
	"github.com/milvus-lb/milvus-lb/internal/bufs"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/dataplane"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/listener"
	"github.com/milvus-lb/milvus-lb/internal/procmem"
	"github.com/milvus-lb/milvus-lb/internal/reload"
	"github.com/milvus-lb/milvus-lb/internal/source"
	"github.com/milvus-lb/milvus-lb/internal/threads"
	"github.com/milvus-lb/milvus-lb/internal/tlsbuf"
	"github.com/milvus-lb/milvus-lb/internal/tracing"
)

// dataPlaneOptions are shared by serve and controller.
type dataPlaneOptions struct {
	AdminAddr        string
	AdvertiseAddress string
	Classes          []string
	Listener         listener.Options
	Limits           call.Limits
	LogLevel         string
	RejectOnError    bool // reload.Options.RejectOnError
	Observe          observeOptions
	Trace            traceOptions
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
	addObserveFlags(f, &o.Observe)
	addTraceFlags(f, &o.Trace)
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
			if err := preflightServe(cmd, files, store, o.Classes); err != nil {
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
// cannot be opened. status, if set, sees every model that was applied (the controller's
// status writer).
func runDataPlane(ctx context.Context, src reload.Source, o dataPlaneOptions, status func(*config.Model, config.Problems)) error {
	logger := newLogger(o.LogLevel)
	if !tlsbuf.Supported { // serving as before, with more memory per connection: say why
		logger.Warn("crypto/tls's record buffers are kept by idle connections: this Go release's tls.Conn is not the layout internal/tlsbuf knows", "go", runtime.Version())
	}
	go procmem.TuneGC(ctx)
	go threads.Run(ctx, logger)
	go bufs.TrimEvery(ctx, bufs.TrimPeriod)
	if o.AdvertiseAddress == "" {
		o.AdvertiseAddress = hostAddress()
	}
	tracer, stopTracing, err := startTracing(ctx, o.Trace, logger)
	if err != nil {
		return err
	}
	defer stopTracing()
	dp := dataplane.New(dataplane.Options{Listener: o.Listener, Limits: o.Limits, Log: logger, Trace: tracer.StartTrace})
	defer dp.Close(0)
	obs, live, err := observe(dp, o.Observe, tracer)
	if err != nil {
		return err
	}
	defer obs.Close()
	metrics := obs.Metrics

	adminLn, err := o.Listener.Listen("tcp", o.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin server: %w", err)
	}
	pipe := reload.New(reload.Options{
		Gateway: dp.Gateway, Translate: ingress.Options{Classes: o.Classes}, RejectOnError: o.RejectOnError,
		Metrics: metrics, Log: logger, Status: status,
		Ready: func(*gateway.Snapshot) {
			logger.Info("serving", "address", o.AdvertiseAddress, "ports", dp.Listeners.Ports(), "admin", adminLn.Addr().String())
			releaseStartupPages(logger)
			if o.Ready != nil {
				o.Ready(adminLn.Addr())
			}
		},
	})
	var draining atomic.Bool
	adminSrv := &http.Server{
		Handler: (&admin.Server{Gateway: dp.Gateway, Metrics: metrics, Rejected: pipe.Rejected,
			Address: o.AdvertiseAddress, Ports: dp.Listeners.Ports, Live: live, Registry: dp.Registry,
			Draining: draining.Load}).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = adminSrv.Serve(adminLn) }()
	defer adminSrv.Close()

	if err := pipe.Run(ctx, src); err != nil {
		if start, ok := errors.AsType[*reload.StartError](err); ok {
			fmt.Fprint(os.Stderr, start.Result.Problems.Report())
		}
		return err
	}
	limit := drainLimit(dp.Gateway.Current())
	draining.Store(true)
	logger.Info("draining: no new connections, GOAWAY sent, waiting for calls in flight", "limit", limit)
	dp.Close(limit)
	logger.Info("drained; exiting")
	return nil
}

// observe starts what every call's record goes to (the metrics and the access log, the
// live view of the admin page, the tracer when tracing is on) and gives it to the data
// plane; the caller closes what it returns.
func observe(dp *dataplane.Plane, o observeOptions, tracer *tracing.Tracer) (*observers, *admin.Live, error) {
	obs, err := o.start(dp.Gateway, dp.Registry)
	if err != nil {
		return nil, nil, err
	}
	obs.Metrics.Registry.MustRegister(admin.ConnCollector(dp.Listeners.ConnStats))
	obs.Metrics.Registry.MustRegister(dp.Mirror)
	live := admin.NewLive()
	all := call.Observers{obs, live}
	if tracer != nil {
		all = append(all, tracer)
	}
	dp.SetObserver(all)
	return obs, live, nil
}

// releaseStartupPages drops from the resident set the executable's pages the start
// touched (package initialisation, the first configuration): most are never used again
// while serving, and they were most of the resident set; they stay in the page cache
// (internal/procmem).
func releaseStartupPages(logger *slog.Logger) {
	before, after, err := procmem.ReleaseStartupPages()
	if err != nil {
		logger.Debug("start-up pages not released", "error", err)
		return
	}
	logger.Info("released the executable's start-up pages", "file_backed_mib_before", before.File>>20, "file_backed_mib_after", after.File>>20, "anonymous_mib", after.Anon>>20)
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
