package version

import (
	"regexp"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestResolve(t *testing.T) {
	const hash = "3f2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"
	vcs := func(rev, mod string) *debug.BuildInfo {
		return &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Path: "github.com/milvus-lb/milvus-lb", Version: "(devel)"},
			Settings:  []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: mod}},
		}
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	tests := []struct {
		name string
		s    stamp
		bi   *debug.BuildInfo
		want string
	}{
		{"release build: -ldflags wins over the VCS stamp", stamp{commit: hash, modified: "false"}, vcs("0000000000000000", "true"),
			"milvus-lb 0.1.0 (commit 3f2a1b4c5d6e, go1.26.8, " + platform + ")"},
		{"release build from a modified tree", stamp{commit: hash, modified: "true"}, nil,
			"milvus-lb 0.1.0 (commit 3f2a1b4c5d6e, modified, " + runtime.Version() + ", " + platform + ")"},
		{"go build in a git checkout", stamp{}, vcs(hash, "true"),
			"milvus-lb 0.1.0 (commit 3f2a1b4c5d6e, modified, go1.26.8, " + platform + ")"},
		{"go build with -buildvcs=false", stamp{}, &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"milvus-lb 0.1.0 (commit unknown, go1.26.8, " + platform + ")"},
		{"go install module@v0.1.0: the module version agrees, not repeated", stamp{}, &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.1.0"}},
			"milvus-lb 0.1.0 (commit unknown, go1.26.8, " + platform + ")"},
		{"go install module@<pseudo-version>: said, since it names the commit", stamp{}, &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20260901120000-3f2a1b4c5d6e"}},
			"milvus-lb 0.1.0 (module v0.0.0-20260901120000-3f2a1b4c5d6e, commit unknown, go1.26.8, " + platform + ")"},
		{"a packager's version replaces the file's", stamp{version: "v0.2.0-rc.1", commit: hash}, nil,
			"milvus-lb 0.2.0-rc.1 (commit 3f2a1b4c5d6e, " + runtime.Version() + ", " + platform + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resolve(tt.s, "0.1.0\n", tt.bi).String(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// The file must hold a bare version: the image tag, the chart's appVersion and the Go
// module tag (with a v) are all made from it.
func TestVersionFile(t *testing.T) {
	semver := regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?\n$`)
	if !semver.MatchString(file) {
		t.Errorf("VERSION holds %q, want one line with a semantic version such as 0.1.0 (no v)", file)
	}
}
