package certs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Files of one stored certificate, in DIR/certificates/<id>/.
const (
	certFile  = "certificate.pem"
	chainFile = "chain.pem"
	keyFile   = "private-key.pem"
	metaFile  = "meta.json" // written last: a directory without it is an import in progress
)

// DefaultStateDir is where the store lives unless told otherwise: $XDG_STATE_HOME/milvus-lb,
// or ~/.local/state/milvus-lb (the XDG Base Directory default for state that should
// survive restarts but is not worth backing up).
func DefaultStateDir() (string, error) {
	// The spec says a relative XDG path is invalid and must be ignored.
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "milvus-lb"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "milvus-lb"), nil
}

// Store keeps imported certificates in a directory:
//
//	DIR/certificates/<id>/certificate.pem
//	DIR/certificates/<id>/chain.pem
//	DIR/certificates/<id>/private-key.pem   (0600)
//	DIR/certificates/<id>/meta.json
//
// Directories are made 0700. Each file is written to a temporary name and renamed, and
// meta.json comes last, so a reader (a `serve` polling the store while `cert import` runs)
// sees either no certificate or a whole one. A Store holds no state beyond its path; its
// methods may be called concurrently, also from several processes.
type Store struct {
	dir string
}

// NewStore returns the store in dir. Nothing is created until Save.
func NewStore(dir string) *Store { return &Store{dir: dir} }

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) certsDir() string { return filepath.Join(s.dir, "certificates") }

// CertificateDir is where the certificate with this ID is stored; problems about a stored
// certificate name it as their file.
func (s *Store) CertificateDir(id string) string { return filepath.Join(s.certsDir(), id) }

// meta is meta.json: what `cert list` shows, without parsing PEM, plus what lets a reader
// check that the directory is whole.
type meta struct {
	ARN         string    `json:"arn"`
	ID          string    `json:"id"`
	Subject     string    `json:"subject"`
	SANs        []string  `json:"sans"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
	Fingerprint string    `json:"sha256Fingerprint"`
	ImportedAt  time.Time `json:"importedAt"`
}

// Save stores c (as returned by Import), replacing an earlier import of the same
// certificate.
func (s *Store) Save(c *Certificate) error {
	if c.ID == "" || c.ID != idFor(c.Leaf) || len(c.KeyPEM) == 0 {
		return errors.New("certificate store: refusing to save a certificate that did not come from Import")
	}
	dir := s.CertificateDir(c.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("certificate store: %w", err)
	}
	m, err := json.MarshalIndent(meta{
		ARN:         c.ARN,
		ID:          c.ID,
		Subject:     c.Subject(),
		SANs:        c.SANs(),
		NotBefore:   c.Leaf.NotBefore.UTC(),
		NotAfter:    c.Leaf.NotAfter.UTC(),
		Fingerprint: c.Fingerprint(),
		ImportedAt:  c.ImportedAt.UTC(),
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("certificate store: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		perm fs.FileMode
	}{
		{keyFile, c.KeyPEM, 0o600},
		{certFile, c.CertPEM, 0o644},
		{chainFile, c.ChainPEM, 0o644},
		{metaFile, append(m, '\n'), 0o644},
	} {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return fmt.Errorf("certificate store: %w", err)
		}
	}
	return nil
}

// writeFileAtomic writes data to a temporary file in the same directory and renames it over
// name, so that no reader sees a partial file.
func writeFileAtomic(name string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// CreateTemp makes the file 0600; widen it only for what is not secret.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// ids lists the IDs of the whole certificates in the store, sorted. A missing store is
// empty, not an error.
func (s *Store) ids() ([]string, error) {
	entries, err := os.ReadDir(s.certsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("certificate store: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.certsDir(), e.Name(), metaFile)); err != nil {
			continue // an import in progress, or one that was interrupted
		}
		ids = append(ids, e.Name())
	}
	return ids, nil
}

// load reads one stored certificate, with its key if withKey.
func (s *Store) load(id string, withKey bool) (*Certificate, error) {
	dir := s.CertificateDir(id)
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }
	mb, err := read(metaFile)
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", metaFile, err)
	}
	certPEM, err := read(certFile)
	if err != nil {
		return nil, err
	}
	chainPEM, err := read(chainFile)
	if err != nil {
		return nil, err
	}
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%s: holds %d certificates, want 1", certFile, len(certs))
	}
	c := &Certificate{
		ARN:        m.ARN,
		ID:         m.ID,
		Leaf:       certs[0],
		CertPEM:    certPEM,
		ChainPEM:   chainPEM,
		ImportedAt: m.ImportedAt,
	}
	// The ID is derived from the leaf: if they disagree, someone edited the files by hand
	// and the ARN would no longer mean this certificate.
	if want := idFor(c.Leaf); m.ID != id || want != id || m.ARN != ARNPrefix+id {
		return nil, fmt.Errorf("%s does not match %s (ID %s): the directory was changed by hand; import the certificate again",
			metaFile, certFile, want)
	}
	if withKey {
		if c.KeyPEM, err = read(keyFile); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// List returns the stored certificates, ordered by ARN, without their keys. A
// certificate that cannot be read is left out and named in the returned error; the
// others are still returned.
func (s *Store) List() ([]*Certificate, error) { return s.loadAll(false) }

func (s *Store) loadAll(withKey bool) ([]*Certificate, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	var (
		out  []*Certificate
		errs []error
	)
	for _, id := range ids {
		c, err := s.load(id, withKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("certificate store: %s: %w", s.CertificateDir(id), err))
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ARN < out[j].ARN })
	return out, errors.Join(errs...)
}

// Secrets returns every stored certificate as a kubernetes.io/tls Secret in
// SecretNamespace (see ToSecret), ordered by ARN. Like List, it returns what it could read
// together with an error naming the rest.
func (s *Store) Secrets() ([]*corev1.Secret, error) {
	cs, err := s.loadAll(true)
	out := make([]*corev1.Secret, 0, len(cs))
	for _, c := range cs {
		out = append(out, ToSecret(c, SecretNamespace))
	}
	return out, err
}

// Delete removes the certificate with this ARN. meta.json goes first, so that a reader
// never sees a certificate without its key.
func (s *Store) Delete(arn string) error {
	id, ok := strings.CutPrefix(arn, ARNPrefix)
	if !ok || id == "" || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return fmt.Errorf("%q is not a milvus-lb certificate ARN (%s<id>)", arn, ARNPrefix)
	}
	dir := s.CertificateDir(id)
	if err := os.Remove(filepath.Join(dir, metaFile)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("certificate %s not found in %s", arn, s.dir)
		}
		return fmt.Errorf("certificate store: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("certificate store: %w", err)
	}
	return nil
}

// Revision is a token that changes whenever a certificate is saved or removed, for
// pollers that reload only on change. It costs a directory listing and a few stats.
func (s *Store) Revision() (string, error) {
	ids, err := s.ids()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, id := range ids {
		for _, name := range []string{metaFile, certFile, chainFile, keyFile} {
			fi, err := os.Stat(filepath.Join(s.CertificateDir(id), name))
			if err != nil {
				fmt.Fprintf(h, "%s/%s missing\n", id, name)
				continue
			}
			fmt.Fprintf(h, "%s/%s %d %d\n", id, name, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
