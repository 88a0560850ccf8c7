package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestVersionCommand builds the binary as scripts/release.sh does (the commit stamped with
// -ldflags) and as a plain `go build` does, and runs `version`, `--version` and
// `version -o json` as a user would.
func TestVersionCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "internal", "version", "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	release := strings.TrimSpace(string(b))
	goVersion := runtime.Version() // the test binary's toolchain is the one `go build` uses
	platform := runtime.GOOS + "/" + runtime.GOARCH
	const hash = "0123456789abcdef0123456789abcdef01234567"
	const pkg = "github.com/milvus-lb/milvus-lb/internal/version"

	stamped := buildBinary(t, "-ldflags", "-X "+pkg+".commit="+hash+" -X "+pkg+".modified=true")
	want := "milvus-lb " + release + " (commit 0123456789ab, modified, " + goVersion + ", " + platform + ")\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if got := runBinary(t, stamped, args...); got != want {
			t.Errorf("milvus-lb %s printed %q, want %q", args[0], got, want)
		}
	}
	var info struct {
		Version, Commit, GoVersion, Platform string
		Modified                             bool
	}
	out := runBinary(t, stamped, "version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("version -o json printed %q: %v", out, err)
	}
	if info.Version != release || info.Commit != hash || !info.Modified || info.GoVersion != goVersion || info.Platform != platform {
		t.Errorf("version -o json = %+v, want version %s, the full commit, modified, %s, %s", info, release, goVersion, platform)
	}

	// Without a stamp and without the VCS information `go build` adds in a git checkout,
	// the version still comes from VERSION, and the commit is said to be unknown.
	plain := buildBinary(t, "-buildvcs=false")
	want = "milvus-lb " + release + " (commit unknown, " + goVersion + ", " + platform + ")\n"
	if got := runBinary(t, plain, "version"); got != want {
		t.Errorf("an unstamped build's version printed %q, want %q", got, want)
	}
}

func buildBinary(t *testing.T, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "milvus-lb")
	args := append(append([]string{"build", "-o", bin}, flags...), ".")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

func runBinary(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("milvus-lb %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}
