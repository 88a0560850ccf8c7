package certs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
)

func importNew(t *testing.T, hosts ...string) *certs.Certificate {
	t.Helper()
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, hosts...)
	c, err := certs.Import(certPEM, ca.CertPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStoreSaveListSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := certs.NewStore(dir)

	// An empty (absent) store is empty, not an error.
	if got, err := s.List(); err != nil || len(got) != 0 {
		t.Fatalf("List on a missing store = %v, %v", got, err)
	}
	rev0, err := s.Revision()
	if err != nil {
		t.Fatal(err)
	}

	a := importNew(t, "milvus-demo.milvus.io")
	b := importNew(t, "other.milvus.io", "alt.milvus.io")
	for _, c := range []*certs.Certificate{a, b} {
		if err := s.Save(c); err != nil {
			t.Fatalf("Save: %v", err)
		}
	}

	// Layout and modes.
	cdir := filepath.Join(dir, "certificates", a.ID)
	for path, want := range map[string]os.FileMode{
		filepath.Join(dir, "certificates"):     0o700 | os.ModeDir,
		cdir:                                   0o700 | os.ModeDir,
		filepath.Join(cdir, "private-key.pem"): 0o600,
		filepath.Join(cdir, "certificate.pem"): 0o644,
		filepath.Join(cdir, "chain.pem"):       0o644,
		filepath.Join(cdir, "meta.json"):       0o644,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	entries, _ := os.ReadDir(cdir)
	if len(entries) != 4 {
		t.Errorf("%s holds %d files, want 4 (no temporary files left)", cdir, len(entries))
	}

	list, err := s.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 2 {
		t.Fatalf("List = %d certificates, want 2", len(list))
	}
	byARN := map[string]*certs.Certificate{}
	for _, c := range list {
		byARN[c.ARN] = c
		if c.KeyPEM != nil {
			t.Errorf("List returned the key of %s", c.ARN)
		}
	}
	got := byARN[b.ARN]
	if got == nil {
		t.Fatalf("List lacks %s", b.ARN)
	}
	if got.Subject() != "CN=other.milvus.io" || strings.Join(got.SANs(), ",") != "other.milvus.io,alt.milvus.io" ||
		!got.NotAfter().Equal(b.NotAfter()) {
		t.Errorf("listed %s: subject %q, SANs %v, NotAfter %v", got.ARN, got.Subject(), got.SANs(), got.NotAfter())
	}

	secrets, err := s.Secrets()
	if err != nil {
		t.Fatalf("Secrets: %v", err)
	}
	if len(secrets) != 2 {
		t.Fatalf("Secrets = %d, want 2", len(secrets))
	}
	for _, sec := range secrets {
		if sec.Namespace != certs.SecretNamespace || sec.Type != corev1.SecretTypeTLS {
			t.Errorf("Secret %s/%s of type %s", sec.Namespace, sec.Name, sec.Type)
		}
		arn := sec.Annotations[certs.CertificateARNAnnotation]
		c := byARN[arn]
		if c == nil || sec.Labels[certs.CertificateIDLabel] != c.ID {
			t.Errorf("Secret %s: annotation %q, label %q", sec.Name, arn, sec.Labels[certs.CertificateIDLabel])
			continue
		}
		want := a
		if arn == b.ARN {
			want = b
		}
		if string(sec.Data["tls.crt"]) != string(want.FullChainPEM()) || string(sec.Data["tls.key"]) != string(want.KeyPEM) {
			t.Errorf("Secret %s: data differs from the import", sec.Name)
		}
	}

	rev1, err := s.Revision()
	if err != nil {
		t.Fatal(err)
	}
	if rev1 == rev0 {
		t.Error("Revision did not change after Save")
	}
	if rev2, _ := s.Revision(); rev2 != rev1 {
		t.Error("Revision changed without a Save")
	}
}

// A directory without meta.json is an import in progress and is not listed; a directory
// whose files were swapped by hand is reported, and the others still listed.
func TestStoreSkipsPartialAndReportsTampered(t *testing.T) {
	dir := t.TempDir()
	s := certs.NewStore(dir)
	a, b := importNew(t, "a.milvus.io"), importNew(t, "b.milvus.io")
	for _, c := range []*certs.Certificate{a, b} {
		if err := s.Save(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "certificates", "in-progress"), 0o700); err != nil {
		t.Fatal(err)
	}
	// b's directory now holds a's certificate.
	if err := os.WriteFile(filepath.Join(s.CertificateDir(b.ID), "certificate.pem"), a.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if len(list) != 1 || list[0].ARN != a.ARN {
		t.Errorf("List = %d certificates, want only %s", len(list), a.ARN)
	}
	if err == nil || !strings.Contains(err.Error(), s.CertificateDir(b.ID)+": meta.json does not match certificate.pem") {
		t.Errorf("List error = %v, want one naming %s", err, s.CertificateDir(b.ID))
	}
}

func TestStoreDelete(t *testing.T) {
	s := certs.NewStore(t.TempDir())
	a, b := importNew(t, "a.milvus.io"), importNew(t, "b.milvus.io")
	for _, c := range []*certs.Certificate{a, b} {
		if err := s.Save(c); err != nil {
			t.Fatal(err)
		}
	}
	rev, _ := s.Revision()
	if err := s.Delete(a.ARN); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := os.Stat(s.CertificateDir(a.ID)); !os.IsNotExist(err) {
		t.Errorf("%s still exists (%v)", s.CertificateDir(a.ID), err)
	}
	if list, err := s.List(); err != nil || len(list) != 1 || list[0].ARN != b.ARN {
		t.Errorf("after Delete, List = %d certificates, %v", len(list), err)
	}
	if rev2, _ := s.Revision(); rev2 == rev {
		t.Error("Revision did not change after Delete")
	}
	for arn, want := range map[string]string{
		a.ARN:                    "certificate " + a.ARN + " not found in " + s.Dir(),
		"arn:aws:acm:x":          `"arn:aws:acm:x" is not a milvus-lb certificate ARN (arn:milvus-lb:acm:local:000000000000:certificate/<id>)`,
		certs.ARNPrefix + "../x": `"` + certs.ARNPrefix + `../x" is not a milvus-lb certificate ARN (arn:milvus-lb:acm:local:000000000000:certificate/<id>)`,
	} {
		if err := s.Delete(arn); err == nil || err.Error() != want {
			t.Errorf("Delete(%q) = %v, want %q", arn, err, want)
		}
	}
}

func TestSaveRefusesForeignCertificate(t *testing.T) {
	c := importNew(t, "a.milvus.io")
	forged := *c
	forged.ID = "00000000-0000-8000-8000-000000000000"
	if err := certs.NewStore(t.TempDir()).Save(&forged); err == nil {
		t.Error("Save accepted a certificate whose ID is not its fingerprint")
	}
}

func TestDefaultStateDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/xdg")
	if got, _ := certs.DefaultStateDir(); got != "/var/xdg/milvus-lb" {
		t.Errorf("with XDG_STATE_HOME: %q", got)
	}
	t.Setenv("XDG_STATE_HOME", "relative/ignored")
	t.Setenv("HOME", "/home/u")
	if got, _ := certs.DefaultStateDir(); got != "/home/u/.local/state/milvus-lb" {
		t.Errorf("with HOME: %q", got)
	}
}
