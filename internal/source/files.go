package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
)

// DefaultInterval is how often Files looks for changes.
const DefaultInterval = 500 * time.Millisecond

// Files is the standalone source: the objects in a list of files and directories, plus the
// certificates of a cert store as Secrets, reloaded when any of them changes.
//
// Changes are found by polling rather than inotify: polling sees through what editors
// and Kubernetes volume mounts do (write a temporary file and rename it over the old one,
// swap a symlink), works on every filesystem, and costs a few stats per interval. A file
// whose size, mtime and inode are unchanged is not read again; a file that did change is
// read and hashed, and apply is called only if some content really differs, so touching a
// file does not reload.
//
// Run is called once; Files holds no state outside it.
type Files struct {
	paths  []string
	store  *certs.Store
	logger *slog.Logger

	// Interval between polls; DefaultInterval if zero. Set it before Run.
	Interval time.Duration
}

// NewFiles returns a source for paths (files, or directories meaning every *.yaml, *.yml
// and *.json file directly in them) and the certificates of store (nil for none).
func NewFiles(paths []string, store *certs.Store, logger *slog.Logger) *Files {
	if logger == nil {
		logger = slog.Default()
	}
	return &Files{paths: paths, store: store, logger: logger}
}

// Run calls apply with the objects and problems of the files at once, then again each time
// their content (or the cert store) changes and stays changed for a poll, until ctx is
// done; then it returns nil. apply
// is called from Run's goroutine, one call at a time; Run waits for it, so it should not
// block for long. A file that cannot be read or parsed is reported in the problems with
// whatever else could be read: deciding to keep the previous configuration is apply's.
func (f *Files) Run(ctx context.Context, apply func(ingress.Objects, config.Problems)) error {
	if len(f.paths) == 0 {
		return errors.New("no files to read objects from")
	}
	interval := f.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	seen := map[string]time.Time{}
	applied := scan(f.paths, f.store, nil)
	objs, problems := applied.build(f.store)
	stampCreation(objs, seen, time.Now())
	apply(objs, problems)

	cur := applied
	st := settler{applied: applied.key}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur = scan(f.paths, f.store, cur) // the last poll's stats spare reading unchanged files
		if !st.settled(cur.key) {
			continue
		}
		f.logger.Info("configuration changed, reloading", "changed", changedNames(applied, cur))
		applied = cur
		objs, problems := applied.build(f.store)
		stampCreation(objs, seen, time.Now())
		apply(objs, problems)
	}
}

// stampCreation gives an Ingress read from a file without metadata.creationTimestamp the
// time it was first read, as an API server would have set it on create, so that AGE in
// `get ingress` means something and conflicts between Ingresses are settled by age, the
// older first. seen keeps the first time across reloads.
func stampCreation(objs ingress.Objects, seen map[string]time.Time, now time.Time) {
	for _, in := range objs.Ingresses {
		if !in.CreationTimestamp.IsZero() {
			continue
		}
		key := ingress.ObjectName("Ingress", in.Namespace, in.Name)
		t, ok := seen[key]
		if !ok {
			t = now.Truncate(time.Second)
			seen[key] = t
		}
		in.CreationTimestamp = metav1.NewTime(t)
	}
}

// settler applies a change once two polls in a row agree on it. An editor or `cat >` that
// rewrites a file in place leaves it truncated or half-written for a moment; a poll that
// lands then sees content that the next poll does not, and nothing is applied until the
// writer is done. This costs one interval of latency per change.
type settler struct {
	applied, pending string
}

// settled is called with each poll's key and reports whether to apply it now.
func (s *settler) settled(key string) bool {
	switch {
	case key == s.applied:
		s.pending = "" // changed and changed back, or only touched
		return false
	case key != s.pending:
		s.pending = key
		return false
	}
	s.applied, s.pending = key, ""
	return true
}

// Load reads paths and the certificates of store (nil for none) once, for `validate`.
func Load(paths []string, store *certs.Store) (ingress.Objects, config.Problems) {
	return scan(paths, store, nil).build(store)
}

