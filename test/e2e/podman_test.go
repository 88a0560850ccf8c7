package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// podman runs podman as root with storage of its own (removed with the test), so that the
// images and containers of a test never meet the machine's.
type podman struct {
	t    *testing.T
	dirs []string // --root, --runroot
}

const podmanHint = "run scripts/test.d/30-image.sh first (it installs podman, runc and skopeo from Debian)"

func newPodman(t *testing.T) *podman {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatalf("the image test runs containers with rootful podman and needs root")
	}
	for _, cmd := range []string{"podman", "runc", "skopeo"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Fatalf("%s is not installed: %s", cmd, podmanHint)
		}
	}
	dir := t.TempDir()
	return &podman{t: t, dirs: []string{"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run")}}
}

// command is `podman args...` with this test's storage. Two settings make podman work on
// machines like the CI's, where the kernel has cgroups v1 and v2 controllers at once
// ("hybrid", which crun refuses) and there is no systemd: runc, and cgroupfs.
func (p *podman) command(ctx context.Context, args ...string) *exec.Cmd {
	global := append([]string{"--runtime", "runc", "--cgroup-manager", "cgroupfs"}, p.dirs...)
	return exec.CommandContext(ctx, "podman", append(global, args...)...)
}

// run runs a podman command to completion and returns its standard output.
func (p *podman) run(args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := p.command(ctx, args...)
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// runArgs are the `podman run` flags of a container that runs as the Deployment in deploy/
// runs its pod: a read-only root filesystem, no capabilities, no privilege escalation.
// The user and the entrypoint are the image's own. It shares the host's network so that it
// reaches milvus-lite on 127.0.0.1 and the test reaches it.
//
// podman asks for 1048576 open files by default, which a process without
// CAP_SYS_RESOURCE (as in a sandbox) may not raise its limit to, and lowers its own
// process limit to 32768 when it starts, so that more cannot be given: the container gets
// this process's open-file limit and at most 32768 processes.
func runArgs() []string {
	var nofile, nproc syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	_ = syscall.Getrlimit(6 /* RLIMIT_NPROC, which package syscall does not name */, &nproc)
	nproc.Max = min(nproc.Max, 32768)
	return []string{"--network", "host", "--read-only", "--cap-drop", "all", "--security-opt", "no-new-privileges",
		"--ulimit", fmt.Sprintf("nofile=%d:%d", nofile.Max, nofile.Max),
		"--ulimit", fmt.Sprintf("nproc=%d:%d", nproc.Max, nproc.Max)}
}

// imageConfig is what `podman image inspect` says the image runs.
type imageConfig struct {
	User         string
	Entrypoint   []string
	Cmd          []string
	Labels       map[string]string
	Os           string
	Architecture string
}

func (p *podman) inspect(ref string) imageConfig {
	p.t.Helper()
	var out []struct {
		Config       imageConfig
		Os           string
		Architecture string
	}
	b := p.run("image", "inspect", ref)
	if err := json.Unmarshal([]byte(b), &out); err != nil || len(out) != 1 {
		p.t.Fatalf("podman image inspect %s: %v\n%s", ref, err, b)
	}
	cfg := out[0].Config
	cfg.Os, cfg.Architecture = out[0].Os, out[0].Architecture
	return cfg
}
