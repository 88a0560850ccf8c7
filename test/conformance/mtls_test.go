package conformance

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

const mtlsHost = "mtls.milvus-lb.test"

// clientCert issues a TLS client certificate from ca, valid over [notBefore, notAfter].
func clientCert(t *testing.T, ca *certtest.CA, cn string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	certPEM, keyPEM := ca.IssueTemplate(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// mtlsIngress is an Ingress on one HTTPS port with mutual-authentication set to entry.
func mtlsIngress(name string, port int, entry string) string {
	return ingressTLS(name, port, map[string]string{
		ingress.AnnotationMutualAuthentication: "[" + entry + "]",
	}, "server")
}

// TestMutualTLS: mode verify refuses, at the handshake, clients without a certificate the
// trust store verifies (none, another CA's, an expired one) and serves those with one;
// mode passthrough serves every client and hands the certificate it sent, if any, to the
// backend in X-Amzn-Mtls-Clientcert (URL-encoded PEM, as the ALB does), never a value the
// client wrote in that header itself.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	be := startBodyBackend(t)
	serverCA, clientCA, otherCA := certtest.NewCA(t), certtest.NewCA(t), certtest.NewCA(t)
	srvCert, srvKey := serverCA.Issue(t, mtlsHost)
	// The trust store is a file beside the manifest, named by a relative path.
	writeFile(t, filepath.Join(dir, "clients-ca.pem"), clientCA.CertPEM)

	verifyPort, passPort := testenv.FreePort(t), testenv.FreePort(t)
	f := filepath.Join(dir, "mtls.yaml")
	writeFile(t, f, yamlDocs(
		mtlsIngress("verify", verifyPort, fmt.Sprintf(`{"port":%d,"mode":"verify","trustStore":"clients-ca.pem"}`, verifyPort)),
		mtlsIngress("passthrough", passPort, fmt.Sprintf(`{"port":%d,"mode":"passthrough"}`, passPort)),
		tlsSecret("server", srvCert, srvKey), serviceFor("body", be.Port)))
	testenv.StartLB(t, "-f", f)

	now := time.Now()
	good := clientCert(t, clientCA, "good-client", now.Add(-time.Hour), now.Add(time.Hour))
	expired := clientCert(t, clientCA, "expired-client", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	foreign := clientCert(t, otherCA, "foreign-client", now.Add(-time.Hour), now.Add(time.Hour))

	// get sends one request on a new connection, with cert if not nil and a forged
	// X-Amzn-Mtls-Clientcert header, and returns the status.
	get := func(port int, cert *tls.Certificate, maxVersion uint16) (int, error) {
		cfg := &tls.Config{ServerName: mtlsHost, RootCAs: serverCA.Pool(), MaxVersion: maxVersion}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodPost, "https://127.0.0.1:"+strconv.Itoa(port)+"/v2/vectordb/collections/list", strings.NewReader("{}"))
		req.Header.Set("X-Amzn-Mtls-Clientcert", "forged-by-the-client")
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}

	t.Run("verify", func(t *testing.T) {
		for _, c := range []struct {
			name string
			cert *tls.Certificate
			ok   bool
		}{
			{"no certificate", nil, false},
			{"certificate of another CA", &foreign, false},
			{"expired certificate", &expired, false},
			{"valid certificate", &good, true},
		} {
			for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				before, _ := be.Requests()
				status, err := get(verifyPort, c.cert, v)
				after, hdr := be.Requests()
				switch {
				case c.ok && (err != nil || status != http.StatusOK):
					t.Errorf("%s, %s: status %d, err %v; want 200", c.name, versionNames[v], status, err)
				case c.ok && hdr.Get("X-Amzn-Mtls-Clientcert") == "forged-by-the-client":
					t.Errorf("%s, %s: the client's own X-Amzn-Mtls-Clientcert reached the backend", c.name, versionNames[v])
				case !c.ok && err == nil:
					t.Errorf("%s, %s: served (status %d); want the handshake refused", c.name, versionNames[v], status)
				case !c.ok && after != before:
					t.Errorf("%s, %s: the request reached the backend", c.name, versionNames[v])
				case !c.ok:
					t.Logf("%s, %s: refused: %v", c.name, versionNames[v], err)
				}
			}
		}
		// With TLS 1.2 the refusal is visible in the handshake itself (in TLS 1.3 the
		// client finishes first and reads the server's alert afterwards).
		if _, err := handshake(verifyPort, &tls.Config{ServerName: mtlsHost, RootCAs: serverCA.Pool(), MaxVersion: tls.VersionTLS12}); err == nil {
			t.Errorf("TLS 1.2 handshake without a client certificate succeeded")
		}
	})

	t.Run("passthrough", func(t *testing.T) {
		for _, c := range []struct {
			name string
			cert *tls.Certificate
		}{
			{"no certificate", nil},
			{"certificate of a CA nobody trusts", &foreign},
			{"expired certificate", &expired},
		} {
			status, err := get(passPort, c.cert, 0)
			if err != nil || status != http.StatusOK {
				t.Errorf("%s: status %d, err %v; want 200", c.name, status, err)
				continue
			}
			_, hdr := be.Requests()
			got := hdr.Values("X-Amzn-Mtls-Clientcert")
			if c.cert == nil {
				if len(got) != 0 {
					t.Errorf("%s: backend got X-Amzn-Mtls-Clientcert %q, want none", c.name, got)
				}
				continue
			}
			if len(got) != 1 {
				t.Errorf("%s: backend got X-Amzn-Mtls-Clientcert %q, want the certificate once", c.name, got)
				continue
			}
			p, err := url.QueryUnescape(got[0])
			if err != nil {
				t.Errorf("%s: header is not URL-encoded: %v", c.name, err)
				continue
			}
			blk, _ := pem.Decode([]byte(p))
			if blk == nil || string(blk.Bytes) != string(c.cert.Certificate[0]) {
				t.Errorf("%s: header does not hold the client's certificate: %.80q", c.name, p)
			}
		}
	})
}

