package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // the fake backend's profiles (Config.BackendPprof)
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/milvus-lb/milvus-lb/bench/internal/backend"
	"github.com/milvus-lb/milvus-lb/bench/peers"
)

// Target names. Direct is the fake backend itself, in plaintext h2c: the limit.
const (
	Direct   = "direct"
	MilvusLB = "milvus-lb"
	// Baseline is a second milvus-lb, from another binary (Config.Baseline), to compare
	// a change with what it changes in the same run.
	Baseline = "baseline"
	Nginx    = "nginx"
	HAProxy  = "haproxy"
	Caddy    = "caddy"
	// TLSPipe is a bound, not a peer (bench/peers/tlspipe.cfg.tmpl): TLS termination and
	// a byte copy to the backend, no HTTP/2. Ask for it with Config.Peers; it is not in
	// AllPeers, so no peer goal is measured against it (Goals states Search's and
	// Insert's bounds against it).
	TLSPipe = "tls-pipe"
	// GoPipe is the same bound written in Go (bench/internal/gopipe): what terminating TLS
	// and copying cost a Go process, with milvus-lb's choice of threads.
	GoPipe = "go-pipe"
)

// Bounds are the pipes, which run the throughput workloads only (measures).
var Bounds = []string{TLSPipe, GoPipe}

// isBound says whether t is one of the Bounds.
func isBound(t string) bool { return slices.Contains(Bounds, t) }

// AllPeers are the balancers milvus-lb is compared with.
var AllPeers = []string{Nginx, HAProxy, Caddy}

// backendEnv tells a re-executed harness binary to be the fake backend on that address;
// backendPprofEnv, to serve net/http/pprof on that one too.
// backendBusyEnv, to mark the Searches that overlapped an Insert (backend.BusyTrailer).
const (
	backendEnv      = "MILVUS_LB_BENCH_BACKEND"
	backendPprofEnv = "MILVUS_LB_BENCH_BACKEND_PPROF"
	backendBusyEnv  = "MILVUS_LB_BENCH_BACKEND_BUSY"
)

// backendRuntime makes the Go runtime of the fake backend cheaper, the same behind every
// target: its GC shrank the stacks of grpc-go's stream workers every cycle and the next
// calls grew them again (runtime.copystack, a twentieth of its CPU), and ran twice as
// often as its small heap needs.
var backendRuntime = []string{"GODEBUG=gcshrinkstackoff=1", "GOGC=200"}

