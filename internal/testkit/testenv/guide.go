package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// GuideARN is the placeholder certificate-arn of the guide's ingress.yaml.
const GuideARN = "arn:aws:acm:region:account-id:certificate/certificate-id"

// GuideIngress returns the guide's ingress.yaml (test/testdata/guide/ingress.yaml, the one
// copy every test and the demo use) with the certificate ARN that `cert import` printed
// and, where a test cannot bind 443, another HTTPS port. Nothing else changes.
func GuideIngress(t testing.TB, arn string, port int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(t), "test", "testdata", "guide", "ingress.yaml"))
	if err != nil {
		t.Fatalf("testenv: the guide's ingress.yaml: %v", err)
	}
	s := strings.Replace(string(b), GuideARN, arn, 1)
	if port != 443 {
		s = strings.Replace(s, `'[{"HTTPS":443}]'`, `'[{"HTTPS":`+strconv.Itoa(port)+`}]'`, 1)
	}
	return s
}
