package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// serverTLS builds the TLS configuration of one HTTPS listener: its certificates (Go picks
// the first one whose names cover the client's SNI, and the first one when none does, as
// the ALB falls back to its default certificate), the protocol versions, cipher suites and
// curves of its policy, ALPN h2 and http/1.1, and the client-certificate policy.
func serverTLS(l config.Listener) (*tls.Config, error) {
	if len(l.Certificates) == 0 {
		return nil, errors.New("HTTPS listener has no certificate")
	}
	cfg := &tls.Config{
		NextProtos: []string{"h2", "http/1.1"},
	}
	for _, c := range l.Certificates {
		kp, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", c.Ref, err)
		}
		cfg.Certificates = append(cfg.Certificates, kp)
	}
	l.TLS.Apply(cfg)
	if m := l.MutualTLS; m != nil {
		pool := x509.NewCertPool()
		if len(m.TrustStorePEM) > 0 && !pool.AppendCertsFromPEM(m.TrustStorePEM) {
			return nil, fmt.Errorf("mutual-authentication trust store %s has no certificate", m.TrustStore)
		}
		switch m.Mode {
		case "verify":
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
			cfg.ClientCAs = pool
		case "passthrough":
			// The ALB asks for a certificate, does not check it, and hands it to the
			// target in a header; the proxy does the same.
			cfg.ClientAuth = tls.RequestClientCert
		}
	}
	return cfg, nil
}