// MaybeChild runs the fake Milvus backend, or the Go pipe, and never returns if this
// process was started as one by the harness; otherwise it returns at once. Call it first
// thing in main (and in TestMain): the harness re-executes its own binary for them, so
// that each is a process of its own (its CPU and memory apart from the load generator's)
// without a second build.
func MaybeChild() {
	if spec := os.Getenv(goPipeEnv); spec != "" {
		if err := runGoPipe(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	addr := os.Getenv(backendEnv)
	if addr == "" {
		return
	}
	s, err := backend.Start(addr, backend.Messages{
		Search:       encode(SearchRequest()).b,
		CachedSearch: encode(CachedSearchRequest()).b,
		SearchReply:  SearchReply(),
		Insert:       func(rows int) []byte { return encode(InsertRequest(rows)).b },
		MarkBusy:     os.Getenv(backendBusyEnv) != "",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if a := os.Getenv(backendPprofEnv); a != "" {
		go func() { _ = http.ListenAndServe(a, nil) }() // net/http/pprof's handlers
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	s.Stop()
	os.Exit(0)
}

// Config says what an Env starts.
type Config struct {
	// Dir holds the generated configurations, certificates and logs.
	Dir string
	// LB is the milvus-lb binary; "" leaves milvus-lb out.
	LB string
	// Baseline, if set, is another milvus-lb binary, measured as target Baseline.
	Baseline string
	// LBEnv is added to milvus-lb's environment (GODEBUG, GOGC, ...).
	LBEnv []string
	// LBAnnotations are added to the Ingress of milvus-lb, not of the baseline ("key: value"
	// each): the same binary with and without them measures what they cost.
	LBAnnotations []string
	// NoCache leaves the reply cache (cacheAnnotation) off both milvus-lb Ingresses.
	NoCache bool
	// BackendPprof serves the fake backend's pprof (Target.BackendAdmin).
	BackendPprof bool
	// Peers to start, from AllPeers, and the Bounds. A peer whose binary is
	// missing is an error.
	Peers []string
	// Backends is the number of fake backends every balancer spreads calls over (0: 1).
	// Direct reaches the first. With more than one, the balancers pick the backend with
	// the fewest calls in flight (milvus-lb: least_outstanding_requests; nginx, HAProxy,
	// Caddy: their least-connections policies, which count requests in flight) and the
	// backends mark the Searches that overlapped an Insert (backend.BusyTrailer).
	Backends int
	// Lite, if set, makes the one backend a real milvus-lite server (lite.go).
	Lite *Lite
	// Logf reports progress; nil is quiet.
	Logf func(format string, args ...any)
}

// Env is a running backend and the balancers in front of it.
type Env struct {
	cfg     Config
	noFile  uint64
	cert    *certFiles
	backend *proc   // the first backend: Direct's, and the one whose CPU is measured
	others  []*proc // the other backends (Config.Backends)
	// backendAdmin is the backend's pprof address, "" unless Config.BackendPprof.
	backendAdmin string
	// Targets are in the order of the first round: Direct first, then milvus-lb, then the
	// peers (each later round starts one target later: Plan.Rounds).
	Targets []*Target
	// SearchReply is a real backend's reply to SearchRequest (Config.Lite), which every
	// Search must be answered with byte for byte (Runner.SearchReply); nil for the fake.
	SearchReply []byte
}

// Target is one way to reach the backend.
type Target struct {
	Name      string
	Addr      string // host:port the clients dial
	TLS       bool
	AdminAddr string // milvus-lb's admin server (pprof), else ""
	proc      *proc
	backend   *proc // the fake backend behind it (for its CPU time)
	// BackendAdmin is the fake backend's pprof address (Config.BackendPprof), else "".
	BackendAdmin string
	// TLSState is what the load generator negotiated with the target (version, cipher
	// suite, key exchange), read once when it became ready; "" for h2c.
	TLSState string
	cert     *certFiles
	start    func() (*Target, error) // starts a fresh process, nil for Direct
}

// PIDs are the processes whose memory counts as the target's.
func (t *Target) PIDs() []int { return tree(t.proc.pid()) }

// Start starts the backend and the balancers and waits until each answers a call.
func Start(ctx context.Context, cfg Config) (_ *Env, err error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	e := &Env{cfg: cfg}
	if e.noFile, err = raiseFileLimit(200000); err != nil {
		cfg.Logf("cannot raise the open file limit: %v", err)
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.cert, err = newCert(cfg.Dir); err != nil {
		return nil, err
	}

	backends, err := e.startBackends(ctx)
	if err != nil {
		return nil, err
	}

	var starts []func() (*Target, error)
	if cfg.LB != "" {
		starts = append(starts, func() (*Target, error) {
			return e.startMilvusLB(MilvusLB, cfg.LB, backends, append(e.cacheAnnotations(), cfg.LBAnnotations...)...)
		})
	}
	if cfg.Baseline != "" {
		starts = append(starts, func() (*Target, error) {
			return e.startMilvusLB(Baseline, cfg.Baseline, backends, e.cacheAnnotations()...)
		})
	}
	for _, name := range cfg.Peers {
		starts = append(starts, func() (*Target, error) { return e.startPeer(name, backends) })
	}
	for _, start := range starts {
		t, err := start()
		if err != nil {
			return nil, err
		}
		t.start, t.backend, t.BackendAdmin = start, e.backend, e.backendAdmin
		if err := e.waitReady(ctx, t); err != nil {
			_ = t.proc.stop()
			return nil, err
		}
		e.Targets = append(e.Targets, t)
	}
	return e, nil
}

// startBackends starts Config.Backends fake backends, each a process of its own, and
// Direct, the first of them, and returns their addresses.
func (e *Env) startBackends(ctx context.Context) ([]string, error) {
	if e.cfg.Lite != nil {
		return e.startLite(ctx)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var addrs []string
	for i := range max(1, e.cfg.Backends) {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), backendEnv+"="+addr)
		cmd.Env = append(cmd.Env, backendRuntime...)
		if e.cfg.Backends > 1 {
			cmd.Env = append(cmd.Env, backendBusyEnv+"=1")
		}
		if i == 0 && e.cfg.BackendPprof {
			if e.backendAdmin, err = freeAddr(); err != nil {
				return nil, err
			}
			cmd.Env = append(cmd.Env, backendPprofEnv+"="+e.backendAdmin)
		}
		name, logFile := "backend", filepath.Join(e.cfg.Dir, "backend.log")
		if i > 0 {
			name, logFile = "backend-"+itoa(i), filepath.Join(e.cfg.Dir, "backend-"+itoa(i)+".log")
		}
		p, err := startProc(name, logFile, cmd)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			e.backend = p
		} else {
			e.others = append(e.others, p)
		}
		t := &Target{Name: Direct, Addr: addr, proc: p, backend: p, BackendAdmin: e.backendAdmin}
		if err := e.waitReady(ctx, t); err != nil {
			return nil, err
		}
		if i == 0 {
			e.Targets = append(e.Targets, t)
		}
		addrs = append(addrs, addr)
	}
	return addrs, nil
}

// Restart replaces t's process by a fresh one (on new ports), so that a memory workload
// measures what it costs and not what earlier workloads left in the allocator. Direct
// (the shared backend) is not restarted.
func (e *Env) Restart(ctx context.Context, t *Target) error {
	if t.start == nil {
		return nil
	}
	if err := t.proc.stop(); err != nil {
		return fmt.Errorf("stop %s: %w", t.Name, err)
	}
	nt, err := t.start()
	if err != nil {
		return err
	}
	if err := e.waitReady(ctx, nt); err != nil {
		_ = nt.proc.stop()
		return err
	}
	start := t.start
	*t = *nt
	t.start, t.backend, t.BackendAdmin = start, e.backend, e.backendAdmin
	return nil
}

// Close stops every process.
func (e *Env) Close() {
	for i := len(e.Targets) - 1; i >= 0; i-- {
		if t := e.Targets[i]; t.proc != e.backend {
			if err := t.proc.stop(); err != nil {
				e.cfg.Logf("stop %s: %v", t.Name, err)
			}
		}
	}
	for _, p := range append([]*proc{e.backend}, e.others...) {
		if p != nil {
			_ = p.stop()
		}
	}
}

// Target returns the target called name, or nil.
func (e *Env) Target(name string) *Target {
	for _, t := range e.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady waits until a GetVersion call through t succeeds.
func (e *Env) waitReady(ctx context.Context, t *Target) error {
	t.cert = e.cert
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error
	for {
		if t.proc.exited() {
			return fmt.Errorf("%s exited: %v\n%s", t.Name, t.proc.err, t.proc.tail())
		}
		last = func() error {
			cc, err := t.Dial()
			if err != nil {
				return err
			}
			defer cc.Close()
			cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
			defer ccancel()
			return cc.Invoke(cctx, getVersionMethod, &encoded{}, &response{})
		}()
		if last == nil {
			if t.TLS {
				if t.TLSState, last = negotiated(t); last != nil {
					return fmt.Errorf("%s: %w", t.Name, last)
				}
			}
			e.cfg.Logf("%s ready on %s (pid %d) %s", t.Name, t.Addr, t.proc.pid(), t.TLSState)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer on %s: %v\n%s", t.Name, t.Addr, last, t.proc.tail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Dial opens one client connection to t, as a Milvus SDK does: TLS with SNI Host to a
// balancer, h2c to the backend; no message size limits; the raw codec.
func (t *Target) Dial(opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if t.TLS {
		creds = credentials.NewTLS(&tls.Config{RootCAs: t.cert.pool, ServerName: Host})
	}
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithAuthority(Host),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{}), grpc.MaxCallRecvMsgSize(1<<30), grpc.MaxCallSendMsgSize(1<<30)),
	}, opts...)
	cc, err := grpc.NewClient(t.Addr, opts...)
	if err != nil {
		return nil, err
	}
	cc.Connect()
	return cc, nil
}

// negotiated is what a TLS handshake with t settles on, with the load generator's
// settings (Go's defaults, ALPN h2): version, cipher suite and key exchange.
func negotiated(t *Target) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", t.Addr,
		&tls.Config{RootCAs: t.cert.pool, ServerName: Host, NextProtos: []string{"h2"}})
	if err != nil {
		return "", err
	}
	defer c.Close()
	st := c.ConnectionState()
	return fmt.Sprintf("%s, %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID), nil
}

// idleDialOptions are pymilvus' keepalive settings: a ping every 10 s, also with no call
// in flight.
func idleDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 20 * time.Second, PermitWithoutStream: true}),
		// Small buffers: 10,000 connections in one load generator.
		grpc.WithReadBufferSize(4 << 10),
		grpc.WithWriteBufferSize(4 << 10),
	}
}

