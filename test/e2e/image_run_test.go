package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// checkReproducible builds the image again from a copy of the tree (what git would check
// out, plus uncommitted changes) in another directory, without .git, a little later, and
// wants the same digest and the same archive, byte for byte.
func checkReproducible(t *testing.T, root, dist, digest string) {
	t.Helper()
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", root}, args...)...).Output()
		if err != nil {
			t.Fatalf("git %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	modified := strconv.FormatBool(git("status", "--porcelain") != "")
	env := []string{"COMMIT=" + git("rev-parse", "HEAD"), "MODIFIED=" + modified,
		"SOURCE_DATE_EPOCH=" + git("log", "-1", "--format=%ct")}
	copyDir := filepath.Join(t.TempDir(), "milvus-lb")
	for _, rel := range strings.Split(strings.TrimRight(git("ls-files", "-z", "-co", "--exclude-standard"), "\x00"), "\x00") {
		copyFile(t, filepath.Join(root, rel), filepath.Join(copyDir, rel))
	}
	dist2 := t.TempDir()
	if again := buildImage(t, copyDir, dist2, env); again != digest {
		t.Errorf("built again from a copy of the tree: digest %s, first build %s", again, digest)
	}
	archive := "milvus-lb-" + releaseVersion(t, root) + "-image.tar"
	if a, b := fileSHA256(t, filepath.Join(dist, archive)), fileSHA256(t, filepath.Join(dist2, archive)); a != b {
		t.Errorf("%s differs between the two builds: sha256 %s and %s", archive, a, b)
	}
}

// copyFile copies a file or a symbolic link, keeping the mode; a tracked file deleted from
// the tree is left out, as a build would not see it either.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	info, err := os.Lstat(from)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if info.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(from)
		if err == nil {
			err = os.Symlink(target, to)
		}
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(from)
	if err == nil {
		err = os.WriteFile(to, b, info.Mode().Perm())
	}
	if err != nil {
		t.Fatal(err)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pushImage pushes the layout both ways docs/install.md says, with skopeo and with the
// crane pinned in tools/, to a registry of our own (crane's, on loopback), and returns the
// reference to pull. What the registry stores must be what was built: the same digest.
func pushImage(t *testing.T, root, layout, release, digest string) string {
	t.Helper()
	crane := filepath.Join(t.TempDir(), "crane")
	c := exec.Command("go", "build", "-o", crane, "github.com/google/go-containerregistry/cmd/crane")
	c.Dir = filepath.Join(root, "tools")
	c.Env = append(os.Environ(), imageGoCache())
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("building crane from tools/: %v\n%s", err, out)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	registry := testenv.StartProcess(t, "registry", exec.Command(crane, "registry", "serve", "--address", addr),
		syscall.SIGTERM, 10*time.Second, false)
	waitHTTP(t, "http://"+addr+"/v2/", registry)

	ref := addr + "/milvus-lb:" + release
	out, err := exec.Command(crane, "push", "--insecure", layout, ref).Output()
	if err != nil {
		t.Fatalf("crane push %s %s: %v", layout, ref, err)
	}
	if want := addr + "/milvus-lb@" + digest; strings.TrimSpace(string(out)) != want {
		t.Fatalf("crane push printed %q, want %q", out, want)
	}

	skopeoRef := addr + "/milvus-lb:" + release + "-skopeo"
	if out, err := exec.Command("skopeo", "copy", "--quiet", "--all", "--preserve-digests", "--dest-tls-verify=false",
		"oci:"+layout+":"+release, "docker://"+skopeoRef).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	if out, err := exec.Command(crane, "digest", "--insecure", skopeoRef).Output(); err != nil || strings.TrimSpace(string(out)) != digest {
		t.Errorf("after skopeo copy the registry has digest %q (%v), want %s", out, err, digest)
	}
	return ref
}

// waitHTTP polls url until it answers 200, failing if p exits or a minute passes.
func waitHTTP(t *testing.T, url string, p *testenv.Process) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		select {
		case <-p.Exited():
			t.Fatalf("%s exited: %s", p.Name, p.Logs())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v after a minute", url, err)
		}
	}
}

// checkDockerfile checks that the Dockerfile, for those who build with Docker, makes the
// image scripts/image.sh makes: same path, entrypoint, user and labels, the variable ones
// filled from the build arguments its comment tells the user to pass.
func checkDockerfile(t *testing.T, root string, cfg imageConfig) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	final := text[strings.LastIndex(text, "\nFROM scratch"):]
	instr := map[string]string{}
	for _, line := range strings.Split(final, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && !strings.HasPrefix(k, "#") {
			instr[k] = strings.TrimSpace(v)
		}
	}
	if instr["USER"] != cfg.User {
		t.Errorf("Dockerfile: USER %s, the image runs as %s", instr["USER"], cfg.User)
	}
	var entrypoint []string
	if err := json.Unmarshal([]byte(instr["ENTRYPOINT"]), &entrypoint); err != nil || !slices.Equal(entrypoint, cfg.Entrypoint) {
		t.Errorf("Dockerfile: ENTRYPOINT %s, the image's is %q", instr["ENTRYPOINT"], cfg.Entrypoint)
	}
	if copyTo := strings.Fields(instr["COPY"]); len(copyTo) == 0 || copyTo[len(copyTo)-1] != cfg.Entrypoint[0] {
		t.Errorf("Dockerfile: COPY %s, the image's binary is %s", instr["COPY"], cfg.Entrypoint[0])
	}
	fromArg := map[string]string{
		"org.opencontainers.image.version":  "$VERSION",
		"org.opencontainers.image.revision": "$COMMIT",
		"org.opencontainers.image.created":  "$CREATED",
	}
	labels := map[string]string{}
	for _, m := range regexp.MustCompile(`([\w.-]+)="([^"]*)"`).FindAllStringSubmatch(instr["LABEL"], -1) {
		labels[m[1]] = m[2]
	}
	for k, v := range cfg.Labels {
		want := v
		if arg, ok := fromArg[k]; ok {
			want = arg
		}
		if labels[k] != want {
			t.Errorf("Dockerfile: LABEL %s=%q, want %q (the image has %q)", k, labels[k], want, v)
		}
	}
	if len(labels) != len(cfg.Labels) {
		t.Errorf("Dockerfile labels %v, the image's %v", labels, cfg.Labels)
	}
}

