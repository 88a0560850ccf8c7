package conformance

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// h2specPath is the path h2spec requests; the Ingress routes every path to a backend that
// answers 200 with a body, which the generic cases need to see DATA frames.
const h2specPath = "/h2spec"

// h2specExcluded are the h2spec cases that fail against milvus-lb for reasons that are not
// milvus-lb's to fix, each explained in docs/conformance.md. The key is the case ID h2spec
// takes on its command line; the value says on which listener ("both", "h2c") and why.
// A case listed here that starts passing fails the test, so that this list and the
// document stay true.
var h2specExcluded = map[string]struct{ on, why string }{
	"http2/3.5/2": {"h2c", "the cleartext port also serves HTTP/1.1 (Milvus REST shares the port): " +
		"the invalid preface is read as an HTTP/1.1 request line, answered 400 and the connection closed"},
}

// h2specLB starts a balancer with an h2c port and a TLS port in front of a body backend.
func h2specLB(t *testing.T) (plain, tlsPort int, be *bodyBackend) {
	t.Helper()
	dir := t.TempDir()
	be = startBodyBackend(t)
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "conformance.milvus-lb.test")
	plain, tlsPort = testenv.FreePort(t), testenv.FreePort(t)
	ing := fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: h2spec
  annotations:
    alb.ingress.kubernetes.io/listen-ports: '[{"HTTP":%d},{"HTTPS":%d}]'
    milvus-lb.io/healthcheck-type: none
spec:
  ingressClassName: alb
  tls:
  - secretName: h2spec-tls
  defaultBackend:
    service:
      name: body
      port:
        number: 80
`, plain, tlsPort)
	f := filepath.Join(dir, "h2spec.yaml")
	writeFile(t, f, yamlDocs(ing, tlsSecret("h2spec-tls", certPEM, keyPEM), serviceFor("body", be.Port)))
	testenv.StartLB(t, "-f", f)
	return plain, tlsPort, be
}

// TestH2spec runs every h2spec case against the TLS and the h2c listener. Every case passes
// but those in h2specExcluded.
func TestH2spec(t *testing.T) {
	h2spec := tool(t, "h2spec")
	plain, tlsPort, be := h2specLB(t)
	for _, l := range []struct {
		name string
		args []string
	}{
		{"tls", []string{"-p", strconv.Itoa(tlsPort), "-t", "-k"}},
		{"h2c", []string{"-p", strconv.Itoa(plain)}},
	} {
		t.Run(l.name, func(t *testing.T) {
			res := runH2spec(t, h2spec, l.args)
			var failed, passedExcluded []string
			for _, c := range res.cases {
				ex, excluded := h2specExcluded[c.id]
				excluded = excluded && (ex.on == "both" || ex.on == l.name)
				switch {
				case c.failed && !excluded:
					failed = append(failed, c.id+" "+c.desc+"\n    "+c.detail)
				case !c.failed && !c.skipped && excluded:
					passedExcluded = append(passedExcluded, c.id)
				}
			}
			t.Logf("h2spec %s: %d cases, %d passed, %d skipped, %d failed (%d of them excluded in docs/conformance.md)",
				l.name, len(res.cases), res.passed, res.skipped, res.failed, res.failed-len(failed))
			if len(res.cases) < 140 {
				t.Errorf("h2spec ran %d cases; its full suite has 145", len(res.cases))
			}
			if len(failed) > 0 {
				t.Errorf("h2spec cases failed:\n  %s", strings.Join(failed, "\n  "))
			}
			if len(passedExcluded) > 0 {
				t.Errorf("excluded h2spec cases now pass; remove them from h2specExcluded and docs/conformance.md: %v", passedExcluded)
			}

			// 4.2/3 with a far larger frame: a HEADERS frame of about 1.3 MB (five headers of
			// 300000 bytes) must end the connection with FRAME_SIZE_ERROR too, not be read.
			big := runH2spec(t, h2spec, append(l.args, "--max-header-length", "300000", "http2/4.2/3"))
			if big.passed != 1 {
				t.Errorf("h2spec http2/4.2/3 with a 1.3 MB HEADERS frame: %d passed, %d failed:\n%s", big.passed, big.failed, big.output)
			}

			// 8.1.2.2: the malformed requests (connection-specific fields) must not reach a
			// backend.
			before, _ := be.Requests()
			runH2spec(t, h2spec, append(l.args, "http2/8.1.2.2"))
			if after, _ := be.Requests(); after != before {
				t.Errorf("h2spec http2/8.1.2.2: %d requests with connection-specific headers reached the backend", after-before)
			}
		})
	}
	if n, _ := be.Requests(); n == 0 {
		t.Errorf("no h2spec request reached the backend: the route is wrong and the generic cases proved nothing")
	}
}

type h2specCase struct {
	id, desc, detail string
	failed, skipped  bool
}

type h2specResult struct {
	cases                   []h2specCase
	passed, skipped, failed int
	output                  string
}

// runH2spec runs h2spec against 127.0.0.1 with args and reads its JUnit report. h2spec
// exits non-zero when any case fails; the report, not the status, is the verdict.
func runH2spec(t *testing.T, h2spec string, args []string) h2specResult {
	t.Helper()
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	argv := append([]string{"-h", "127.0.0.1", "-P", h2specPath, "-o", "3", "-j", report}, args...)
	c := exec.CommandContext(ctx, h2spec, argv...)
	out, err := c.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("h2spec %s did not finish in time:\n%s", strings.Join(argv, " "), out)
	}
	data, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("h2spec %s wrote no report (%v, exit %v):\n%s", strings.Join(argv, " "), rerr, err, out)
	}
	res, perr := parseH2specReport(data)
	if perr != nil {
		t.Fatalf("h2spec report: %v", perr)
	}
	res.output = string(out)
	return res
}

// h2spec's JUnit report: one testsuite per section, its package the section's ID; the
// cases of a section are numbered from 1 in order, which makes their IDs.
type junitReport struct {
	Suites []struct {
		Package string `xml:"package,attr"`
		Cases   []struct {
			Name string `xml:"classname,attr"`
			// h2spec reports a failed case as <error> (sometimes <failure>) whose body is
			// the frames it expected.
			Error   *junitText `xml:"error"`
			Failure *junitText `xml:"failure"`
			Skipped *struct{}  `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitText struct {
	Text string `xml:",chardata"`
}

func parseH2specReport(data []byte) (h2specResult, error) {
	var r junitReport
	if err := xml.Unmarshal(data, &r); err != nil {
		return h2specResult{}, err
	}
	var res h2specResult
	for _, s := range r.Suites {
		for i, c := range s.Cases {
			hc := h2specCase{id: s.Package + "/" + strconv.Itoa(i+1), desc: c.Name}
			switch {
			case c.Error != nil || c.Failure != nil:
				hc.failed = true
				if c.Error != nil {
					hc.detail = "expected: " + strings.Join(strings.Fields(c.Error.Text), " ")
				} else {
					hc.detail = "expected: " + strings.Join(strings.Fields(c.Failure.Text), " ")
				}
				res.failed++
			case c.Skipped != nil:
				hc.skipped = true
				res.skipped++
			default:
				res.passed++
			}
			res.cases = append(res.cases, hc)
		}
	}
	return res, nil
}
