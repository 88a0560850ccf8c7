// Package certtest makes throwaway certificates for tests: a CA, server certificates it
// issues, and the three files of the guide (Certificate.pem, CertificateChain.pem,
// PrivateKey.pem). Keys are ECDSA P-256, which is quick to generate. It is for tests only.
//
//	ca := certtest.NewCA(t)
//	certPEM, keyPEM := ca.Issue(t, "milvus-demo.milvus.io")
//	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "milvus-demo.milvus.io"}
package certtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a self-signed root that issues certificates.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     *ecdsa.PrivateKey
}

// NewCA makes a root CA valid from an hour ago for ten years.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "milvus-lb test CA", Organization: []string{"milvus-lb tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("certtest: create CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certtest: parse CA: %v", err)
	}
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), Key: key}
}

// Pool is a pool holding only the CA, for a client's tls.Config.RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue makes a TLS server certificate for hosts (DNS names, or IP addresses such as
// "127.0.0.1"), valid from an hour ago for a day, with CN set to the first host. It
// returns the leaf alone and its PKCS#8 key, both PEM.
func (ca *CA) Issue(t testing.TB, hosts ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	now := time.Now()
	tmpl := &x509.Certificate{
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if len(hosts) > 0 {
		tmpl.Subject.CommonName = hosts[0]
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.IssueTemplate(t, tmpl)
}

// IssueTemplate signs tmpl with a new key, for certificates Issue does not make (expired,
// not yet valid, client certificates). It fills in the serial number if tmpl has none and
// sets KeyUsageDigitalSignature if tmpl has no key usage.
func (ca *CA) IssueTemplate(t testing.TB, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = serial(t)
	}
	if tmpl.KeyUsage == 0 {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatalf("certtest: issue certificate: %v", err)
	}
	return pemBlock("CERTIFICATE", der), KeyPEM(t, key)
}

// KeyPEM encodes key as a PKCS#8 "PRIVATE KEY" block, as `openssl genpkey` writes it.
func KeyPEM(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("certtest: marshal key: %v", err)
	}
	return pemBlock("PRIVATE KEY", der)
}

// Guide file names, as in the guide's `aws acm import-certificate` command.
const (
	CertificateFile      = "Certificate.pem"
	CertificateChainFile = "CertificateChain.pem"
	PrivateKeyFile       = "PrivateKey.pem"
	CAFile               = "ca.pem"
)

// WriteGuideFiles makes a new CA and a certificate for hosts, and writes into dir the
// guide's Certificate.pem (the leaf), CertificateChain.pem (the CA certificate) and
// PrivateKey.pem (0600), plus ca.pem for clients to trust. It returns the path of ca.pem.
func WriteGuideFiles(t testing.TB, dir string, hosts ...string) (caPEMPath string) {
	t.Helper()
	ca := NewCA(t)
	certPEM, keyPEM := ca.Issue(t, hosts...)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{CertificateFile, certPEM},
		{CertificateChainFile, ca.CertPEM},
		{PrivateKeyFile, keyPEM},
		{CAFile, ca.CertPEM},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o600); err != nil {
			t.Fatalf("certtest: %v", err)
		}
	}
	return filepath.Join(dir, CAFile)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("certtest: generate key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("certtest: serial: %v", err)
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