// checkVersion runs `milvus-lb version` in the image: it must say what the labels say.
func checkVersion(t *testing.T, pm *podman, ref string, cfg imageConfig) {
	t.Helper()
	out := pm.run(append(append([]string{"run", "--rm"}, runArgs()...), ref, "version", "-o", "json")...)
	var v struct{ Version, Commit, Platform string }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version -o json in the image printed %q: %v", out, err)
	}
	t.Logf("milvus-lb version in the image: %+v; labels %v", v, cfg.Labels)
	if want := cfg.Labels["org.opencontainers.image.version"]; v.Version != want {
		t.Errorf("milvus-lb version says %q, the image's version label %q", v.Version, want)
	}
	if want := cfg.Labels["org.opencontainers.image.revision"]; v.Commit != want {
		t.Errorf("milvus-lb version says commit %q, the image's revision label %q", v.Commit, want)
	}
	if want := cfg.Os + "/" + cfg.Architecture; v.Platform != want {
		t.Errorf("milvus-lb version says platform %q, the image is %s", v.Platform, want)
	}
}

// serveGuideFromImage does the guide with milvus-lb running from the image: the guide's
// files (ingress.yaml with the imported certificate's ARN, the Service and its endpoints,
// the state directory holding the certificate) mounted read-only, the process running as
// the image's user, and pymilvus connecting through it with TLS and server_name.
func serveGuideFromImage(t *testing.T, pm *podman, ref string) {
	t.Helper()
	g := prepareGuide(t, testenv.FreePort(t))
	// The files are the user's to hand to the container's user, as fsGroup does in a pod.
	if err := filepath.Walk(g.dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, 65532, 65532)
	}); err != nil {
		t.Fatal(err)
	}
	admin := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	args := append(append([]string{"run", "--rm", "--name", "milvus-lb"}, runArgs()...),
		"--volume", g.dir+":/guide:ro", ref,
		"serve", "-f", "/guide/ingress.yaml", "-f", "/guide/milvus.yaml", "--state-dir", "/guide/state",
		"--admin-addr", admin, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1")
	t.Logf("$ podman %s", strings.Join(args, " "))
	// SIGTERM to `podman run` reaches milvus-lb, which must drain and exit 0.
	lb := testenv.StartProcess(t, "milvus-lb (image)", pm.command(context.Background(), args...),
		syscall.SIGTERM, 30*time.Second, true)
	waitHTTP(t, "http://"+admin+"/readyz", lb)

	pid := strings.TrimSpace(pm.run("inspect", "--format", "{{.State.Pid}}", "milvus-lb"))
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Uid:\t65532\t65532\t65532\t65532\n", "Gid:\t65532\t65532\t65532\t65532\n"} {
		if !strings.Contains(string(status), want) {
			t.Errorf("milvus-lb in the container runs with\n%s\nwant %q", status, want)
		}
	}

	// The guide's step 4, with the image's own CLI: `get ingress` until ADDRESS fills in.
	deadline := time.Now().Add(30 * time.Second)
	for g.address == "" {
		out := pm.run(append(append([]string{"run", "--rm"}, runArgs()...), ref, "get", "ingress", "-o", "json", "--admin-addr", admin)...)
		var rows []testenv.IngressRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("get ingress -o json, run from the image, printed %q: %v", out, err)
		}
		if len(rows) == 1 && rows[0].Address != "" && slices.Equal(rows[0].Ports, []int{g.port}) {
			g.address = rows[0].Address
		} else if time.Now().After(deadline) {
			t.Fatalf("get ingress, run from the image, shows %+v after 30 s; want one Ingress with an ADDRESS on port %d", rows, g.port)
		}
	}
	g.pymilvus(t)
}