// manifests is what `milvus-lb serve -f` reads: the guide's Ingress with its certificate
// in a Secret (spec.tls), Services (the Ingress's is the first, milvus) with an
// EndpointSlice per backend, and Annotations added to the Ingress's own.
const manifests = `apiVersion: v1
kind: Secret
metadata: {namespace: bench, name: bench-tls}
type: kubernetes.io/tls
data:
  tls.crt: {{.Cert}}
  tls.key: {{.Key}}
{{range $s := .Services}}---
apiVersion: v1
kind: Service
metadata: {namespace: bench, name: {{$s.Name}}}
spec:
  ports: [{name: milvus, port: 19530}]
{{range $i, $b := $s.Backends}}---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  namespace: bench
  name: {{$s.Name}}-{{$i}}
  labels: {kubernetes.io/service-name: {{$s.Name}}}
addressType: IPv4
ports: [{name: milvus, port: {{$b.Port}}, protocol: TCP}]
endpoints:
- addresses: ["{{$b.IP}}"]
  conditions: {ready: true}
{{end}}{{end}}---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  namespace: bench
  name: milvus
  annotations:
    alb.ingress.kubernetes.io/backend-protocol-version: GRPC
    alb.ingress.kubernetes.io/listen-ports: '[{"HTTPS":{{.Port}}}]'
    alb.ingress.kubernetes.io/ssl-policy: {{.SSLPolicy}}
{{- range .Annotations}}
    {{.}}
{{- end}}
spec:
  ingressClassName: alb
  tls:
  - hosts: [{{.Host}}]
    secretName: bench-tls
  rules:
  - host: {{.Host}}
    http:
      paths:
{{- range .Actions}}
      - path: /
        pathType: Prefix
        backend:
          service: {name: {{.}}, port: {name: use-annotation}}
{{- end}}
      - path: /
        pathType: Prefix
        backend:
          service: {name: milvus, port: {number: 19530}}
`