// snapshot is what one poll saw.
type snapshot struct {
	files    []fileState // in the order they are read: paths in order, directories sorted
	problems config.Problems
	storeRev string
	storeErr error
	key      string // equal keys mean equal content
}

type fileState struct {
	name string // as the user named it, or DIR/NAME for files found in a directory
	info fs.FileInfo
	data []byte
	hash string
	err  error
}

func scan(paths []string, store *certs.Store, prev *snapshot) *snapshot {
	s := &snapshot{}
	seen := map[string]bool{}
	before := map[string]fileState{}
	if prev != nil {
		for _, f := range prev.files {
			before[f.name] = f
		}
	}
	add := func(name string) {
		abs, err := filepath.Abs(name)
		if err != nil {
			abs = name
		}
		if seen[abs] {
			return // named twice, or a file inside a directory also named: read it once
		}
		seen[abs] = true
		old, ok := before[name]
		s.files = append(s.files, readFile(name, old, ok))
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || !fi.IsDir() {
			add(p) // readFile reports the error
			continue
		}
		names, problem := manifestsIn(p)
		if problem != nil {
			s.problems = append(s.problems, *problem)
		}
		for _, name := range names {
			add(name)
		}
	}
	if store != nil {
		s.storeRev, s.storeErr = store.Revision()
	}
	s.key = s.digest()
	return s
}

// manifestsIn lists the manifests of directory dir: its .yaml, .yml and .json files,
// not hidden ones (editors' swap and backup files among them). A directory it cannot
// read, or with none, is a problem.
func manifestsIn(dir string) ([]string, *config.Problem) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &config.Problem{Severity: config.Error, File: dir, Message: err.Error()}
	}
	var names []string
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			continue
		}
		names = append(names, filepath.Join(dir, e.Name()))
	}
	if len(names) == 0 {
		return nil, &config.Problem{Severity: config.Warning, File: dir, Message: "directory has no .yaml, .yml or .json files"}
	}
	return names, nil
}

// digest is what the snapshot's key is: its files' names, contents' hashes and errors,
// its problems and the certificate store's revision.
func (s *snapshot) digest() string {
	h := sha256.New()
	for _, f := range s.files {
		fmt.Fprintf(h, "%s\x00%s\x00%v\x00", f.name, f.hash, f.err)
	}
	for _, p := range s.problems {
		fmt.Fprintf(h, "%s\x00", p)
	}
	fmt.Fprintf(h, "%s\x00%v", s.storeRev, s.storeErr)
	return hex.EncodeToString(h.Sum(nil))
}

// racyWindow: a file modified this recently is read even if its stat is unchanged, because
// mtimes are taken from a coarse clock and two writes a few milliseconds apart can leave
// the same mtime and size (git's "racy git" problem, solved the same way).
const racyWindow = 2 * time.Second

// readFile reads name unless the previous poll saw the same file (same inode, size and
// mtime, and not racily new) there. Comparing the inode catches an editor renaming an
// older file into place.
func readFile(name string, old fileState, hadOld bool) fileState {
	fi, err := os.Stat(name)
	if err != nil {
		return fileState{name: name, err: err}
	}
	if hadOld && old.err == nil && time.Since(fi.ModTime()) > racyWindow && os.SameFile(old.info, fi) &&
		old.info.Size() == fi.Size() && old.info.ModTime().Equal(fi.ModTime()) {
		old.info = fi
		return old
	}
	if fi.IsDir() {
		return fileState{name: name, info: fi, err: fmt.Errorf("%s is a directory", name)}
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return fileState{name: name, err: err}
	}
	sum := sha256.Sum256(data)
	return fileState{name: name, info: fi, data: data, hash: hex.EncodeToString(sum[:])}
}