// TestMutualTLSPymilvus: pymilvus with client_pem_path, client_key_path and ca_pem_path
// works through milvus-lb in verify mode, in front of a real Milvus (milvus-lite); without
// a client certificate it cannot connect.
func TestMutualTLSPymilvus(t *testing.T) {
	python := testenv.Python(t)
	dir := t.TempDir()
	lite := testenv.StartMilvusLite(t)
	serverCA, clientCA := certtest.NewCA(t), certtest.NewCA(t)
	srvCert, srvKey := serverCA.Issue(t, mtlsHost)
	cliCert, cliKey := clientCA.IssueTemplate(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "pymilvus"},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	for name, data := range map[string][]byte{
		"clients-ca.pem": clientCA.CertPEM, "server-ca.pem": serverCA.CertPEM,
		"client.pem": cliCert, "client.key": cliKey,
	} {
		writeFile(t, filepath.Join(dir, name), data)
	}
	port := testenv.FreePort(t)
	ing := fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: milvus-mtls
  annotations:
    alb.ingress.kubernetes.io/listen-ports: '[{"HTTPS":%[1]d}]'
    alb.ingress.kubernetes.io/backend-protocol-version: GRPC
    alb.ingress.kubernetes.io/mutual-authentication: '[{"port":%[1]d,"mode":"verify","trustStore":"%[2]s"}]'
spec:
  ingressClassName: alb
  tls:
  - secretName: server
  rules:
  - host: %[3]s
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: milvus
            port:
              number: 80
`, port, filepath.Join(dir, "clients-ca.pem"), mtlsHost)
	f := filepath.Join(dir, "milvus-mtls.yaml")
	writeFile(t, f, yamlDocs(ing, tlsSecret("server", srvCert, srvKey), serviceFor("milvus", lite.Port)))
	testenv.StartLB(t, "-f", f)

	script := filepath.Join(testenv.Root(t), "test", "conformance", "testdata", "mtls_check.py")
	common := []string{python, script, "--port", strconv.Itoa(port), "--server-name", mtlsHost,
		"--ca", filepath.Join(dir, "server-ca.pem")}
	testenv.RunClient(t, 2*time.Minute, "mtls_check: PASS", append(common,
		"--cert", filepath.Join(dir, "client.pem"), "--key", filepath.Join(dir, "client.key"))...)
	testenv.RunClient(t, time.Minute, "mtls_check: PASS", append(common, "--expect-refused")...)
}
