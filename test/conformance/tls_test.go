package conformance

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

const tlsHost = "tls.milvus-lb.test"

var versionNames = map[uint16]string{
	tls.VersionTLS10: "TLS 1.0", tls.VersionTLS11: "TLS 1.1",
	tls.VersionTLS12: "TLS 1.2", tls.VersionTLS13: "TLS 1.3",
}

// ingressTLS is an Ingress on one HTTPS port with the given extra annotations, serving the
// spec.tls Secrets in order and routing everything to the Service "body".
func ingressTLS(name string, port int, annotations map[string]string, secrets ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: %s
  annotations:
    alb.ingress.kubernetes.io/listen-ports: '[{"HTTPS":%d}]'
    milvus-lb.io/healthcheck-type: none
`, name, port)
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "    %s: '%s'\n", k, annotations[k])
	}
	b.WriteString("spec:\n  ingressClassName: alb\n  tls:\n")
	for _, s := range secrets {
		fmt.Fprintf(&b, "  - secretName: %s\n", s)
	}
	b.WriteString("  defaultBackend:\n    service:\n      name: body\n      port:\n        number: 80\n")
	return b.String()
}

// issueRSA makes an RSA-2048 server certificate for hosts signed by ca: the RSA key
// exchange and ECDHE-RSA suites of the ssl-policies need an RSA certificate, and
// certtest issues ECDSA ones.
func issueRSA(t *testing.T, ca *certtest.CA, hosts ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: hosts[0]},
		DNSNames:     hosts,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// handshake dials 127.0.0.1:port with cfg and returns the connection state.
func handshake(port int, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	c, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState(), nil
}

// allSuites are every TLS 1.0-1.2 suite crypto/tls can speak, secure or not: a client
// offering each alone finds out exactly which ones a listener accepts.
func allSuites() []*tls.CipherSuite {
	return append(tls.CipherSuites(), tls.InsecureCipherSuites()...)
}

// TestSSLPolicies serves one HTTPS port per ssl-policy, each with an ECDSA and an RSA
// certificate (so that every suite can be chosen), and checks with Go TLS clients that
// each offers exactly its protocol versions and, per version, exactly its cipher suites.
func TestSSLPolicies(t *testing.T) {
	dir := t.TempDir()
	be := startBodyBackend(t)
	ca := certtest.NewCA(t)
	ecCert, ecKey := ca.Issue(t, tlsHost)
	rsaCert, rsaKey := issueRSA(t, ca, tlsHost)

	policies := ingress.SSLPolicies()
	ports := map[string]int{}
	docs := []string{tlsSecret("ecdsa", ecCert, ecKey), tlsSecret("rsa", rsaCert, rsaKey), serviceFor("body", be.Port)}
	for i, p := range policies {
		ports[p] = testenv.FreePort(t)
		docs = append(docs, ingressTLS("policy-"+strconv.Itoa(i), ports[p],
			map[string]string{ingress.AnnotationSSLPolicy: p}, "ecdsa", "rsa"))
	}
	f := filepath.Join(dir, "policies.yaml")
	writeFile(t, f, yamlDocs(docs...))
	testenv.StartLB(t, "-f", f)

	handshakes := 0
	for _, name := range policies {
		t.Run(name, func(t *testing.T) {
			pol, _ := ingress.LookupSSLPolicy(name)
			port := ports[name]
			var offered []string
			for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13} {
				want := v >= uint16(pol.MinVersion) && v <= uint16(pol.MaxVersion)
				st, err := handshake(port, &tls.Config{
					ServerName: tlsHost, RootCAs: ca.Pool(), MinVersion: v, MaxVersion: v,
					CipherSuites: suitesFor(v),
				})
				handshakes++
				if got := err == nil; got != want {
					t.Errorf("%s: handshake ok = %v (err %v), want %v", versionNames[v], got, err, want)
					continue
				}
				if err == nil {
					offered = append(offered, versionNames[v])
					if st.Version != v {
						t.Errorf("%s: negotiated %s", versionNames[v], versionNames[st.Version])
					}
				}
				if !want || v == tls.VersionTLS13 {
					continue // TLS 1.3 suites are fixed by crypto/tls and by the ALB alike
				}
				var accepted []uint16
				for _, s := range allSuites() {
					if !slices.Contains(s.SupportedVersions, v) {
						continue
					}
					st, err := handshake(port, &tls.Config{
						ServerName: tlsHost, RootCAs: ca.Pool(), MinVersion: v, MaxVersion: v,
						CipherSuites: []uint16{s.ID},
					})
					handshakes++
					if err == nil {
						accepted = append(accepted, s.ID)
						if st.CipherSuite != s.ID {
							t.Errorf("%s %s: negotiated %s", versionNames[v], s.Name, tls.CipherSuiteName(st.CipherSuite))
						}
					}
				}
				var wantSuites []uint16
				for _, cs := range pol.CipherSuites {
					id := uint16(cs)
					if slices.ContainsFunc(allSuites(), func(s *tls.CipherSuite) bool {
						return s.ID == id && slices.Contains(s.SupportedVersions, v)
					}) {
						wantSuites = append(wantSuites, id)
					}
				}
				slices.Sort(accepted)
				slices.Sort(wantSuites)
				if !slices.Equal(accepted, wantSuites) {
					t.Errorf("%s: accepted suites\n  %s\nwant\n  %s", versionNames[v], suiteNames(accepted), suiteNames(wantSuites))
				}
			}
			t.Logf("%s offers %s", name, strings.Join(offered, ", "))
		})
	}
	t.Logf("%d policies checked with %d handshakes", len(policies), handshakes)
}

func suitesFor(v uint16) []uint16 {
	var ids []uint16
	for _, s := range allSuites() {
		if slices.Contains(s.SupportedVersions, v) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

func suiteNames(ids []uint16) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = tls.CipherSuiteName(id)
	}
	return strings.Join(names, " ")
}

// chainCA is a root and an intermediate CA below it.
type chainCA struct {
	root, inter *certtest.CA
}

func newChainCA(t *testing.T) chainCA {
	t.Helper()
	root := certtest.NewCA(t)
	// An intermediate is a CA whose certificate the root signs.
	interPEM, interKeyPEM := root.IssueTemplate(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "milvus-lb test intermediate CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	})
	blk, _ := pem.Decode(interPEM)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	kblk, _ := pem.Decode(interKeyPEM)
	key, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	inter := &certtest.CA{Cert: cert, CertPEM: interPEM}
	inter.Key, _ = key.(*ecdsa.PrivateKey)
	if inter.Key == nil {
		t.Fatalf("intermediate key is %T", key)
	}
	return chainCA{root: root, inter: inter}
}

// TestCertificateChain checks that a client that trusts only the root gets the leaf and the
// intermediate from milvus-lb, and can verify the leaf: for a Secret whose tls.crt is
// leaf + intermediate, and for a certificate imported with `milvus-lb cert import` from the
// guide's three files (the chain file holding intermediate and root) and named by
// certificate-arn.
func TestCertificateChain(t *testing.T) {
	dir := t.TempDir()
	be := startBodyBackend(t)
	cc := newChainCA(t)

	leafPEM, keyPEM := cc.inter.Issue(t, tlsHost)
	secretPort, arnPort := testenv.FreePort(t), testenv.FreePort(t)

	// The guide's files: Certificate.pem, CertificateChain.pem, PrivateKey.pem.
	stateDir := filepath.Join(dir, "state")
	writeFile(t, filepath.Join(dir, "Certificate.pem"), leafPEM)
	writeFile(t, filepath.Join(dir, "CertificateChain.pem"), append(append([]byte{}, cc.inter.CertPEM...), cc.root.CertPEM...))
	writeFile(t, filepath.Join(dir, "PrivateKey.pem"), keyPEM)
	out := testenv.MilvusLB(t, "cert", "import",
		"--certificate", "fileb://"+filepath.Join(dir, "Certificate.pem"),
		"--certificate-chain", "fileb://"+filepath.Join(dir, "CertificateChain.pem"),
		"--private-key", "fileb://"+filepath.Join(dir, "PrivateKey.pem"),
		"--state-dir", stateDir)
	arn := between(out, `"CertificateArn": "`, `"`)
	if arn == "" {
		t.Fatalf("cert import printed no CertificateArn: %s", out)
	}

	fullchain := append(append([]byte{}, leafPEM...), cc.inter.CertPEM...)
	f := filepath.Join(dir, "chain.yaml")
	writeFile(t, f, yamlDocs(
		ingressTLS("by-secret", secretPort, nil, "fullchain"),
		strings.Replace(ingressTLS("by-arn", arnPort, map[string]string{ingress.AnnotationCertificateARN: arn}), "  tls:\n", "", 1),
		tlsSecret("fullchain", fullchain, keyPEM),
		serviceFor("body", be.Port)))
	testenv.StartLB(t, "-f", f, "--state-dir", stateDir)

	for _, c := range []struct {
		name string
		port int
		want []*x509.Certificate // what the server must send, in order, after the leaf
	}{
		{"secret leaf+intermediate", secretPort, []*x509.Certificate{cc.inter.Cert}},
		{"cert import with chain intermediate+root", arnPort, []*x509.Certificate{cc.inter.Cert, cc.root.Cert}},
	} {
		st, err := handshake(c.port, &tls.Config{ServerName: tlsHost, RootCAs: cc.root.Pool()})
		if err != nil {
			t.Errorf("%s: a client trusting only the root cannot connect: %v", c.name, err)
			continue
		}
		got := st.PeerCertificates
		if len(got) != 1+len(c.want) {
			t.Errorf("%s: server sent %d certificates, want the leaf and %d more", c.name, len(got), len(c.want))
			continue
		}
		for i, w := range c.want {
			if !got[i+1].Equal(w) {
				t.Errorf("%s: certificate %d is %s, want %s", c.name, i+1, got[i+1].Subject, w.Subject)
			}
		}
		if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) != 3 {
			t.Errorf("%s: verified chain %v, want leaf, intermediate, root", c.name, st.VerifiedChains)
		}
	}
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}

// TestSNIDefaultCertificate: with several certificates on a port, a client gets the one
// that covers the name it sends; a name no certificate covers, or no name at all, gets the
// listener's default certificate (the first: certificate-arn's first, else spec.tls's
// first), as the ALB serves its default certificate. Such a client then fails its own
// host-name check, which is the documented behaviour (docs/conformance.md).
func TestSNIDefaultCertificate(t *testing.T) {
	dir := t.TempDir()
	be := startBodyBackend(t)
	ca := certtest.NewCA(t)
	aCert, aKey := ca.Issue(t, "a.milvus-lb.test")
	bCert, bKey := ca.Issue(t, "b.milvus-lb.test")
	port := testenv.FreePort(t)
	f := filepath.Join(dir, "sni.yaml")
	writeFile(t, f, yamlDocs(ingressTLS("sni", port, nil, "a", "b"),
		tlsSecret("a", aCert, aKey), tlsSecret("b", bCert, bKey), serviceFor("body", be.Port)))
	testenv.StartLB(t, "-f", f)

	for _, c := range []struct {
		sni, want string
	}{
		{"a.milvus-lb.test", "a.milvus-lb.test"},
		{"b.milvus-lb.test", "b.milvus-lb.test"},
		{"B.Milvus-LB.test", "b.milvus-lb.test"}, // SNI is case-insensitive
		{"c.milvus-lb.test", "a.milvus-lb.test"},
		{"", "a.milvus-lb.test"},
	} {
		st, err := handshake(port, &tls.Config{ServerName: c.sni, InsecureSkipVerify: true})
		if err != nil {
			t.Errorf("SNI %q: %v", c.sni, err)
			continue
		}
		if got := st.PeerCertificates[0].Subject.CommonName; got != c.want {
			t.Errorf("SNI %q: got the certificate of %s, want %s", c.sni, got, c.want)
		}
	}
	// A verifying client asking for an uncovered name is refused by its own check.
	if _, err := handshake(port, &tls.Config{ServerName: "c.milvus-lb.test", RootCAs: ca.Pool()}); err == nil {
		t.Errorf("a verifying client accepted the default certificate for an uncovered name")
	}
}

// TestCertificateRotation replaces the certificate while the balancer runs: in a Secret
// file (as a mounted Secret or an edited manifest changes), and in the cert store (a new
// certificate imported and the Ingress's certificate-arn pointed at it). New connections
// get the new certificate within a few seconds, without a restart; a connection made
// before keeps working.
func TestCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	be := startBodyBackend(t)
	ca := certtest.NewCA(t)
	oldCert, oldKey := ca.Issue(t, tlsHost)
	port := testenv.FreePort(t)
	f := filepath.Join(dir, "rotate.yaml")
	manifest := func(certPEM, keyPEM []byte) []byte {
		return yamlDocs(ingressTLS("rotate", port, nil, "rotating"), tlsSecret("rotating", certPEM, keyPEM), serviceFor("body", be.Port))
	}
	writeFile(t, f, manifest(oldCert, oldKey))
	stateDir := filepath.Join(dir, "state")
	lb := testenv.StartLB(t, "-f", f, "--state-dir", stateDir)
	pid := lb.Pid()

	// A client with a kept-alive HTTP/2 connection made before the rotation.
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: tlsHost, RootCAs: ca.Pool()},
		ForceAttemptHTTP2: true,
	}}
	t.Cleanup(client.CloseIdleConnections)
	url := "https://127.0.0.1:" + strconv.Itoa(port) + "/"
	get := func() (*x509.Certificate, error) {
		resp, err := client.Get(url)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("status %s", resp.Status)
		}
		return resp.TLS.PeerCertificates[0], nil
	}
	if c, err := get(); err != nil || !bytes.Equal(c.Raw, pemDER(t, oldCert)) {
		t.Fatalf("before rotation: cert %v, err %v", c != nil, err)
	}

	waitServed := func(what string, want []byte) {
		t.Helper()
		der := pemDER(t, want)
		deadline := time.Now().Add(15 * time.Second)
		for {
			st, err := handshake(port, &tls.Config{ServerName: tlsHost, RootCAs: ca.Pool()})
			if err == nil && bytes.Equal(st.PeerCertificates[0].Raw, der) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: new connections still do not get the new certificate after 15s (err %v)\n%s", what, err, lb.Logs())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// 1. The Secret file is rewritten with a new certificate.
	newCert, newKey := ca.Issue(t, tlsHost)
	replaceFile(t, f, manifest(newCert, newKey))
	waitServed("secret file edited", newCert)
	if c, err := get(); err != nil {
		t.Errorf("the connection made before the rotation failed: %v", err)
	} else if !bytes.Equal(c.Raw, pemDER(t, oldCert)) {
		t.Logf("note: the kept-alive connection was replaced") // allowed, not required
	}

	// 2. A third certificate is imported into the cert store and certificate-arn names it.
	thirdCert, thirdKey := ca.Issue(t, tlsHost)
	writeFile(t, filepath.Join(dir, "c.pem"), thirdCert)
	writeFile(t, filepath.Join(dir, "chain.pem"), ca.CertPEM)
	writeFile(t, filepath.Join(dir, "k.pem"), thirdKey)
	out := testenv.MilvusLB(t, "cert", "import", "--certificate", filepath.Join(dir, "c.pem"),
		"--certificate-chain", filepath.Join(dir, "chain.pem"), "--private-key", filepath.Join(dir, "k.pem"),
		"--state-dir", stateDir)
	arn := between(out, `"CertificateArn": "`, `"`)
	ing := strings.Replace(ingressTLS("rotate", port, map[string]string{ingress.AnnotationCertificateARN: arn}), "  tls:\n", "", 1)
	replaceFile(t, f, yamlDocs(ing, serviceFor("body", be.Port)))
	waitServed("certificate imported and certificate-arn edited", thirdCert)

	if lb.Pid() != pid {
		t.Errorf("milvus-lb was restarted")
	}
	select {
	case <-lb.Exited():
		t.Fatalf("milvus-lb exited during rotation:\n%s", lb.Logs())
	default:
	}
}

func pemDER(t *testing.T, p []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(p)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}
