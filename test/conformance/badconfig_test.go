package conformance

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

const goodHost = "good.milvus-lb.test"

// TestMalformedEditKeepsServing edits the manifests of a running `milvus-lb serve` badly, one
// mistake at a time: broken YAML, a removed apiVersion, an unknown field, a route that
// another Ingress already has, a key that does not match its certificate, a chain out of
// order, a Service port that does not exist. After each, the error is logged naming the
// file, the object and the field, and the previous configuration keeps serving, TLS
// included. A good edit then applies.
func TestMalformedEditKeepsServing(t *testing.T) {
	dir := t.TempDir()
	manifests := filepath.Join(dir, "manifests")
	if err := os.Mkdir(manifests, 0o700); err != nil {
		t.Fatal(err)
	}
	be := startBodyBackend(t)
	ca := certtest.NewCA(t)
	srvCert, srvKey := ca.Issue(t, goodHost)
	_, otherKey := ca.Issue(t, goodHost)
	cc := newChainCA(t)
	chainLeaf, chainKey := cc.inter.Issue(t, goodHost)
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)

	ingress := func(apiVersion, name, host, extraSpec string, svcPort int) string {
		return fmt.Sprintf(`apiVersion: %s
kind: Ingress
metadata:
  name: %s
  annotations:
    alb.ingress.kubernetes.io/listen-ports: '[{"HTTP":%d},{"HTTPS":%d}]'
    milvus-lb.io/healthcheck-type: none
spec:
  ingressClassName: alb
%s  tls:
  - secretName: server
  rules:
  - host: %s
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: body
            port:
              number: %d
`, apiVersion, name, httpPort, httpsPort, extraSpec, host, svcPort)
	}
	ingFile := filepath.Join(manifests, "ingress.yaml")
	good := yamlDocs(ingress("networking.k8s.io/v1", "good", goodHost, "", 80), tlsSecret("server", srvCert, srvKey))
	writeFile(t, ingFile, good)
	writeFile(t, filepath.Join(manifests, "body.yaml"), []byte(serviceFor("body", be.Port)))
	lb := testenv.StartLB(t, "-f", manifests)

	client := &http.Client{Timeout: 5 * time.Second}
	status := func(host string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(httpPort)+"/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("GET %s: %v", host, err)
			return 0
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	servesPrevious := func(when string) {
		t.Helper()
		if s := status(goodHost); s != http.StatusOK {
			t.Errorf("%s: GET %s = %d, want 200 from the previous configuration", when, goodHost, s)
		}
		st, err := handshake(httpsPort, &tls.Config{ServerName: goodHost, RootCAs: ca.Pool()})
		if err != nil {
			t.Errorf("%s: TLS handshake with the previous certificate: %v", when, err)
		} else if string(st.PeerCertificates[0].Raw) != string(pemDER(t, srvCert)) {
			t.Errorf("%s: the HTTPS listener no longer serves the previous certificate", when)
		}
	}
	servesPrevious("at start")

	rejected := func() int { return strings.Count(lb.Logs(), "configuration rejected") }
	for _, c := range []struct {
		name  string
		file  string // in manifests; "" means ingress.yaml
		data  []byte
		wants []string // substrings of the logged problem: file, object, field, message
	}{
		{"broken YAML", "", []byte(strings.Replace(string(good), "  name: good\n", "  name: [good\n", 1)),
			[]string{ingFile, "malformed YAML"}},
		{"Ingress of a removed apiVersion", "", yamlDocs(ingress("extensions/v1beta1", "good", goodHost, "", 80), tlsSecret("server", srvCert, srvKey)),
			[]string{ingFile, "Ingress default/good: apiVersion extensions/v1beta1 is not supported for Ingress; use networking.k8s.io/v1"}},
		{"unknown field", "", yamlDocs(ingress("networking.k8s.io/v1", "good", goodHost, "  rulez: []\n", 80), tlsSecret("server", srvCert, srvKey)),
			[]string{ingFile, "Ingress default/good: spec.rulez: unknown field"}},
		{"a route another Ingress has", "second.yaml", []byte(strings.Replace(ingress("networking.k8s.io/v1", "second", goodHost, "", 80), "  tls:\n  - secretName: server\n", "", 1)),
			[]string{filepath.Join(manifests, "second.yaml"), "Ingress default/second: spec.rules[0].http.paths[0]: host " + goodHost + " path", "is already routed by Ingress default/good"}},
		{"key that does not match the certificate", "", yamlDocs(ingress("networking.k8s.io/v1", "good", goodHost, "", 80), tlsSecret("server", srvCert, otherKey)),
			[]string{ingFile, "Ingress default/good: spec.tls[0].secretName: Secret default/server: tls.crt and tls.key are not a valid key pair"}},
		{"chain out of order", "", yamlDocs(ingress("networking.k8s.io/v1", "good", goodHost, "", 80),
			tlsSecret("server", append(append(append([]byte{}, chainLeaf...), cc.root.CertPEM...), cc.inter.CertPEM...), chainKey)),
			[]string{ingFile, "Ingress default/good: spec.tls[0].secretName: Secret default/server: tls.crt is out of order: certificate 1"}},
		{"Service port that does not exist", "", yamlDocs(ingress("networking.k8s.io/v1", "good", goodHost, "", 81), tlsSecret("server", srvCert, srvKey)),
			[]string{ingFile, "Ingress default/good: spec.rules[0].http.paths[0].backend.service.port.number: Service default/body has no port 81"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := ingFile
			if c.file != "" {
				path = filepath.Join(manifests, c.file)
			}
			before := rejected()
			replaceFile(t, path, c.data)
			deadline := time.Now().Add(15 * time.Second)
			for rejected() == before {
				if time.Now().After(deadline) {
					t.Fatalf("no \"configuration rejected\" within 15s of the edit:\n%s", lb.Logs())
				}
				time.Sleep(100 * time.Millisecond)
			}
			logs := lb.Logs()
			for _, w := range c.wants {
				if !strings.Contains(logs, w) {
					t.Errorf("the log does not say %q", w)
				}
			}
			servesPrevious("after the edit")

			// Undo it, so that the next case starts from the good configuration.
			if c.file != "" {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else {
				replaceFile(t, path, good)
			}
		})
	}
	select {
	case <-lb.Exited():
		t.Fatalf("milvus-lb exited:\n%s", lb.Logs())
	default:
	}

	// A good edit applies: the host changes.
	const newHost = "new.milvus-lb.test"
	replaceFile(t, ingFile, yamlDocs(ingress("networking.k8s.io/v1", "good", newHost, "", 80), tlsSecret("server", srvCert, srvKey)))
	deadline := time.Now().Add(15 * time.Second)
	for status(newHost) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("the good edit was not applied within 15s:\n%s", lb.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := status(goodHost); s == http.StatusOK {
		t.Errorf("GET %s still 200 after the host was renamed", goodHost)
	}
}
