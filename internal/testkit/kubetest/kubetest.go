// Package kubetest runs a real Kubernetes control plane for tests: etcd (the Debian
// etcd-server package) and kube-apiserver (built by scripts/kube-apiserver.sh), both on
// loopback with a temporary data directory, torn down by t.Cleanup.
//
// There are no controllers: nothing creates EndpointSlices for Services, garbage-collects
// or finalizes namespaces, and no Pod ever runs. Tests create the objects a controller
// would. Authentication is by static bearer tokens (--token-auth-file): an admin in
// system:masters, and a user named like the controller's ServiceAccount so that the
// RBAC objects of deploy/ apply to it unchanged.
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Version is the kube-apiserver version the tests run, matching our k8s.io/client-go.
const Version = "v1.37.2"

// The ServiceAccount the controller runs as in deploy/. The test user of that name gets
// the groups the API server gives real ServiceAccount tokens, so RoleBindings whose
// subject is the ServiceAccount match it.
const (
	ControllerNamespace      = "milvus-lb-system"
	ControllerServiceAccount = "milvus-lb"
)

// Cluster is a running etcd + kube-apiserver pair.
type Cluster struct {
	// Host is the API server URL, https://127.0.0.1:port.
	Host string
	// CAData is the PEM CA that signed the API server's serving certificate.
	CAData []byte
	// Kubeconfig is the path of an admin kubeconfig (for kubectl and the controller's
	// --kubeconfig).
	Kubeconfig string
	// Client is an admin clientset.
	Client kubernetes.Interface

	adminToken      string
	controllerToken string
	dir             string
}

// APIServerPath is where scripts/kube-apiserver.sh caches the binary;
// $KUBE_APISERVER overrides it.
func APIServerPath() string {
	if p := os.Getenv("KUBE_APISERVER"); p != "" {
		return p
	}
	return filepath.Join(testenv.CacheDir(), "bin", "kube-apiserver-"+Version)
}

// Start runs etcd and kube-apiserver and waits until the API server is ready. It fails
// the test (it does not skip it) when a binary is missing: CI builds kube-apiserver first.
func Start(t testing.TB) *Cluster {
	t.Helper()
	apiserver := APIServerPath()
	if _, err := os.Stat(apiserver); err != nil {
		t.Fatalf("kube-apiserver %s not found (%v): run scripts/kube-apiserver.sh", apiserver, err)
	}
	etcd := os.Getenv("ETCD")
	if etcd == "" {
		var err error
		if etcd, err = exec.LookPath("etcd"); err != nil {
			t.Fatalf("etcd not found (%v): install the Debian package etcd-server (scripts/setup.sh)", err)
		}
	}

	dir := t.TempDir()
	c := &Cluster{dir: dir, adminToken: randomToken(t), controllerToken: randomToken(t)}

	etcdURL := c.startEtcd(t, etcd)
	c.startAPIServer(t, apiserver, etcdURL)

	c.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	c.WriteKubeconfig(t, c.Kubeconfig, c.adminToken)
	client, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	c.Client = client
	return c
}

// AdminConfig is a rest.Config for the admin user (system:masters).
func (c *Cluster) AdminConfig() *rest.Config { return c.configFor(c.adminToken) }

// ControllerConfig is a rest.Config for the user named
// system:serviceaccount:milvus-lb-system:milvus-lb. Until the RBAC objects of deploy/ are
// applied it may do nothing at all.
func (c *Cluster) ControllerConfig() *rest.Config { return c.configFor(c.controllerToken) }

// ControllerToken is the bearer token of the controller user, for a kubeconfig.
func (c *Cluster) ControllerToken() string { return c.controllerToken }

func (c *Cluster) configFor(token string) *rest.Config {
	return &rest.Config{
		Host:            c.Host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData},
		// The defaults (5 QPS) make informer start-up and status writes crawl in tests.
		QPS:   100,
		Burst: 200,
	}
}

// WriteKubeconfig writes a kubeconfig at path that authenticates with token.
func (c *Cluster) WriteKubeconfig(t testing.TB, path, token string) {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos["kubetest"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "kubetest", Namespace: "default"}
	cfg.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatalf("write kubeconfig: %v", err)
	}
}

// ControllerKubeconfig writes (once) and returns a kubeconfig for the controller user.
func (c *Cluster) ControllerKubeconfig(t testing.TB) string {
	t.Helper()
	path := filepath.Join(c.dir, "controller.kubeconfig")
	if _, err := os.Stat(path); err != nil {
		c.WriteKubeconfig(t, path, c.controllerToken)
	}
	return path
}

