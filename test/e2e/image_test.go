package e2e

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// buildTimeout bounds one scripts/image.sh run: two cross-compiles, which take minutes
// when the Go build cache is cold (scripts/test.d/30-image.sh warms it).
const buildTimeout = 20 * time.Minute

// imageGoCache is the Go build cache of the image builds, which scripts/test.d/30-image.sh
// fills: it lives in the project's cache so that CI keeps it.
func imageGoCache() string { return "GOCACHE=" + filepath.Join(testenv.CacheDir(), "go-build-image") }

// TestImage builds the container image the way docs/install.md says (scripts/image.sh),
// checks what it holds, pushes it with crane to a registry of our own on loopback, pulls
// it with podman, and runs the guide through it: the image's own entrypoint and user, the
// guide's manifests, and pymilvus with TLS and server_name. A second build, from a copy of
// the tree in another directory at another time, must give the same digest.
func TestImage(t *testing.T) {
	pm := newPodman(t)
	root := testenv.Root(t)
	release := releaseVersion(t, root)
	dist := t.TempDir()
	digest := buildImage(t, root, dist, nil)

	checkLayout(t, ociLayout{t, filepath.Join(dist, "image")}, release, digest)
	checkReproducible(t, root, dist, digest)

	ref := pushImage(t, root, filepath.Join(dist, "image"), release, digest)
	pm.run("pull", "--quiet", "--tls-verify=false", ref)
	cfg := pm.inspect(ref)
	if cfg.User != "65532:65532" || !slices.Equal(cfg.Entrypoint, []string{"/usr/bin/milvus-lb"}) {
		t.Errorf("the image runs %v as %q, want /usr/bin/milvus-lb as 65532:65532", cfg.Entrypoint, cfg.User)
	}
	checkDockerfile(t, root, cfg)
	checkVersion(t, pm, ref, cfg)
	serveGuideFromImage(t, pm, ref)
}

func releaseVersion(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "internal", "version", "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// buildImage runs scripts/image.sh of the tree at src, writing into out, and returns the
// digest it prints.
func buildImage(t *testing.T, src, out string, env []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", filepath.Join(src, "scripts", "image.sh"), "--out", out)
	c.Env = append(append(os.Environ(), imageGoCache()), env...)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	start := time.Now()
	stdout, err := c.Output()
	t.Logf("$ scripts/image.sh --out %s  (%v)\n%s", out, time.Since(start).Round(time.Second), stderr.String())
	if err != nil {
		t.Fatalf("scripts/image.sh: %v", err)
	}
	lines := strings.Fields(string(stdout))
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "sha256:") {
		t.Fatalf("scripts/image.sh printed %q, want the digest last", stdout)
	}
	return lines[len(lines)-1]
}

// checkLayout reads the layout as the OCI specification describes it: one index tagged with
// the version, one image per platform, each a single layer holding only the binary, which
// is static and built for its platform.
func checkLayout(t *testing.T, l ociLayout, release, digest string) {
	t.Helper()
	var top ociIndex
	l.json("index.json", &top)
	if len(top.Manifests) != 1 || top.Manifests[0].Digest != digest ||
		top.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != release {
		t.Fatalf("index.json = %+v, want the one index %s tagged %s", top, digest, release)
	}
	var idx ociIndex
	l.json(digest, &idx)
	var platforms []string
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, d := range idx.Manifests {
		if d.Platform == nil {
			t.Fatalf("index entry %s has no platform", d.Digest)
		}
		platform := d.Platform.OS + "/" + d.Platform.Architecture
		platforms = append(platforms, platform)
		var m ociManifest
		l.json(d.Digest, &m)
		if len(m.Layers) != 1 {
			t.Fatalf("%s: %d layers, want 1", platform, len(m.Layers))
		}
		names, files := l.layerFiles(m.Layers[0].Digest)
		if want := []string{"usr/", "usr/bin/", "usr/bin/milvus-lb"}; !slices.Equal(names, want) {
			t.Errorf("%s holds %v, want only %v (no shell, nothing else)", platform, names, want)
		}
		f, err := elf.NewFile(bytes.NewReader(files["usr/bin/milvus-lb"]))
		if err != nil {
			t.Fatalf("%s: the binary is not ELF: %v", platform, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: the binary asks for a dynamic loader; want a static binary", platform)
			}
		}
		if f.Machine != machines[d.Platform.Architecture] {
			t.Errorf("%s: the binary is for %v", platform, f.Machine)
		}
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Errorf("the index lists %v, want %v", platforms, want)
	}
}
