// Package version says which milvus-lb this is: the release version, the commit it was
// built from and the Go toolchain that built it. `milvus-lb version` prints it, and the
// container image's labels carry the same values (scripts/image.sh stamps both from one
// build).
//
// The release version lives in the file VERSION beside this one, embedded at compile
// time, so that any build of a checkout (`go build`, `go install ./cmd/milvus-lb`) knows
// it. The commit is known when the build says it: scripts/release.sh sets it with
//
//	-ldflags "-X github.com/milvus-lb/milvus-lb/internal/version.commit=<full hash>
//	          -X github.com/milvus-lb/milvus-lb/internal/version.modified=<true|false>"
//
// and otherwise it comes from the VCS stamp that `go build` adds when it can run git
// (-buildvcs, on by default in a git checkout). A packager may also set
// internal/version.version to replace the file's version (a release candidate's -rc.1).
package version

import (
	_ "embed"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

//go:embed VERSION
var file string

// Set with -ldflags -X; empty when the build did not set them.
var (
	version  string
	commit   string
	modified string
)

// Info is what a build knows about itself.
type Info struct {
	// Version is the release version, without a leading v (0.1.0): the image tag and the
	// Helm chart's appVersion.
	Version string `json:"version"`
	// Commit is the full hash of the commit built, or "" when the build did not record it.
	Commit string `json:"commit"`
	// Modified is true when the tree had changes that no commit holds.
	Modified bool `json:"modified"`
	// Module is the Go module's version when installed as a module
	// (`go install github.com/milvus-lb/milvus-lb/cmd/milvus-lb@v0.1.0`), else "".
	Module string `json:"module,omitempty"`
	// GoVersion is the toolchain that built the binary (go1.26.8).
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Get returns this binary's Info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo() // nil in a binary built without module support
	return resolve(stamp{version: version, commit: commit, modified: modified}, file, bi)
}

// stamp is what -ldflags set.
type stamp struct{ version, commit, modified string }

// resolve prefers what the build stamped with -ldflags, then what the Go toolchain recorded,
// then the embedded file. It is pure, for tests.
func resolve(s stamp, file string, bi *debug.BuildInfo) Info {
	info := Info{
		Version:   strings.TrimPrefix(strings.TrimSpace(file), "v"),
		Commit:    s.commit,
		Modified:  s.modified == "true",
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if s.version != "" {
		info.Version = strings.TrimPrefix(s.version, "v")
	}
	if bi == nil {
		return info
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	// "(devel)" is what a build inside the module's own checkout records.
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		info.Module = v
	}
	if s.commit == "" {
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				info.Commit = kv.Value
			case "vcs.modified":
				info.Modified = kv.Value == "true"
			}
		}
	}
	return info
}

// String is the one line `milvus-lb version` prints, e.g.
// "milvus-lb 0.1.0 (commit 3f2a1b4c5d6e, go1.26.8, linux/amd64)".
func (i Info) String() string {
	parts := make([]string, 0, 5)
	if i.Module != "" && strings.TrimPrefix(i.Module, "v") != i.Version {
		parts = append(parts, "module "+i.Module)
	}
	switch c := i.Commit; {
	case c == "":
		parts = append(parts, "commit unknown")
	case len(c) > 12:
		parts = append(parts, "commit "+c[:12])
	default:
		parts = append(parts, "commit "+c)
	}
	if i.Modified {
		parts = append(parts, "modified")
	}
	parts = append(parts, i.GoVersion, i.Platform)
	return fmt.Sprintf("milvus-lb %s (%s)", i.Version, strings.Join(parts, ", "))
}
