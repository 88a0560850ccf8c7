package ingress

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// AnnotationMutualAuthentication configures mutual TLS per HTTPS port, as the AWS Load
// Balancer Controller does:
//
//	'[{"port":443,"mode":"verify","trustStore":"/etc/milvus-lb/clients-ca.pem"}]'
//
// mode is off (the default for ports not listed), passthrough (ask for a certificate, do
// not check it, and forward it to the backend in X-Amzn-Mtls-Clientcert) or verify (refuse,
// at the handshake, clients without a certificate the trust store verifies). On AWS the
// trustStore is an ELB trust store ARN or name; milvus-lb reads a PEM bundle of CA
// certificates from a file instead: an absolute path, or a path relative to the directory
// of the manifest file that holds the Ingress.
const AnnotationMutualAuthentication = ALBAnnotationPrefix + "mutual-authentication"

// Mutual-authentication modes.
const (
	MTLSOff         = "off"
	MTLSPassthrough = "passthrough"
	MTLSVerify      = "verify"
)

// mtlsEntry is one element of the mutual-authentication annotation. Pointers tell "not
// given" from a zero value, because some fields are only allowed in some modes.
type mtlsEntry struct {
	Port                          *int    `json:"port"`
	Mode                          string  `json:"mode"`
	TrustStore                    *string `json:"trustStore"`
	IgnoreClientCertificateExpiry *bool   `json:"ignoreClientCertificateExpiry"`
	AdvertiseTrustStoreCaNames    *string `json:"advertiseTrustStoreCaNames"`
}

// mtlsPort is the parsed setting of one port, before its trust store is read.
type mtlsPort struct {
	port       int
	mode       string // passthrough or verify; off ports are not kept
	trustStore string // as written
}

// parseMutualAuth reads the annotation, checking each entry on its own (ports against
// listen-ports are checked by checkMutualAuthPorts once those are known). Invalid entries
// are reported and dropped.
func parseMutualAuth(a annotations) []mtlsPort {
	v, ok := a.get(AnnotationMutualAuthentication)
	if !ok {
		return nil
	}
	const example = `[{"port":443,"mode":"verify","trustStore":"/path/to/ca-bundle.pem"}]`
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	var entries []mtlsEntry
	if err := dec.Decode(&entries); err != nil {
		a.errorf(AnnotationMutualAuthentication, "invalid mutual-authentication %q: want a JSON list such as %s: %v", v, example, err)
		return nil
	}
	var out []mtlsPort
	seen := map[int]bool{}
	for i, e := range entries {
		at := fmt.Sprintf("entry %d", i+1)
		if e.Port == nil {
			a.errorf(AnnotationMutualAuthentication, "%s has no port", at)
			continue
		}
		port := *e.Port
		at = fmt.Sprintf("entry %d (port %d)", i+1, port)
		if port < 1 || port > 65535 {
			a.errorf(AnnotationMutualAuthentication, "%s: port is out of range 1-65535", at)
			continue
		}
		if seen[port] {
			a.errorf(AnnotationMutualAuthentication, "%s: port %d is listed more than once", at, port)
			continue
		}
		seen[port] = true
		mode := e.Mode
		if mode == "" {
			mode = MTLSOff // the ALB's default
		}
		switch mode {
		case MTLSOff, MTLSPassthrough, MTLSVerify:
		default:
			a.errorf(AnnotationMutualAuthentication, "%s: unknown mode %q: must be off, passthrough or verify", at, e.Mode)
			continue
		}
		bad := !checkMTLSEntry(a, e, mode, at)
		if bad || mode == MTLSOff {
			continue
		}
		m := mtlsPort{port: port, mode: mode}
		if e.TrustStore != nil {
			m.trustStore = strings.TrimSpace(*e.TrustStore)
		}
		out = append(out, m)
	}
	return out
}

