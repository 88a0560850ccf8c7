package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// secretYAML is the kubernetes.io/tls Secret `kubectl create secret tls --dry-run=client
// -o yaml` writes, with the certificate and its chain in tls.crt.
const secretYAML = `apiVersion: v1
kind: Secret
metadata:
  namespace: milvus
  name: milvus-demo-tls
type: kubernetes.io/tls
stringData:
  tls.crt: |
%s
  tls.key: |
%s
`

func indent(b []byte) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n")
}

// The guide's setup as a Gateway and a GRPCRoute (examples/gateway-api/gateway.yaml, its
// port changed to a free one) served by `milvus-lb serve -f`, and pymilvus through it with
// TLS and server_name as the guide connects.
func TestGatewayAPIGuide(t *testing.T) {
	dir := t.TempDir()
	port := testenv.FreePort(t)
	lite := testenv.StartMilvusLite(t)
	ca := certtest.WriteGuideFiles(t, dir, host)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	crt := append(read(certtest.CertificateFile), read(certtest.CertificateChainFile)...)
	example, err := os.ReadFile(filepath.Join(testenv.Root(t), "examples", "gateway-api", "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	gw := strings.Replace(string(example), "port: 443", "port: "+strconv.Itoa(port), 1)
	files := map[string]string{
		"gateway.yaml": gw,
		"secret.yaml":  fmt.Sprintf(secretYAML, indent(crt), indent(read(certtest.PrivateKeyFile))),
		"milvus.yaml":  fmt.Sprintf(milvusYAML, lite.Port),
	}
	var args []string
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
		args = append(args, "-f", filepath.Join(dir, name))
	}
	testenv.StartLB(t, args...)
	argv := append(testenv.GuideCheck(t), "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--server-name", host, "--ca", ca)
	testenv.RunClient(t, clientTimeout, "guide_check: PASS", argv...)
}