const actionPrefix = "alb.ingress.kubernetes.io/actions."

// cacheAnnotation is the reply cache of the bench's Ingress, for search-cached (the other
// Searches ask for the collection's default level, which bypasses it).
const cacheAnnotation = `milvus-lb.io/cache: '{"methods":["Search"]}'`

// BenchSSLPolicy is the bench Ingress's ssl-policy: TLS 1.3, which every peer negotiates
// with the load generator too. Without it milvus-lb takes the ALB's default,
// ELBSecurityPolicy-2016-08, whose highest version is TLS 1.2 (internal/ingress), and the
// comparison would set TLS 1.2 against the peers' TLS 1.3.
const BenchSSLPolicy = "ELBSecurityPolicy-TLS13-1-2-2021-06"

// manifestBackend is one backend's address in the manifests.
type manifestBackend struct{ IP, Port string }

// manifestService is a Service and its backends in the manifests.
type manifestService struct {
	Name     string
	Backends []manifestBackend
}

// service is the Service name with backends (host:port).
func service(name string, backends ...string) manifestService {
	s := manifestService{Name: name}
	for _, b := range backends {
		ip, p, _ := net.SplitHostPort(b)
		s.Backends = append(s.Backends, manifestBackend{ip, p})
	}
	return s
}

// writeManifests writes the manifests for backends (host:port) served on port, with
// annotations ("key: value") on the Ingress, to file.
func writeManifests(file string, cert *certFiles, port string, backends []string, annotations ...string) error {
	return writeServices(file, cert, port, []manifestService{service("milvus", backends...)}, annotations...)
}

