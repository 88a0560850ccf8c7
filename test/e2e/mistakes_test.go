package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// TestValidateGuideFiles: `milvus-lb validate` on the guide's files, as the user wrote them,
// says they are valid and what will be served.
func TestValidateGuideFiles(t *testing.T) {
	g := prepareGuide(t, testenv.FreePort(t))
	out := testenv.MilvusLB(t, "validate", "-f", g.ingressFile(), "-f", g.milvusFile(), "--state-dir", g.stateDir)
	want := fmt.Sprintf("valid: 1 ingress(es) served on HTTPS %d", g.port)
	if !strings.Contains(out, want) {
		t.Errorf("validate printed %q, want it to say %q", out, want)
	}
}

// TestGuideMistakes makes the mistakes a user following the guide makes, and checks that
// both `validate` and `serve` name the file, the object and the field, and that serve
// refuses to start instead of serving half a configuration.
func TestGuideMistakes(t *testing.T) {
	g := prepareGuide(t, testenv.FreePort(t))
	guideIngress, err := os.ReadFile(g.ingressFile())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		edit    func(string) string
		wantMsg string // a line of the report, after the file name
	}{
		{
			name: "service name typo",
			edit: func(s string) string {
				return strings.Replace(s, "service:\n              name: milvus-demo\n", "service:\n              name: milvus-demoo\n", 1)
			},
			// The example of the base issue, verbatim.
			wantMsg: "ingress.yaml: Ingress milvus/milvus-demo: spec.rules[0].http.paths[0].backend.service.name: Service milvus/milvus-demoo not found",
		},
		{
			name: "certificate not imported",
			edit: func(s string) string {
				return strings.Replace(s, g.arn, "arn:aws:acm:region:account-id:certificate/certificate-id", 1)
			},
			wantMsg: "ingress.yaml: Ingress milvus/milvus-demo: metadata.annotations[alb.ingress.kubernetes.io/certificate-arn]",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited := tc.edit(string(guideIngress))
			if edited == string(guideIngress) {
				t.Fatal("the edit changed nothing; the test is wrong")
			}
			writeFile(t, g.ingressFile(), edited)
			t.Cleanup(func() { writeFile(t, g.ingressFile(), string(guideIngress)) })

			stdout, stderr, err := testenv.RunMilvusLB(t, "validate", "-f", g.ingressFile(), "-f", g.milvusFile(), "--state-dir", g.stateDir)
			if err == nil {
				t.Errorf("validate exited 0 on a broken ingress.yaml; printed:\n%s%s", stdout, stderr)
			}
			if !strings.Contains(stdout+stderr, tc.wantMsg) {
				t.Errorf("validate printed:\n%s%s\nwant a line containing:\n%s", stdout, stderr, tc.wantMsg)
			}

			// serve refuses to start, with the same report; it must not bind anything, so
			// it exits before RunMilvusLB's deadline.
			admin := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
			stdout, stderr, err = testenv.RunMilvusLB(t, "serve", "-f", g.ingressFile(), "-f", g.milvusFile(),
				"--state-dir", g.stateDir, "--admin-addr", admin, "--bind-address", "127.0.0.1")
			if err == nil {
				t.Errorf("serve exited 0 on a broken ingress.yaml")
			}
			if !strings.Contains(stdout+stderr, tc.wantMsg) {
				t.Errorf("serve printed:\n%s%s\nwant a line containing:\n%s", stdout, stderr, tc.wantMsg)
			}
		})
	}
}
