package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// editManifest writes manifests(port) with old replaced by new, checking that the edit
// applies.
func editManifest(t *testing.T, port int, old, new string) string {
	t.Helper()
	file := manifests(t, port, "    milvus-lb.io/healthcheck-type: none", "127.0.0.1:19530")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b), old, new, 1)
	if edited == string(b) {
		t.Fatalf("the edit %q → %q changed nothing; the test is wrong", old, new)
	}
	if err := os.WriteFile(file, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// A misspelt listen-ports key used to validate as served on the default port in silence.
func TestValidateNamesMisspeltAnnotation(t *testing.T) {
	file := editManifest(t, 8443, "alb.ingress.kubernetes.io/listen-ports", "alb.ingres.kubernetes.io/listen-ports")
	stdout, stderr, _ := testenv.RunMilvusLB(t, "validate", "-f", file, "--state-dir", t.TempDir())
	want := "metadata.annotations[alb.ingres.kubernetes.io/listen-ports]: annotation alb.ingres.kubernetes.io/listen-ports is ignored; did you mean alb.ingress.kubernetes.io/listen-ports?"
	if !strings.Contains(stdout, "warning: "+file+": Ingress milvus/milvus-demo: "+want) {
		t.Errorf("validate printed:\n%s%s\nwant the warning:\n%s", stdout, stderr, want)
	}
}

// An Ingress of a class nobody serves is named, and validate fails when nothing at all
// is served, unless --allow-empty says that is meant.
func TestValidateUnservedClass(t *testing.T) {
	file := editManifest(t, 8080, "ingressClassName: alb", "ingressClassName: abl")
	stdout, stderr, err := testenv.RunMilvusLB(t, "validate", "-f", file, "--state-dir", t.TempDir())
	if err == nil {
		t.Errorf("validate exited 0 with nothing served:\n%s", stdout)
	}
	for _, want := range []string{
		`spec.ingressClassName: class "abl" is not served and no IngressClass of that name exists: not served; served classes: alb, milvus-lb (--ingress-class); did you mean alb?`,
		"error: none of the 1 Ingress(es) is served (see the warnings about their class): nothing would be served (--allow-empty accepts that)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("validate printed:\n%s%s\nwant a line containing:\n%s", stdout, stderr, want)
		}
	}

	stdout, stderr, err = testenv.RunMilvusLB(t, "validate", "-f", file, "--state-dir", t.TempDir(), "--allow-empty")
	if err != nil || !strings.Contains(stdout, `class "abl" is not served`) || !strings.Contains(stdout, "valid: 0 ingress(es) served") {
		t.Errorf("validate --allow-empty: %v\n%s%s\nwant exit 0, the warning and \"valid: 0 ingress(es) served\"", err, stdout, stderr)
	}
}

func TestValidateNoIngress(t *testing.T) {
	file := filepath.Join(t.TempDir(), "milvus.yaml")
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: milvus-demo, namespace: milvus}\nspec:\n  ports: [{name: milvus, port: 19530}]\n"
	if err := os.WriteFile(file, []byte(svc), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := testenv.RunMilvusLB(t, "validate", "-f", file, "--state-dir", t.TempDir())
	if want := "error: no Ingress or Gateway in the files: nothing would be served (--allow-empty accepts that)"; err == nil || !strings.Contains(stdout, want) {
		t.Errorf("validate: %v\n%s%s\nwant a failure saying %q", err, stdout, stderr, want)
	}
}

// "certificate … not found" names the state directory it looked in: importing as one user
// and serving as another (or with another --state-dir) reads two different stores.
func TestCertificateNotFoundNamesStateDir(t *testing.T) {
	file := editManifest(t, 8443, `'[{"HTTP":8443}]'`,
		`'[{"HTTPS":8443}]'`+"\n    alb.ingress.kubernetes.io/certificate-arn: arn:milvus-lb:acm:local:000000000000:certificate/00000000-0000-4000-8000-000000000000")
	state := t.TempDir()
	stdout, stderr, err := testenv.RunMilvusLB(t, "validate", "-f", file, "--state-dir", state)
	want := "certificate arn:milvus-lb:acm:local:000000000000:certificate/00000000-0000-4000-8000-000000000000 not found in state directory " + state
	if err == nil || !strings.Contains(stdout, want) {
		t.Errorf("validate: %v\n%s%s\nwant a failure containing %q", err, stdout, stderr, want)
	}
}

// A port below 1024 that this process may not bind is reported by validate and by serve
// before serve opens anything, with the ways to allow it.
func TestPrivilegedPort(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Skip("no net.ipv4.ip_unprivileged_port_start: not Linux, or a kernel before 4.11")
	}
	if start, _ := strconv.Atoi(strings.TrimSpace(string(b))); start <= 80 {
		t.Skipf("ip_unprivileged_port_start is %d: any process may bind port 80 here", start)
	}
	// As root, drop CAP_NET_BIND_SERVICE from the bounding set so that the command runs
	// without it, as an ordinary user's would.
	var wrap []string
	if os.Geteuid() == 0 {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("running as root without setpriv (util-linux) to drop CAP_NET_BIND_SERVICE")
		}
		wrap = []string{setpriv, "--bounding-set=-net_bind_service", "--"}
	}
	bin := testenv.BuildMilvusLB(t)
	run := func(args ...string) (string, error) {
		argv := append(append(append([]string{}, wrap...), bin), args...)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		return string(out), err
	}
	file := manifests(t, 80, "    milvus-lb.io/healthcheck-type: none", "127.0.0.1:19530")
	const want = "port 80 is below"
	out, err := run("validate", "-f", file, "--state-dir", t.TempDir())
	if err == nil || !strings.Contains(out, want) || !strings.Contains(out, "setcap cap_net_bind_service=+ep") ||
		!strings.Contains(out, "Ingress milvus/milvus-demo: metadata.annotations[alb.ingress.kubernetes.io/listen-ports]") {
		t.Errorf("validate: %v\n%s\nwant a failure naming the Ingress, %q and setcap", err, out, want)
	}
	admin := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	out, err = run("serve", "-f", file, "--state-dir", t.TempDir(), "--admin-addr", admin)
	if err == nil || !strings.Contains(out, want) || !strings.Contains(out, "refusing to start") {
		t.Errorf("serve: %v\n%s\nwant it to refuse to start, saying %q", err, out, want)
	}
	if strings.Contains(out, "level=") {
		t.Errorf("serve logged before refusing, so something had started:\n%s", out)
	}
}
