// Package docs checks that the README documents what the code offers a user: every flag of
// every command (read from the built binary's --help), every annotation translation reads,
// every metric and every access log field. A flag, annotation, metric or field added
// without a line in the README fails here. It checks docs/architecture.md's package map
// against the packages and their imports too.
package docs

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/accesslog"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// undocumented are flags the README leaves out on purpose, with the reason.
var undocumented = map[string]string{
	"help": "cobra's own",
}

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.Root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	commandLine = regexp.MustCompile(`^  ([a-z-]+)\s{2,}`)
	flagLine    = regexp.MustCompile(`^\s+(?:-[a-zA-Z], )?--([a-z0-9-]+)`)
)

// helpOf runs `milvus-lb ARGS... --help` and returns its subcommands and flags.
func helpOf(t *testing.T, bin string, args ...string) (commands, flags []string) {
	t.Helper()
	out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("milvus-lb %s --help: %v\n%s", strings.Join(args, " "), err, out)
	}
	section := ""
	for line := range strings.Lines(string(out)) {
		switch {
		case strings.HasSuffix(strings.TrimSpace(line), ":") && !strings.HasPrefix(line, " "):
			section = strings.TrimSpace(line)
		case section == "Available Commands:":
			if m := commandLine.FindStringSubmatch(line); m != nil && m[1] != "help" && m[1] != "completion" {
				commands = append(commands, m[1])
			}
		case section == "Flags:":
			if m := flagLine.FindStringSubmatch(line); m != nil {
				flags = append(flags, m[1])
			}
		}
	}
	return commands, flags
}

func TestREADMEDocumentsEveryFlag(t *testing.T) {
	bin, doc := testenv.BuildMilvusLB(t), readme(t)
	var walk func(path []string)
	walk = func(path []string) {
		commands, flags := helpOf(t, bin, path...)
		for _, f := range flags {
			if _, skip := undocumented[f]; !skip && !strings.Contains(doc, "`--"+f+"`") {
				t.Errorf("README does not document `--%s` of milvus-lb %s", f, strings.Join(path, " "))
			}
		}
		for _, c := range commands {
			walk(append(append([]string{}, path...), c))
		}
	}
	root, _ := helpOf(t, bin)
	if len(root) == 0 {
		t.Fatal("milvus-lb --help lists no command")
	}
	for _, c := range root {
		if !strings.Contains(doc, "milvus-lb "+c) {
			t.Errorf("README does not mention the command milvus-lb %s", c)
		}
		walk([]string{c})
	}
}

func TestREADMEDocumentsEveryAnnotation(t *testing.T) {
	doc := readme(t)
	for _, a := range ingress.SupportedAnnotations() {
		short := strings.TrimPrefix(a, ingress.ALBAnnotationPrefix)
		if !strings.Contains(doc, "`"+short+"`") && !strings.Contains(doc, "`"+a+"`") {
			t.Errorf("README's annotation table lacks %s", a)
		}
	}
}

// Metrics are found where they are defined: prometheus options in the milvus_lb namespace
// and descriptors named milvus_lb_*.
var (
	optsMetric = regexp.MustCompile(`Namespace:\s*"milvus_lb",\s*Name:\s*"([a-z_]+)"`)
	descMetric = regexp.MustCompile(`NewDesc\(\s*"(milvus_lb_[a-z_]+)"`)
)

func TestREADMEDocumentsEveryMetric(t *testing.T) {
	root, doc := testenv.Root(t), readme(t)
	found := 0
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var names []string
		for _, m := range optsMetric.FindAllStringSubmatch(string(b), -1) {
			names = append(names, "milvus_lb_"+m[1])
		}
		for _, m := range descMetric.FindAllStringSubmatch(string(b), -1) {
			names = append(names, m[1])
		}
		for _, n := range names {
			found++
			if !strings.Contains(doc, "`"+n+"`") {
				t.Errorf("README's metric table lacks %s (defined in %s)", n, strings.TrimPrefix(path, root+"/"))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 10 {
		t.Errorf("found only %d metric definitions; the patterns no longer match how metrics are defined", found)
	}
}

// TestREADMEDocumentsEveryAccessLogField: every field of an access log line has a row in
// the README's field table. (internal/accesslog checks the example line against the log.)
func TestREADMEDocumentsEveryAccessLogField(t *testing.T) {
	doc := readme(t)
	_, section, ok := strings.Cut(doc, "### Access log fields\n")
	if !ok {
		t.Fatal("README has no section ### Access log fields")
	}
	section, _, _ = strings.Cut(section, "\n### ")
	var rows strings.Builder
	for line := range strings.Lines(section) {
		if strings.HasPrefix(line, "| `") {
			rows.WriteString(strings.SplitN(line, "|", 3)[1])
		}
	}
	var buf bytes.Buffer
	l := accesslog.New(&buf, accesslog.JSON, 1)
	l.Observe(&call.Record{Start: time.Now(), GRPC: true, Method: "Search"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || len(line) < 20 {
		t.Fatalf("the access log wrote %q (%v)", buf.String(), err)
	}
	for k := range line {
		if !strings.Contains(rows.String(), "`"+k+"`") {
			t.Errorf("README's access log field table lacks %s", k)
		}
	}
}

// TestArchitectureMapsEveryPackage: docs/architecture.md's package table names every
// package under internal/, and what its first paragraph says of the table holds: a
// package imports only packages in its own row or below it (testkit aside).
func TestArchitectureMapsEveryPackage(t *testing.T) {
	root := testenv.Root(t)
	b, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := map[string]int{} // package (internal/'s first element) → its row
	n := 0
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(strings.Split(line, "|")[1], -1) {
			row[strings.TrimSuffix(m[1], "/...")] = n
		}
		n++
	}
	const mod = "github.com/milvus-lb/milvus-lb/internal/"
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./internal/...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		pkg := strings.Split(strings.TrimPrefix(f[0], mod), "/")[0]
		r, ok := row[pkg]
		if !ok {
			t.Errorf("internal/%s is not in docs/architecture.md's package table", pkg)
			continue
		}
		if pkg == "testkit" {
			continue
		}
		for _, imp := range f[1:] {
			dep, found := strings.CutPrefix(imp, mod)
			if !found {
				continue
			}
			if d, ok := row[strings.Split(dep, "/")[0]]; ok && d < r {
				t.Errorf("%s imports internal/%s, which docs/architecture.md's table puts above it", strings.TrimPrefix(f[0], mod), dep)
			}
		}
	}
}