// writeServices writes the manifests of Services (the Ingress routes to the first, which
// must be named milvus) served on port, with annotations on the Ingress, to file. An
// annotation alb.ingress.kubernetes.io/actions.NAME also gets a rule path of its own,
// before the default one, as the ALB's routing annotations are used.
func writeServices(file string, cert *certFiles, port string, svcs []manifestService, annotations ...string) error {
	var actions []string
	for _, a := range annotations {
		if k, _, ok := strings.Cut(a, ":"); ok && strings.HasPrefix(k, actionPrefix) {
			actions = append(actions, strings.TrimPrefix(k, actionPrefix))
		}
	}
	var buf bytes.Buffer
	err := template.Must(template.New("m").Parse(manifests)).Execute(&buf, map[string]any{
		"Cert": base64.StdEncoding.EncodeToString(cert.certPEM), "Key": base64.StdEncoding.EncodeToString(cert.keyPEM),
		"Services": svcs, "Port": port, "Host": Host, "Annotations": annotations, "Actions": actions, "SSLPolicy": BenchSSLPolicy,
	})
	if err != nil {
		return err
	}
	return os.WriteFile(file, buf.Bytes(), 0o600)
}

// cacheAnnotations is the reply cache's annotation, unless Config.NoCache.
func (e *Env) cacheAnnotations() []string {
	if e.cfg.NoCache {
		return nil
	}
	return []string{cacheAnnotation}
}

