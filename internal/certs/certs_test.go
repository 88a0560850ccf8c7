package certs_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
)

var arnRE = regexp.MustCompile(`^arn:milvus-lb:acm:local:000000000000:certificate/[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestImportValid(t *testing.T) {
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "milvus-demo.milvus.io", "127.0.0.1")
	c, err := certs.Import(certPEM, ca.CertPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if !arnRE.MatchString(c.ARN) {
		t.Errorf("ARN = %q, want %v", c.ARN, arnRE)
	}
	if !strings.HasSuffix(c.ARN, "/"+c.ID) {
		t.Errorf("ARN %q does not end in ID %q", c.ARN, c.ID)
	}
	if got, want := c.Subject(), "CN=milvus-demo.milvus.io"; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
	if got, want := strings.Join(c.SANs(), ","), "milvus-demo.milvus.io,127.0.0.1"; got != want {
		t.Errorf("SANs = %q, want %q", got, want)
	}
	// What a server would load must be the leaf then the CA, with the key.
	pair, err := tls.X509KeyPair(c.FullChainPEM(), c.KeyPEM)
	if err != nil {
		t.Fatalf("X509KeyPair(FullChainPEM, KeyPEM): %v", err)
	}
	if len(pair.Certificate) != 2 || !bytes.Equal(pair.Certificate[1], ca.Cert.Raw) {
		t.Errorf("full chain has %d certificates, want leaf and CA", len(pair.Certificate))
	}

	// The same certificate imported again, a minute later, keeps its ARN; another
	// certificate gets another.
	again, err := certs.Import(certPEM, ca.CertPEM, keyPEM, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if again.ARN != c.ARN {
		t.Errorf("re-import ARN = %q, want %q", again.ARN, c.ARN)
	}
	otherPEM, otherKey := ca.Issue(t, "milvus-demo.milvus.io")
	other, err := certs.Import(otherPEM, ca.CertPEM, otherKey, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if other.ARN == c.ARN {
		t.Errorf("two certificates share ARN %q", c.ARN)
	}
}

func TestImportFullChainAsCertificate(t *testing.T) {
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "milvus-demo.milvus.io")
	full := append(append([]byte(nil), certPEM...), ca.CertPEM...)
	c, err := certs.Import(full, nil, keyPEM, time.Now())
	if err != nil {
		t.Fatalf("Import(fullchain, no chain): %v", err)
	}
	if !bytes.Equal(c.ChainPEM, ca.CertPEM) {
		t.Errorf("ChainPEM = %q, want the CA", c.ChainPEM)
	}
}

// An intermediate-only chain (Let's Encrypt's chain.pem stops below the root) is
// anchored at its last certificate.
func TestImportChainWithoutRoot(t *testing.T) {
	root := certtest.NewCA(t)
	inter := intermediate(t, root)
	certPEM, keyPEM := inter.Issue(t, "milvus-demo.milvus.io")
	if _, err := certs.Import(certPEM, inter.CertPEM, keyPEM, time.Now()); err != nil {
		t.Fatalf("Import(chain = intermediate): %v", err)
	}
	// Intermediate then root is the order TLS sends; root first is refused, as ACM does,
	// because TLS 1.2 clients fail on it.
	chain := append(append([]byte(nil), inter.CertPEM...), root.CertPEM...)
	if _, err := certs.Import(certPEM, chain, keyPEM, time.Now()); err != nil {
		t.Fatalf("Import(chain = intermediate, root): %v", err)
	}
	chain = append(append([]byte(nil), root.CertPEM...), inter.CertPEM...)
	_, err := certs.Import(certPEM, chain, keyPEM, time.Now())
	wantErr(t, err, "the certificate chain is out of order: certificate 1 (CN=milvus-demo.milvus.io) is not issued by certificate 2 "+
		"(CN=milvus-lb test CA,O=milvus-lb tests) after it; list the server certificate first, then its issuer, then that one's issuer, up to the root")
	// The root alone does not connect the leaf to it.
	_, err = certs.Import(certPEM, root.CertPEM, keyPEM, time.Now())
	wantErr(t, err, "certificate chain does not verify the certificate: x509: certificate signed by unknown authority")
}

func TestImportSelfSigned(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "self.milvus.io"},
		DNSNames:     []string{"self.milvus.io"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if _, err := certs.Import(certPEM, nil, certtest.KeyPEM(t, key), time.Now()); err != nil {
		t.Fatalf("Import(self-signed, no chain): %v", err)
	}
}

func TestImportErrors(t *testing.T) {
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "milvus-demo.milvus.io")
	_, otherKey := ca.Issue(t, "milvus-demo.milvus.io")
	wrongCA := certtest.NewCA(t)
	expiredPEM, expiredKey := ca.IssueTemplate(t, &x509.Certificate{
		DNSNames:    []string{"milvus-demo.milvus.io"},
		NotBefore:   time.Date(2023, 1, 2, 0, 0, 0, 0, time.UTC),
		NotAfter:    time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	futurePEM, futureKey := ca.IssueTemplate(t, &x509.Certificate{
		DNSNames:    []string{"milvus-demo.milvus.io"},
		NotBefore:   time.Date(2099, 1, 2, 0, 0, 0, 0, time.UTC),
		NotAfter:    time.Date(2100, 1, 2, 0, 0, 0, 0, time.UTC),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	clientPEM, clientKey := ca.IssueTemplate(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "a client"},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	encKey := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	rsaEnc := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}})

	for _, tc := range []struct {
		name             string
		cert, chain, key []byte
		want             string
		wantPrefixOnly   bool
	}{
		{"mismatched key", certPEM, ca.CertPEM, otherKey,
			"private key does not match the certificate", false},
		{"expired", expiredPEM, ca.CertPEM, expiredKey,
			"certificate expired on 2024-01-02T00:00:00Z", false},
		{"not yet valid", futurePEM, ca.CertPEM, futureKey,
			"certificate is not valid until 2099-01-02T00:00:00Z", false},
		{"wrong chain", certPEM, wrongCA.CertPEM, keyPEM,
			"certificate chain does not verify the certificate: x509: certificate signed by unknown authority", true},
		{"no chain for CA-signed", certPEM, nil, keyPEM,
			"certificate chain is empty, but the certificate is not self-signed: pass the certificates of its issuer (CN=milvus-lb test CA,O=milvus-lb tests) up to the root as the chain", false},
		{"client certificate", clientPEM, ca.CertPEM, clientKey,
			"certificate chain does not verify the certificate: x509: certificate specifies an incompatible key usage", false},
		{"key swapped with certificate", keyPEM, ca.CertPEM, certPEM,
			`certificate: PEM block 1 is "PRIVATE KEY", want "CERTIFICATE"`, false},
		{"empty certificate", nil, ca.CertPEM, keyPEM,
			`certificate: no PEM "CERTIFICATE" block found`, false},
		{"garbage certificate", []byte("hello"), ca.CertPEM, keyPEM,
			`certificate: no PEM data found`, false},
		{"garbage chain", certPEM, []byte("hello"), keyPEM,
			`certificate chain: no PEM data found`, false},
		{"empty key", certPEM, ca.CertPEM, nil,
			"private key: no PEM data found", false},
		{"certificate as key", certPEM, ca.CertPEM, ca.CertPEM,
			`private key: no PEM "PRIVATE KEY" block found`, false},
		{"encrypted PKCS#8 key", certPEM, ca.CertPEM, encKey,
			"private key: the key is encrypted; import needs it unencrypted (decrypt it with `openssl pkey -in KEY -out PLAIN`)", false},
		{"encrypted PKCS#1 key", certPEM, ca.CertPEM, rsaEnc,
			"private key: the key is encrypted; import needs it unencrypted (decrypt it with `openssl pkey -in KEY -out PLAIN`)", false},
		{"corrupt key", certPEM, ca.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}),
			`private key: cannot parse "PRIVATE KEY" block: `, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := certs.Import(tc.cert, tc.chain, tc.key, time.Now())
			if c != nil {
				t.Errorf("Import returned a certificate along with error %v", err)
			}
			if tc.wantPrefixOnly {
				if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
					t.Fatalf("Import error = %v, want prefix %q", err, tc.want)
				}
				return
			}
			wantErr(t, err, tc.want)
		})
	}
}

func TestToSecret(t *testing.T) {
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "milvus-demo.milvus.io")
	c, err := certs.Import(certPEM, ca.CertPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := certs.ToSecret(c, "milvus")
	if s.Type != corev1.SecretTypeTLS || s.Namespace != "milvus" || s.Name != certs.SecretName(c.ID) {
		t.Errorf("Secret %s/%s of type %s", s.Namespace, s.Name, s.Type)
	}
	if s.Annotations[certs.CertificateARNAnnotation] != c.ARN {
		t.Errorf("annotation %s = %q, want %q", certs.CertificateARNAnnotation, s.Annotations[certs.CertificateARNAnnotation], c.ARN)
	}
	if s.Labels[certs.CertificateIDLabel] != c.ID {
		t.Errorf("label %s = %q, want %q", certs.CertificateIDLabel, s.Labels[certs.CertificateIDLabel], c.ID)
	}
	if _, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]); err != nil {
		t.Errorf("Secret data is not a key pair: %v", err)
	}
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
}

// intermediate makes a CA signed by root.
func intermediate(t *testing.T, root *certtest.CA) *certtest.CA {
	t.Helper()
	certPEM, keyPEM := root.IssueTemplate(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "milvus-lb test intermediate"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	})
	b, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return &certtest.CA{Cert: cert, CertPEM: certPEM, Key: key.(*ecdsa.PrivateKey)}
}