// build parses the snapshot's files and merges them with the store's Secrets. An object
// defined in two files is kept from the first and reported, naming both, in the second.
func (s *snapshot) build(store *certs.Store) (ingress.Objects, config.Problems) {
	objs := ingress.Objects{Files: map[string]string{}}
	problems := append(config.Problems(nil), s.problems...)
	for _, f := range s.files {
		if f.err != nil {
			problems = append(problems, config.Problem{Severity: config.Error, File: f.name,
				Message: "cannot read: " + unwrapPathError(f.err)})
			continue
		}
		o, ps := ParseManifest(f.name, f.data)
		problems = append(problems, ps...)
		problems = append(problems, merge(&objs, o, f.name)...)
	}
	if store != nil {
		objs.CertificateStore = "state directory " + store.Dir() + " (one per user; --state-dir chooses another)"
		secrets, err := store.Secrets()
		if err != nil {
			problems = append(problems, config.Problem{Severity: config.Error, File: store.Dir(), Message: err.Error()})
		}
		for _, sec := range secrets {
			name := ingress.ObjectName("Secret", sec.Namespace, sec.Name)
			if prev, dup := objs.Files[name]; dup {
				problems = append(problems, config.Problem{Severity: config.Error, File: prev, Object: name,
					Message: "has the name of a certificate in the cert store; the store's certificate is not used"})
				continue
			}
			objs.Secrets = append(objs.Secrets, sec)
			objs.Files[name] = store.CertificateDir(sec.Labels[certs.CertificateIDLabel])
		}
	}
	return objs, problems
}

// unwrapPathError drops the "open NAME: " that *fs.PathError adds, since problems already
// name the file.
func unwrapPathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func merge(dst *ingress.Objects, src ingress.Objects, file string) config.Problems {
	var ps config.Problems
	mergeKind(&dst.Ingresses, src.Ingresses, "Ingress", dst.Files, file, &ps)
	mergeKind(&dst.IngressClasses, src.IngressClasses, "IngressClass", dst.Files, file, &ps)
	mergeKind(&dst.Services, src.Services, "Service", dst.Files, file, &ps)
	mergeKind(&dst.EndpointSlices, src.EndpointSlices, "EndpointSlice", dst.Files, file, &ps)
	mergeKind(&dst.Endpoints, src.Endpoints, "Endpoints", dst.Files, file, &ps)
	mergeKind(&dst.Secrets, src.Secrets, "Secret", dst.Files, file, &ps)
	mergeKind(&dst.GatewayClasses, src.GatewayClasses, "GatewayClass", dst.Files, file, &ps)
	mergeKind(&dst.Gateways, src.Gateways, "Gateway", dst.Files, file, &ps)
	mergeKind(&dst.GRPCRoutes, src.GRPCRoutes, "GRPCRoute", dst.Files, file, &ps)
	mergeKind(&dst.HTTPRoutes, src.HTTPRoutes, "HTTPRoute", dst.Files, file, &ps)
	mergeKind(&dst.ReferenceGrants, src.ReferenceGrants, "ReferenceGrant", dst.Files, file, &ps)
	mergeKind(&dst.Namespaces, src.Namespaces, "Namespace", dst.Files, file, &ps)
	return ps
}

func mergeKind[T metav1.Object](dst *[]T, src []T, kind string, files map[string]string, file string, ps *config.Problems) {
	for _, o := range src {
		name := ingress.ObjectName(kind, o.GetNamespace(), o.GetName())
		if prev, dup := files[name]; dup {
			*ps = append(*ps, config.Problem{Severity: config.Error, File: file, Object: name,
				Message: fmt.Sprintf("also defined in %s; the definition in %s is used and this one is ignored", prev, prev)})
			continue
		}
		files[name] = file
		*dst = append(*dst, o)
	}
}

// changedNames lists, for the log, the files whose content differs between two polls.
func changedNames(a, b *snapshot) []string {
	old := map[string]string{}
	for _, f := range a.files {
		old[f.name] = f.hash + fmt.Sprint(f.err)
	}
	var out []string
	for _, f := range b.files {
		if o, ok := old[f.name]; !ok || o != f.hash+fmt.Sprint(f.err) {
			out = append(out, f.name)
		}
		delete(old, f.name)
	}
	for name := range old {
		out = append(out, name) // gone from a directory
	}
	if a.storeRev != b.storeRev {
		out = append(out, "cert store")
	}
	sort.Strings(out)
	return out
}