func (e *Env) startMilvusLB(name, bin string, backends []string, annotations ...string) (*Target, error) {
	dir, addr, err := e.place(name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return nil, err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	file := filepath.Join(dir, "milvus.yaml")
	if len(backends) > 1 {
		annotations = append(annotations, "alb.ingress.kubernetes.io/target-group-attributes: load_balancing.algorithm.type=least_outstanding_requests")
	}
	if err := writeManifests(file, e.cert, port, backends, annotations...); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "-f", file, "--state-dir", filepath.Join(dir, "state"),
		"--admin-addr", admin, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--log-level", "warn")
	cmd.Env = append(os.Environ(), e.cfg.LBEnv...)
	p, err := startProc(name, filepath.Join(dir, "milvus-lb.log"), cmd)
	if err != nil {
		return nil, err
	}
	t := &Target{Name: name, Addr: addr, TLS: true, AdminAddr: admin, proc: p}
	// The listener opens once the first configuration is applied: wait for /readyz.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return t, nil
			}
		}
		if p.exited() || time.Now().After(deadline) {
			_ = p.stop()
			return nil, fmt.Errorf("milvus-lb did not become ready: %v\n%s", err, p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PeerConfig is the data of the templates in bench/peers.
type PeerConfig struct {
	Dir               string // the peer's own directory (pid file, temp files, logs)
	Listen, IP, Port  string // the TLS listener
	Host              string
	Backend           string   // host:port of the (first) h2c backend
	Backends          []string // all of them (Config.Backends), balanced by calls in flight
	CertFile, KeyFile string
	PEMFile           string // certificate and key in one file
	Threads           int
	NoFile            uint64 // the open file limit the harness could set
	// TLS13Suites are the TLS 1.3 cipher suites in order, for peers that would otherwise
	// take OpenSSL's (HAProxy): AES-128-GCM first, what milvus-lb, nginx and Caddy
	// negotiate with the load generator, so that none pays for AES-256's 14 rounds a
	// block where the others pay 10.
	TLS13Suites string
}

// tls13Suites is PeerConfig.TLS13Suites, in OpenSSL's names.
const tls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

// peerBinary finds a peer's executable; Debian puts nginx and haproxy in /usr/sbin, which
// is not on every PATH.
func peerBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed (scripts/setup.sh installs it): %w", name, exec.ErrNotFound)
}

// peerSpecs are what starting each peer takes: its executable and its configuration's
// template (in bench/peers) and file name. The bound is HAProxy with a configuration of
// its own.
var peerSpecs = map[string]struct{ exe, tmpl, conf string }{
	Nginx:   {Nginx, "nginx.conf.tmpl", "nginx.conf"},
	HAProxy: {HAProxy, "haproxy.cfg.tmpl", "haproxy.cfg"},
	Caddy:   {Caddy, "Caddyfile.tmpl", "Caddyfile"},
	TLSPipe: {HAProxy, "tlspipe.cfg.tmpl", "haproxy.cfg"},
}

func (e *Env) startPeer(name string, backends []string) (*Target, error) {
	if name == GoPipe {
		return e.startGoPipe(backends)
	}
	spec, ok := peerSpecs[name]
	if !ok {
		return nil, fmt.Errorf("unknown peer %q (want one of %v, or the bounds %v)", name, AllPeers, Bounds)
	}
	bin, err := peerBinary(spec.exe)
	if err != nil {
		return nil, err
	}
	dir, addr, err := e.place(name)
	if err != nil {
		return nil, err
	}
	ip, port, _ := net.SplitHostPort(addr)
	pc := PeerConfig{
		Dir: dir, Listen: addr, IP: ip, Port: port, Host: Host, Backend: backends[0], Backends: backends,
		CertFile: e.cert.certFile, KeyFile: e.cert.keyFile, PEMFile: e.cert.both, TLS13Suites: tls13Suites, Threads: runtime.NumCPU(), NoFile: e.noFile,
	}
	tmpl, err := template.ParseFS(peers.FS, spec.tmpl)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, pc); err != nil {
		return nil, fmt.Errorf("%s: %w", spec.tmpl, err)
	}
	conf := filepath.Join(dir, spec.conf)
	if err := os.WriteFile(conf, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	switch spec.exe {
	case Nginx:
		cmd = exec.Command(bin, "-p", dir, "-c", conf, "-e", "stderr")
	case HAProxy:
		cmd = exec.Command(bin, "-db", "-f", conf)
	case Caddy:
		cmd = exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
		cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	}
	p, err := startProc(name, filepath.Join(dir, name+".log"), cmd)
	if err != nil {
		return nil, err
	}
	return &Target{Name: name, Addr: addr, TLS: true, proc: p}, nil
}

// place makes the directory of the target called name and picks its address.
func (e *Env) place(name string) (dir, addr string, err error) {
	dir = filepath.Join(e.cfg.Dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	addr, err = freeAddr()
	return dir, addr, err
}

// errFailedCall marks a workload that saw a failed call: the run fails.
var errFailedCall = errors.New("a call failed")

func itoa(n int) string { return strconv.Itoa(n) }
