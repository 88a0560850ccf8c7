package source

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
)

func TestLoadMergesAndReportsDuplicates(t *testing.T) {
	objs, problems := Load([]string{"testdata/guide.yaml", "testdata/list.json"}, nil)
	wantProblems(t, problems,
		"warning: testdata/guide.yaml: ConfigMap milvus/milvus-config: kind ConfigMap is not used by milvus-lb and is ignored",
		"warning: testdata/list.json: Deployment milvus/milvus-proxy: kind Deployment is not used by milvus-lb and is ignored",
		"error: testdata/list.json: Ingress milvus/milvus-demo: also defined in testdata/guide.yaml; the definition in testdata/guide.yaml is used and this one is ignored",
	)
	if got := objs.Files["Service milvus/milvus-demo"]; got != "testdata/list.json" {
		t.Errorf("Files[Service milvus/milvus-demo] = %q", got)
	}
	if got := objs.Files["Ingress milvus/milvus-demo"]; got != "testdata/guide.yaml" {
		t.Errorf("Files[Ingress milvus/milvus-demo] = %q", got)
	}
	if len(objs.Ingresses) != 1 || len(objs.Services) != 2 {
		t.Errorf("%d Ingresses, %d Services; want 1 and 2", len(objs.Ingresses), len(objs.Services))
	}
}

func TestLoadDirectoryAndMissingFile(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), service("a"))
	write(t, filepath.Join(dir, "b.yml"), service("b"))
	write(t, filepath.Join(dir, "c.json"), `{"apiVersion":"v1","kind":"Service","metadata":{"name":"c"}}`)
	write(t, filepath.Join(dir, "notes.txt"), "not a manifest")
	write(t, filepath.Join(dir, ".a.yaml.swp"), "editor swap file")
	write(t, filepath.Join(dir, ".hidden.yaml"), service("hidden"))
	empty := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")

	// a.yaml is named twice (directly and through dir): it is read once, not a duplicate.
	objs, problems := Load([]string{filepath.Join(dir, "a.yaml"), dir, empty, missing}, nil)
	wantProblems(t, problems,
		"warning: "+empty+": directory has no .yaml, .yml or .json files",
		"error: "+missing+": cannot read: no such file or directory",
	)
	wantNames(t, objs, "Service default/a", "Service default/b", "Service default/c")
	if got := objs.Files["Service default/b"]; got != filepath.Join(dir, "b.yml") {
		t.Errorf("Files[Service default/b] = %q", got)
	}
}

func TestLoadCertStoreSecrets(t *testing.T) {
	store := certs.NewStore(t.TempDir())
	c := importCert(t, store)
	objs, problems := Load([]string{"testdata/list.json"}, store)
	wantProblems(t, problems,
		"warning: testdata/list.json: Deployment milvus/milvus-proxy: kind Deployment is not used by milvus-lb and is ignored")
	var found bool
	for _, s := range objs.Secrets {
		if s.Annotations[certs.CertificateARNAnnotation] != c.ARN {
			continue
		}
		found = true
		name := ingress.ObjectName("Secret", s.Namespace, s.Name)
		if got := objs.Files[name]; got != store.CertificateDir(c.ID) {
			t.Errorf("Files[%s] = %q, want the store directory", name, got)
		}
		if string(s.Data["tls.key"]) != string(c.KeyPEM) {
			t.Error("store Secret lacks the key")
		}
	}
	if !found {
		t.Errorf("no Secret annotated with %s in %v", c.ARN, names(objs))
	}
	// A "not found" message names where the certificates were looked for.
	if !strings.Contains(objs.CertificateStore, store.Dir()) {
		t.Errorf("CertificateStore = %q, want it to name %s", objs.CertificateStore, store.Dir())
	}
}

// update is one apply call.
type update struct {
	objs     ingress.Objects
	problems config.Problems
}