// checkMTLSEntry reports whether the fields of a mutual-authentication entry (at: where
// it is, for messages) fit its mode and what milvus-lb supports.
func checkMTLSEntry(a annotations, e mtlsEntry, mode, at string) bool {
	ok := true
	if mode == MTLSVerify && (e.TrustStore == nil || strings.TrimSpace(*e.TrustStore) == "") {
		a.errorf(AnnotationMutualAuthentication, "%s: mode verify needs a trustStore (a PEM file of the CA certificates that issue client certificates)", at)
		ok = false
	}
	if mode != MTLSVerify && e.TrustStore != nil {
		a.errorf(AnnotationMutualAuthentication, "%s: trustStore is only used with mode verify, not %s", at, mode)
		ok = false
	}
	if e.IgnoreClientCertificateExpiry != nil {
		if mode != MTLSVerify {
			a.errorf(AnnotationMutualAuthentication, "%s: ignoreClientCertificateExpiry is only used with mode verify, not %s", at, mode)
			ok = false
		} else if *e.IgnoreClientCertificateExpiry {
			// Accepting expired client certificates needs verification outside
			// crypto/tls's own; until the listener does it, say so rather than let the
			// user believe expired certificates pass.
			a.errorf(AnnotationMutualAuthentication, "%s: ignoreClientCertificateExpiry true is not supported: expired client certificates are always refused", at)
			ok = false
		}
	}
	if s := e.AdvertiseTrustStoreCaNames; s != nil {
		switch *s {
		case "on":
		case "off":
			// crypto/tls always names the trust store's CAs in its CertificateRequest.
			a.r.warnf(annotationPath(AnnotationMutualAuthentication), "%s: advertiseTrustStoreCaNames off is not supported: the names of the trust store's CAs are always sent to clients", at)
		default:
			a.errorf(AnnotationMutualAuthentication, "%s: advertiseTrustStoreCaNames must be on or off, got %q", at, *s)
			ok = false
		}
	}
	return ok
}

// checkMutualAuthPorts drops and reports entries for ports the Ingress does not listen on
// with HTTPS: mutual TLS is part of the TLS handshake.
func checkMutualAuthPorts(ms []mtlsPort, ports []listenPort, r *reporter) []mtlsPort {
	var out []mtlsPort
	for _, m := range ms {
		proto := config.Protocol("")
		for _, lp := range ports {
			if lp.Port == m.port {
				proto = lp.Protocol
			}
		}
		switch proto {
		case config.HTTPS:
			out = append(out, m)
		case "":
			r.errorf(annotationPath(AnnotationMutualAuthentication), "port %d is not in listen-ports", m.port)
		default:
			r.errorf(annotationPath(AnnotationMutualAuthentication), "port %d is an %s listener; mutual authentication needs HTTPS", m.port, proto)
		}
	}
	return out
}

// ReadFileFunc reads a file named by a manifest, such as a mutual-authentication trust
// store. Options.ReadFile defaults to os.ReadFile.
type ReadFileFunc func(path string) ([]byte, error)

// resolveMutualAuth reads the trust stores of ms and returns the listener settings by
// port. A relative trustStore is taken from the directory of ingFile, the manifest the
// Ingress came from; an Ingress from an API server has no file and must give an absolute
// path.
func resolveMutualAuth(ms []mtlsPort, ingFile string, read ReadFileFunc, r *reporter) map[int]*config.MutualTLS {
	if len(ms) == 0 {
		return nil
	}
	out := map[int]*config.MutualTLS{}
	for _, m := range ms {
		c := &config.MutualTLS{Mode: m.mode}
		if m.mode == MTLSVerify {
			pemData, err := readTrustStore(m.trustStore, ingFile, read)
			if err != nil {
				r.errorf(annotationPath(AnnotationMutualAuthentication), "port %d: trustStore %s: %v", m.port, m.trustStore, err)
				continue
			}
			c.TrustStore, c.TrustStorePEM = m.trustStore, pemData
		}
		out[m.port] = c
	}
	return out
}

func readTrustStore(ref, ingFile string, read ReadFileFunc) ([]byte, error) {
	if strings.HasPrefix(ref, "arn:") {
		return nil, errors.New("an ELB trust store ARN cannot be read outside AWS: give the path of a PEM file of the CA certificates instead")
	}
	path := ref
	if !filepath.IsAbs(path) {
		if ingFile == "" {
			return nil, errors.New("a relative path needs the Ingress to come from a file; give an absolute path")
		}
		path = filepath.Join(filepath.Dir(ingFile), path)
	}
	if read == nil {
		read = os.ReadFile
	}
	data, err := read(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if err := checkTrustStore(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// checkTrustStore accepts a bundle of one or more PEM CERTIFICATE blocks, each a CA.
func checkTrustStore(data []byte) error {
	n := 0
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %d is %q; a trust store holds only CERTIFICATE blocks", n+1, b.Type)
		}
		n++
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("certificate %d: %w", n, err)
		}
		if !c.IsCA {
			return fmt.Errorf("certificate %d (%s) is not a CA certificate", n, c.Subject)
		}
	}
	if n == 0 {
		return errors.New("no PEM CERTIFICATE block found")
	}
	return nil
}

// sameMutualTLS reports whether two Ingresses ask for the same client-certificate policy
// on a port they share.
func sameMutualTLS(a, b *config.MutualTLS) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Mode == b.Mode && a.IgnoreExpiry == b.IgnoreExpiry && bytes.Equal(a.TrustStorePEM, b.TrustStorePEM)
}
