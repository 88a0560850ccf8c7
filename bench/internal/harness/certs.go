package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Host is the name clients connect to (SNI and :authority), the guide's host.
const Host = "milvus-demo.milvus.io"

// certFiles is a self-signed server certificate for Host and 127.0.0.1, written as the
// files each balancer wants: certificate, key, and both in one (HAProxy).
type certFiles struct {
	certPEM, keyPEM         []byte
	certFile, keyFile, both string
	pool                    *x509.CertPool
}

// newCert makes an ECDSA P-256 certificate: every balancer does the same handshake, the
// cheapest common one, so that TLS is measured alike.
func newCert(dir string) (*certFiles, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: Host},
		DNSNames:              []string{Host},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &certFiles{
		certPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}),
		certFile: filepath.Join(dir, "tls.crt"),
		keyFile:  filepath.Join(dir, "tls.key"),
		both:     filepath.Join(dir, "tls.pem"),
		pool:     x509.NewCertPool(),
	}
	c.pool.AddCert(cert)
	for path, data := range map[string][]byte{
		c.certFile: c.certPEM,
		c.keyFile:  c.keyPEM,
		c.both:     append(append([]byte{}, c.certPEM...), c.keyPEM...),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return c, nil
}
