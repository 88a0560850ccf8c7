package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// weightedIngress is the guide's Ingress forwarding by the ALB's weighted forward action
// to the guide's milvus-demo (blue) and milvus-b (green): %[1]s is the certificate's ARN,
// %[2]d the HTTPS port, %[3]d and %[4]d the weights.
const weightedIngress = ingressHead + `    alb.ingress.kubernetes.io/actions.blue-green: >
      {"type":"forward","forwardConfig":{"targetGroups":[
        {"serviceName":"milvus-demo","servicePort":19530,"weight":%[3]d},
        {"serviceName":"milvus-b","servicePort":19530,"weight":%[4]d}]}}
spec:
  ingressClassName: alb
  rules:
    - host: milvus-demo.milvus.io
      http:
        paths:
        - path: /
          pathType: Prefix
          backend:
            service:
              name: blue-green
              port:
                name: use-annotation
`

// The backends as milvus-lb's metrics name them.
const (
	blueBackend  = `backend="milvus/milvus-demo:19530"`
	greenBackend = `backend="milvus/milvus-b:19530"`
)

// TestWeightedForwardRealMilvus moves traffic between two real Milvus servers standing for
// two clusters as an operator does in a blue/green upgrade: pymilvus's 2,000 searches
// through milvus-lb over TLS split 80/20 within 5 %, counted by the clients (each cluster's
// answer tells it apart) and by milvus-lb's metrics; then the operator edits the weights
// to 0/100 while pymilvus keeps calling from 4 threads, and no call fails.
func TestWeightedForwardRealMilvus(t *testing.T) {
	g := prepareGuide(t, testenv.FreePort(t))
	a, b := g.lite, testenv.StartMilvusLite(t)
	writeFile(t, g.ingressFile(), fmt.Sprintf(weightedIngress, g.arn, g.port, 80, 20))
	next := filepath.Join(g.dir, "ingress-next.yaml")
	writeFile(t, next, fmt.Sprintf(weightedIngress, g.arn, g.port, 0, 100))
	writeFile(t, g.milvusFile(), fmt.Sprintf(milvusYAML, a.Port)+fmt.Sprintf(clusterB, b.Port))
	g.serve(t)
	argv := []string{testenv.Python(t), filepath.Join(testenv.Root(t), "test", "clients", "weighted_check.py"),
		"--host", g.address, "--port", strconv.Itoa(g.port), "--server-name", host, "--ca", g.ca,
		"--direct-a", a.Addr, "--direct-b", b.Addr, "--weights", "80,20"}

	testenv.RunClient(t, clientTimeout, "weighted_check: PASS", append(argv, "--phase", "split")...)
	metrics := fetch(t, "http://"+g.lb.AdminAddr+"/metrics")
	blue := metricSum(t, metrics, "milvus_lb_requests_total", blueBackend, `method="Search"`)
	green := metricSum(t, metrics, "milvus_lb_requests_total", greenBackend, `method="Search"`)
	t.Logf("milvus-lb's metrics: %v searches to blue, %v to green", blue, green)
	if blue < 1520 || blue > 1680 || green < 380 || green > 420 || blue+green != 2000 {
		t.Errorf("milvus-lb counted %v searches to blue and %v to green, want 1,600 and 400 within 5 %%", blue, green)
	}

	testenv.RunClient(t, clientTimeout, "weighted_check: PASS", append(argv, "--phase", "change",
		"--next-weights", "0,100", "--ingress", g.ingressFile(), "--next-ingress", next)...)
	metrics = fetch(t, "http://"+g.lb.AdminAddr+"/metrics")
	failed := 0.0
	for line := range strings.Lines(metrics) {
		// A reply without a Milvus Status (GetVersion's has one; a few do not) has milvus_code="".
		ok := strings.Contains(line, ` code="OK"`) || strings.Contains(line, `{code="OK"`) || strings.Contains(line, `,code="OK"`)
		ok = ok && (strings.Contains(line, `milvus_code="Success"`) || strings.Contains(line, `milvus_code=""`))
		if strings.HasPrefix(line, "milvus_lb_requests_total{") && !ok {
			t.Logf("%s", strings.TrimSpace(line))
			failed += metricValue(t, line)
		}
	}
	if failed != 0 {
		t.Errorf("milvus-lb counted %v calls that did not succeed", failed)
	}
}

// metricSum is the sum of the samples of metric name whose labels include every one of
// labels (each written as name="value"), in a /metrics page.
func metricSum(t *testing.T, page, name string, labels ...string) float64 {
	t.Helper()
	sum := 0.0
	for line := range strings.Lines(page) {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(line, l)
		}
		if all {
			sum += metricValue(t, line)
		}
	}
	return sum
}

// metricValue is the value of a sample line of a /metrics page.
func metricValue(t *testing.T, line string) float64 {
	t.Helper()
	f := strings.Fields(line)
	v, err := strconv.ParseFloat(f[len(f)-1], 64)
	if err != nil {
		t.Fatalf("metrics line %q: %v", line, err)
	}
	return v
}
