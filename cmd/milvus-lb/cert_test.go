package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
)

// TestCertCommand runs the built binary as the guide's user would, with the guide's
// three files.
func TestCertCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "milvus-lb")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// run executes the binary and returns its stdout, stderr and exit code.
	run := func(t *testing.T, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		// No state directory from the environment leaks into, or out of, the test.
		cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir())
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			code = ee.ExitCode()
		default:
			t.Fatalf("run %v: %v", args, err)
		}
		return o.String(), e.String(), code
	}

	dir := t.TempDir()
	certtest.WriteGuideFiles(t, dir, "milvus-demo.milvus.io")
	guide := func(name string) string { return "fileb://" + filepath.Join(dir, name) }
	ca := certtest.NewCA(t)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, otherKey := ca.Issue(t, "milvus-demo.milvus.io")
	mismatchedKey := write("other-key.pem", otherKey)
	expiredCert, expiredKey := ca.IssueTemplate(t, &x509.Certificate{
		DNSNames:    []string{"milvus-demo.milvus.io"},
		NotBefore:   time.Date(2023, 1, 2, 0, 0, 0, 0, time.UTC),
		NotAfter:    time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	expired, expiredKeyFile := write("expired.pem", expiredCert), write("expired-key.pem", expiredKey)
	wrongChain := write("wrong-chain.pem", ca.CertPEM)

	arnRE := regexp.MustCompile(`^\{\n    "CertificateArn": "(arn:milvus-lb:acm:local:000000000000:certificate/[0-9a-f-]{36})"\n\}\n$`)

	t.Run("import, re-import, list and delete", func(t *testing.T) {
		state := t.TempDir()
		stdout, stderr, code := run(t, "cert", "import",
			"--certificate", guide("Certificate.pem"),
			"--certificate-chain", guide("CertificateChain.pem"),
			"--private-key", guide("PrivateKey.pem"),
			"--state-dir", state)
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		m := arnRE.FindStringSubmatch(stdout)
		if m == nil {
			t.Fatalf("stdout %q is not the aws-style {\"CertificateArn\": ...}", stdout)
		}
		arn := m[1]

		// Plain paths and file:// work too, and the same certificate keeps its ARN.
		stdout, _, code = run(t, "cert", "import",
			"--certificate", filepath.Join(dir, "Certificate.pem"),
			"--certificate-chain", "file://"+filepath.Join(dir, "CertificateChain.pem"),
			"--private-key", filepath.Join(dir, "PrivateKey.pem"),
			"--state-dir", state)
		if m := arnRE.FindStringSubmatch(stdout); code != 0 || m == nil || m[1] != arn {
			t.Errorf("re-import: exit %d, stdout %q; want ARN %s", code, stdout, arn)
		}

		stdout, _, code = run(t, "cert", "list", "--state-dir", state)
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if code != 0 || len(lines) != 2 {
			t.Fatalf("list: exit %d, stdout:\n%s", code, stdout)
		}
		if f := strings.Fields(lines[0]); strings.Join(f, " ") != "ARN SUBJECT SANS EXPIRES" {
			t.Errorf("list header %q", lines[0])
		}
		f := strings.Fields(lines[1])
		if len(f) != 4 || f[0] != arn || f[1] != "CN=milvus-demo.milvus.io" || f[2] != "milvus-demo.milvus.io" {
			t.Errorf("list row %q", lines[1])
		}
		if exp, err := time.Parse(time.RFC3339, f[3]); err != nil || time.Until(exp) < 23*time.Hour {
			t.Errorf("EXPIRES %q: want a time a day from now (%v)", f[3], err)
		}

		stdout, _, code = run(t, "cert", "list", "--state-dir", state, "-o", "json")
		var got struct {
			CertificateSummaryList []struct {
				CertificateArn, DomainName, Status string
				SubjectAlternativeNameSummaries    []string
			}
		}
		if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil {
			t.Fatalf("list -o json: exit %d, %v:\n%s", code, err, stdout)
		}
		if l := got.CertificateSummaryList; len(l) != 1 || l[0].CertificateArn != arn || l[0].DomainName != "milvus-demo.milvus.io" ||
			l[0].Status != "ISSUED" || strings.Join(l[0].SubjectAlternativeNameSummaries, ",") != "milvus-demo.milvus.io" {
			t.Errorf("list -o json = %+v", got)
		}

		stdout, stderr, code = run(t, "cert", "delete", "--certificate-arn", arn, "--state-dir", state)
		if code != 0 || stdout != "" || stderr != "" {
			t.Errorf("delete: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		_, stderr, code = run(t, "cert", "delete", "--certificate-arn", arn, "--state-dir", state)
		if want := "milvus-lb: certificate " + arn + " not found in " + state + "\n"; code == 0 || stderr != want {
			t.Errorf("second delete: exit %d, stderr %q, want %q", code, stderr, want)
		}
	})

	t.Run("default state dir", func(t *testing.T) {
		xdg := t.TempDir()
		cmd := exec.Command(bin, "cert", "import", "--certificate", guide("Certificate.pem"),
			"--certificate-chain", guide("CertificateChain.pem"), "--private-key", guide("PrivateKey.pem"))
		cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+xdg)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		entries, err := os.ReadDir(filepath.Join(xdg, "milvus-lb", "certificates"))
		if err != nil || len(entries) != 1 {
			t.Errorf("$XDG_STATE_HOME/milvus-lb/certificates: %d entries, %v", len(entries), err)
		}
	})

	t.Run("empty list", func(t *testing.T) {
		state := t.TempDir()
		stdout, stderr, code := run(t, "cert", "list", "--state-dir", state)
		if code != 0 || stdout != "" || stderr != "No certificates in "+state+".\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	for _, tc := range []struct {
		name             string
		cert, chain, key string
		wantStderr       string // exact, or a prefix if it ends in "..."
	}{
		{"mismatched key", guide("Certificate.pem"), guide("CertificateChain.pem"), "fileb://" + mismatchedKey,
			"milvus-lb: private key does not match the certificate\n"},
		{"expired", expired, guide("CertificateChain.pem"), expiredKeyFile,
			"milvus-lb: certificate expired on 2024-01-02T00:00:00Z\n"},
		{"wrong chain", guide("Certificate.pem"), "fileb://" + wrongChain, guide("PrivateKey.pem"),
			"milvus-lb: certificate chain does not verify the certificate: x509: certificate signed by unknown authority..."},
		{"no chain for a CA-signed certificate", guide("Certificate.pem"), "", guide("PrivateKey.pem"),
			"milvus-lb: certificate chain is empty, but the certificate is not self-signed: pass the certificates of its issuer (CN=milvus-lb test CA,O=milvus-lb tests) up to the root as the chain\n"},
		{"missing file", "fileb://" + filepath.Join(dir, "nope.pem"), guide("CertificateChain.pem"), guide("PrivateKey.pem"),
			"milvus-lb: --certificate: open " + filepath.Join(dir, "nope.pem") + ": no such file or directory\n"},
		{"missing key flag", guide("Certificate.pem"), guide("CertificateChain.pem"), "",
			"milvus-lb: required flag(s) \"private-key\" not set\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			args := []string{"cert", "import", "--certificate", tc.cert, "--state-dir", state}
			if tc.chain != "" {
				args = append(args, "--certificate-chain", tc.chain)
			}
			if tc.key != "" {
				args = append(args, "--private-key", tc.key)
			}
			stdout, stderr, code := run(t, args...)
			if code == 0 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want a failure and no ARN", code, stdout)
			}
			if p, ok := strings.CutSuffix(tc.wantStderr, "..."); ok {
				if !strings.HasPrefix(stderr, p) {
					t.Errorf("stderr %q\nwant prefix %q", stderr, p)
				}
			} else if stderr != tc.wantStderr {
				t.Errorf("stderr %q\nwant       %q", stderr, tc.wantStderr)
			}
			if entries, _ := os.ReadDir(state); len(entries) != 0 {
				t.Errorf("state dir holds %d entries after a failed import", len(entries))
			}
		})
	}
}
