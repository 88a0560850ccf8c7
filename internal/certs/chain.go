package certs

import (
	"crypto/x509"
	"fmt"
)

// CheckChainOrder requires a certificate list (what names it in errors: "tls.crt") to go
// from the leaf up: each certificate issued by the next. TLS 1.2 requires this order of the Certificate message (RFC 5246 §7.4.2); TLS 1.3
// clients may tolerate disorder, but OpenSSL-based clients such as pymilvus's gRPC core
// and older Java stacks fail on it. ACM refuses such a chain on import, and a mistake here
// shows up only when some client fails, so it is an error on the Secret rather than a
// silent reordering. der is the leaf then the chain, in DER. Import and translation (a
// Secret's tls.crt) both use it.
func CheckChainOrder(what string, der [][]byte) error {
	certs := make([]*x509.Certificate, len(der))
	for i, d := range der {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return fmt.Errorf("%s certificate %d: %w", what, i+1, err)
		}
		certs[i] = c
	}
	for i := 0; i+1 < len(certs); i++ {
		child, parent := certs[i], certs[i+1]
		if err := child.CheckSignatureFrom(parent); err != nil {
			return fmt.Errorf("%s is out of order: certificate %d (%s) is not issued by certificate %d (%s) after it; "+
				"list the server certificate first, then its issuer, then that one's issuer, up to the root", what, i+1, child.Subject, i+2, parent.Subject)
		}
	}
	return nil
}