// runFiles starts Run and returns its updates; Run is stopped, and checked to have
// returned, when the test ends.
func runFiles(t *testing.T, paths []string, store *certs.Store) <-chan update {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := NewFiles(paths, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Interval = 10 * time.Millisecond
	updates := make(chan update, 16)
	done := make(chan error, 1)
	go func() {
		done <- f.Run(ctx, func(o ingress.Objects, p config.Problems) { updates <- update{o, p} })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return updates
}

func next(t *testing.T, updates <-chan update) update {
	t.Helper()
	select {
	case u := <-updates:
		return u
	case <-time.After(5 * time.Second):
		t.Fatal("no apply call within 5s")
		return update{}
	}
}

// noUpdate asserts that apply is not called during several poll intervals.
func noUpdate(t *testing.T, updates <-chan update) {
	t.Helper()
	select {
	case u := <-updates:
		t.Fatalf("unexpected apply call: objects %v, problems %v", names(u.objs), u.problems)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestRunReloadsOnChange(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "milvus.yaml")
	write(t, file, service("one"))
	updates := runFiles(t, []string{dir}, nil)

	u := next(t, updates)
	wantNames(t, u.objs, "Service default/one")
	wantProblems(t, u.problems)

	// Touching a file, or writing the same content, is not a change.
	now := time.Now()
	if err := os.Chtimes(file, now, now); err != nil {
		t.Fatal(err)
	}
	write(t, file, service("one"))
	noUpdate(t, updates)

	// An editor that writes a new file and renames it over the old one.
	tmp := filepath.Join(dir, ".milvus.yaml.tmp")
	write(t, tmp, service("one")+"---\n"+service("two"))
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	u = next(t, updates)
	wantNames(t, u.objs, "Service default/one", "Service default/two")
	wantProblems(t, u.problems)

	// A bad edit is reported, with what could still be read.
	write(t, file, service("one")+"---\nkind: Service\nmetadata: {name: [\n")
	u = next(t, updates)
	wantNames(t, u.objs, "Service default/one")
	wantProblems(t, u.problems, "error: "+file+": document 2 at line 8: malformed YAML: yaml: line 9: did not find expected node content")

	// A file appearing in the directory is read.
	write(t, filepath.Join(dir, "more.yaml"), service("three"))
	u = next(t, updates)
	wantNames(t, u.objs, "Service default/one", "Service default/three")

	// A file removed from the directory is no longer read.
	if err := os.Remove(filepath.Join(dir, "more.yaml")); err != nil {
		t.Fatal(err)
	}
	u = next(t, updates)
	wantNames(t, u.objs, "Service default/one")
}

func TestRunReportsUnreadableFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "milvus.yaml")
	write(t, file, service("one"))
	updates := runFiles(t, []string{file}, nil)
	next(t, updates)

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	u := next(t, updates)
	wantProblems(t, u.problems, "error: "+file+": cannot read: no such file or directory")
	wantNames(t, u.objs)

	write(t, file, service("back"))
	u = next(t, updates)
	wantProblems(t, u.problems)
	wantNames(t, u.objs, "Service default/back")
}

func TestRunReloadsOnCertImport(t *testing.T) {
	file := filepath.Join(t.TempDir(), "milvus.yaml")
	write(t, file, service("one"))
	store := certs.NewStore(t.TempDir())
	updates := runFiles(t, []string{file}, store)
	if u := next(t, updates); len(u.objs.Secrets) != 0 {
		t.Fatalf("%d Secrets before any import", len(u.objs.Secrets))
	}

	c := importCert(t, store)
	u := next(t, updates)
	if len(u.objs.Secrets) != 1 || u.objs.Secrets[0].Annotations[certs.CertificateARNAnnotation] != c.ARN {
		t.Fatalf("after import: Secrets %v", names(u.objs))
	}
	wantProblems(t, u.problems)
}

func TestRunNeedsFiles(t *testing.T) {
	err := NewFiles(nil, nil, nil).Run(context.Background(), func(ingress.Objects, config.Problems) {
		t.Error("apply called without files")
	})
	if err == nil {
		t.Error("Run with no files returned nil")
	}
}

func TestSettlerWaitsForStableContent(t *testing.T) {
	s := settler{applied: "v1"}
	for i, step := range []struct {
		key  string
		want bool
	}{
		{"v1", false},      // unchanged
		{"partial", false}, // a poll landed mid-write...
		{"v2", false},      // ...the next saw the finished file: wait for it to hold
		{"v2", true},       // it held: apply
		{"v2", false},      // applied already
		{"v3", false},
		{"v2", false}, // changed back before it settled: nothing to do
		{"v2", false},
	} {
		if got := s.settled(step.key); got != step.want {
			t.Errorf("step %d: settled(%q) = %v, want %v", i, step.key, got, step.want)
		}
	}
}

func service(name string) string {
	return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\nspec:\n  ports: [{port: 19530}]\n"
}

func write(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func importCert(t *testing.T, store *certs.Store) *certs.Certificate {
	t.Helper()
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "milvus-demo.milvus.io")
	c, err := certs.Import(certPEM, ca.CertPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Save(c); err != nil {
		t.Fatal(err)
	}
	return c
}
