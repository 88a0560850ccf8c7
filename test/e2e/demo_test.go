package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// runScript runs a script of scripts/ with bash and extra environment, and returns its
// combined output; it fails the test if the script fails.
func runScript(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", args...)
	c.Dir = testenv.Root(t)
	c.Env = append(os.Environ(), env...)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("bash %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testOnly are words naming what only the tests use; the demo's setup mentions none.
var testOnly = []string{"etcd", "nginx", "haproxy", "caddy", "nghttp2", "kubernetes-client", "kubectl",
	"node", "npm", "go client", "goclient", "tools", "kube-apiserver", "helm", "setup.d"}

// The demo installs what it runs and nothing else: openssl, Python's venv module and the
// venv with milvus-lite and pymilvus (scripts/setup.sh --demo); the test tools come from
// the full setup only. With a fresh cache, as on a new machine, --dry-run says what it
// would do after the same checks.
func TestDemoInstallsOnlyWhatItRuns(t *testing.T) {
	env := []string{"MILVUS_LB_CACHE=" + t.TempDir()}
	out := runScript(t, env, "scripts/demo.sh", "--dry-run")
	var steps []string
	for line := range strings.Lines(out) {
		if step, ok := strings.CutPrefix(line, "setup: "); ok && !strings.HasPrefix(step, "done") {
			steps = append(steps, strings.TrimSpace(step))
		}
	}
	if len(steps) != 2 || !strings.HasPrefix(steps[0], "debian packages (demo) ... ") ||
		!strings.HasSuffix(steps[0], "openssl python3-venv") && !strings.Contains(steps[0], "(present: openssl python3-venv)") ||
		!strings.HasPrefix(steps[1], "python venv (milvus-lite, pymilvus) ... would build") {
		t.Errorf("the demo's setup steps are:\n  %s\nwant the Debian packages openssl and python3-venv, then the venv", strings.Join(steps, "\n  "))
	}
	for _, w := range testOnly {
		if strings.Contains(strings.ToLower(out), w) {
			t.Errorf("the demo's setup mentions %q, which only the tests use:\n%s", w, out)
		}
	}

	// The full setup is where those come from.
	full := runScript(t, env, "scripts/setup.sh", "--dry-run")
	for _, w := range []string{"debian packages (tests)", "etcd-server", "nginx-light", "haproxy", "caddy", "node sdk", "go client", "conformance tools"} {
		if !strings.Contains(full, w) {
			t.Errorf("the full setup does not mention %q:\n%s", w, full)
		}
	}
}

// The commands the demo prints are the commands it runs: every "$ ..." line it prints
// appears, word for word, in bash's trace of what it executed.
func TestDemoPrintsWhatItRuns(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace")
	// BASH_XTRACEFD sends the trace of `bash -x` to descriptor 3, away from the output.
	out := runScript(t, []string{"BASH_XTRACEFD=3"}, "-c", `exec 3>"$0"; bash -x scripts/demo.sh`, trace)
	if !strings.Contains(out, "demo: PASS") {
		t.Fatalf("the demo did not pass:\n%s", out)
	}
	executed := map[string]bool{}
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		cmd := strings.TrimLeft(sc.Text(), "+ ")
		// A command run with an environment assignment is traced with it in front.
		for {
			first, rest, ok := strings.Cut(cmd, " ")
			if !ok || !strings.Contains(first, "=") || strings.HasPrefix(first, "-") {
				break
			}
			cmd = rest
		}
		executed[cmd] = true
	}
	printed := 0
	for line := range strings.Lines(out) {
		cmd, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "$ ")
		if !ok {
			continue
		}
		printed++
		if !executed[cmd] {
			t.Errorf("the demo printed a command it did not run as printed:\n  %s", cmd)
		}
	}
	// go build, milvus-lite, cert import, serve, get ingress, the pymilvus check.
	if printed != 6 {
		t.Errorf("the demo printed %d commands, want 6:\n%s", printed, out)
	}
}

// The test setup installs nginx, etcd, Caddy and HAProxy for the tests, which start their
// own; the packages' system services must not start at the next boot (nginx and Caddy
// would take ports 80 and 443).
func TestSetupDisablesTestDaemonsAtBoot(t *testing.T) {
	// The hook picks the units of the daemons setup installed, and only those.
	cache := t.TempDir()
	if err := os.WriteFile(filepath.Join(cache, "setup-installed"), []byte("nginx-light\ngcc\netcd-server\ncaddy\nhaproxy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runScript(t, []string{"MILVUS_LB_CACHE=" + cache, "DRY_RUN=1"}, "scripts/setup.d/05-test-packages.sh")
	if !strings.Contains(out, "would disable at boot: nginx.service etcd.service caddy.service haproxy.service") {
		t.Errorf("05-test-packages.sh --dry-run said:\n%s\nwant it to disable nginx, etcd, caddy and haproxy at boot", out)
	}

	// disable_at_boot removes the symlinks that enable them, in a systemd tree of our own.
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("no systemctl here")
	}
	root := t.TempDir()
	units := []string{"nginx.service", "etcd.service", "caddy.service", "haproxy.service"}
	for _, d := range []string{"lib/systemd/system", "etc/systemd/system/multi-user.target.wants"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wants := func(u string) string { return filepath.Join(root, "etc/systemd/system/multi-user.target.wants", u) }
	for _, u := range units {
		unit := "[Unit]\nDescription=" + u + "\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
		if err := os.WriteFile(filepath.Join(root, "lib/systemd/system", u), []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/lib/systemd/system/"+u, wants(u)); err != nil {
			t.Fatal(err)
		}
	}
	runScript(t, nil, append([]string{"-c", `source scripts/lib.sh && disable_at_boot --root "$0" "$@"`, root}, units...)...)
	for _, u := range units {
		if _, err := os.Lstat(wants(u)); err == nil {
			t.Errorf("%s is still enabled at boot", u)
		}
	}

	// And on this machine, for the daemons the test setup installed here.
	installed, _ := os.ReadFile(filepath.Join(testenv.CacheDir(), "setup-installed"))
	for pkg, unit := range map[string]string{"nginx-light": "nginx", "etcd-server": "etcd", "caddy": "caddy", "haproxy": "haproxy"} {
		if !strings.Contains("\n"+string(installed), "\n"+pkg+"\n") {
			continue
		}
		if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/" + unit + ".service"); err == nil {
			t.Errorf("scripts/setup.sh installed %s and left %s.service enabled at boot", pkg, unit)
		}
	}
}