// Kubectl runs /usr/bin/kubectl (or $KUBECTL) as admin and returns its combined output.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	kubectl := os.Getenv("KUBECTL")
	if kubectl == "" {
		kubectl = "kubectl"
	}
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (c *Cluster) startEtcd(t testing.TB, etcd string) string {
	t.Helper()
	client, peer := testenv.FreePort(t), testenv.FreePort(t)
	clientURL := "http://127.0.0.1:" + strconv.Itoa(client)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	args := []string{
		"--name=kubetest",
		"--data-dir=" + filepath.Join(c.dir, "etcd"),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=kubetest=" + peerURL,
		"--logger=zap",
		"--log-level=warn",
	}
	exited := start(t, "etcd", filepath.Join(c.dir, "etcd.log"), etcd, args...)
	// kube-apiserver retries etcd itself, but waiting here makes an etcd failure say so.
	waitFor(t, 30*time.Second, "etcd", filepath.Join(c.dir, "etcd.log"), exited, func() error {
		resp, err := http.Get(clientURL + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /health: %s", resp.Status)
		}
		return nil
	})
	return clientURL
}

func (c *Cluster) startAPIServer(t testing.TB, apiserver, etcdURL string) {
	t.Helper()
	port := testenv.FreePort(t)
	c.Host = "https://127.0.0.1:" + strconv.Itoa(port)

	caPEM, certPEM, keyPEM := servingCert(t)
	c.CAData = caPEM
	saPub, saKey := serviceAccountKeys(t)
	files := map[string][]byte{
		"serving.crt": certPEM,
		"serving.key": keyPEM,
		"sa.pub":      saPub,
		"sa.key":      saKey,
		// token,user,uid,"groups"
		"tokens.csv": fmt.Appendf(nil, "%s,kubetest-admin,kubetest-admin,\"system:masters\"\n"+
			"%s,system:serviceaccount:%s:%s,kubetest-controller,\"system:serviceaccounts,system:serviceaccounts:%s\"\n",
			c.adminToken, c.controllerToken, ControllerNamespace, ControllerServiceAccount, ControllerNamespace),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(c.dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + filepath.Join(c.dir, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(c.dir, "serving.key"),
		"--token-auth-file=" + filepath.Join(c.dir, "tokens.csv"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + filepath.Join(c.dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(c.dir, "sa.key"),
		"--authorization-mode=RBAC",
		// The "kubernetes" Service's endpoints would have to be a non-loopback address;
		// nothing here uses them.
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=10.96.0.0/16",
		// Nothing here needs flow control, and it costs start-up time and CPU.
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v=1",
	}
	logPath := filepath.Join(c.dir, "kube-apiserver.log")
	exited := start(t, "kube-apiserver", logPath, apiserver, args...)

	// /readyz covers etcd, the RBAC bootstrap roles and the default namespace.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig(caPEM)}}
	t.Cleanup(hc.CloseIdleConnections)
	waitFor(t, 90*time.Second, "kube-apiserver", logPath, exited, func() error {
		req, _ := http.NewRequest(http.MethodGet, c.Host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.adminToken)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			return fmt.Errorf("GET /readyz: %s: %s", resp.Status, lastLines(b.String(), 5))
		}
		return nil
	})
}

// start runs a child process whose output goes to logPath. It is killed when the test
// ends, and by the kernel if the test binary dies first (Pdeathsig), so that a crashed
// or timed-out test leaves no etcd behind. The channel is closed when it exits.
func start(t testing.TB, name, logPath, bin string, args ...string) <-chan struct{} {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
			t.Errorf("%s exited during the test: %v\n%s", name, waitErr, tail(logPath, 20))
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		logFile.Close()
		if t.Failed() {
			t.Logf("%s log (last lines):\n%s", name, tail(logPath, 30))
		}
	})
	return done
}

func waitFor(t testing.TB, timeout time.Duration, name, logPath string, exited <-chan struct{}, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", name, err, tail(logPath, 30))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s: %v\n%s", name, timeout, err, tail(logPath, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func randomToken(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// servingCert makes a throwaway CA and a certificate for 127.0.0.1 and localhost.
func servingCert(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubetest-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost", "kubernetes.default.svc"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// serviceAccountKeys is the key pair kube-apiserver signs ServiceAccount tokens with.
// It is required even though the tests authenticate with static tokens.
func serviceAccountKeys(t testing.TB) (pubPEM, keyPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(b), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func tlsConfig(caPEM []byte) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &tls.Config{RootCAs: pool}
}
