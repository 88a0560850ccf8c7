// Package certs is the certificate store behind `milvus-lb cert import`: the standalone
// analogue of `aws acm import-certificate`. A certificate is validated once, on import,
// stored under an ARN derived from its fingerprint, and handed to translation as an
// ordinary kubernetes.io/tls Secret, so that the alb.ingress.kubernetes.io/certificate-arn
// annotation resolves the same way in standalone and controller mode.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ARNPrefix starts every ARN the store hands out. The account and region are fixed
// placeholders: they only make the identifier look like, and parse like, the ACM ARN that
// the guide pastes into the certificate-arn annotation.
const ARNPrefix = "arn:milvus-lb:acm:local:000000000000:certificate/"

// SecretNamespace is where Store.Secrets places the Secrets it makes. Translation resolves
// certificate-arn by annotation in any namespace, so the namespace only has to not collide
// with the user's own objects.
const SecretNamespace = "milvus-lb-system"

// The label and annotation of the Secrets that ToSecret makes. Translation resolves a
// certificate-arn through the annotation (in any namespace, as an ACM ARN is not tied to
// one); the ARN is an annotation because label values cannot hold ':' or '/', and the ID
// is a label so that the controller can watch just these Secrets.
const (
	CertificateIDLabel       = "milvus-lb.io/certificate-id"
	CertificateARNAnnotation = "milvus-lb.io/certificate-arn"
)

// Certificate is one imported certificate. Fields are read-only once returned.
type Certificate struct {
	ARN string
	// ID is the ARN's last element, a UUID; it names the store directory and the Secret.
	ID string
	// Leaf is the parsed certificate.
	Leaf *x509.Certificate
	// CertPEM is the leaf alone; ChainPEM the intermediates (and root, if given) in the
	// order they were imported. Both are re-encoded from DER, so comments and bag
	// attributes in the input are gone.
	CertPEM  []byte
	ChainPEM []byte
	// KeyPEM is the unencrypted private key. Store.List leaves it nil.
	KeyPEM []byte
	// ImportedAt is when Import validated the certificate.
	ImportedAt time.Time
}

// Subject is the leaf's subject in RFC 2253 form, e.g. "CN=milvus-demo.milvus.io".
func (c *Certificate) Subject() string { return c.Leaf.Subject.String() }

// SANs are the leaf's DNS names followed by its IP addresses.
func (c *Certificate) SANs() []string {
	sans := append([]string(nil), c.Leaf.DNSNames...)
	for _, ip := range c.Leaf.IPAddresses {
		sans = append(sans, ip.String())
	}
	return sans
}

// NotAfter is when the leaf expires.
func (c *Certificate) NotAfter() time.Time { return c.Leaf.NotAfter }

// Fingerprint is the hex SHA-256 of the leaf's DER encoding.
func (c *Certificate) Fingerprint() string {
	sum := sha256.Sum256(c.Leaf.Raw)
	return hex.EncodeToString(sum[:])
}

// FullChainPEM is the leaf followed by the chain: what a TLS server sends.
func (c *Certificate) FullChainPEM() []byte {
	out := make([]byte, 0, len(c.CertPEM)+len(c.ChainPEM))
	out = append(out, c.CertPEM...)
	return append(out, c.ChainPEM...)
}

// Import validates a certificate, its chain and its private key, as ACM does before it
// accepts an import, and returns them ready to Save. now is the time validity is checked
// against.
//
// Rules, in the order they are checked:
//   - certPEM holds the leaf first. Any further certificates in it are treated as the start
//     of the chain, so a "fullchain.pem" works as the certificate.
//   - keyPEM holds one unencrypted private key (PKCS#8, PKCS#1 or SEC 1) whose public key is
//     the leaf's.
//   - now lies within the leaf's validity period.
//   - The chain verifies the leaf for TLS server use: the self-signed certificates in the
//     chain are the trust anchors and the others intermediates; a chain without a
//     self-signed certificate (such as Let's Encrypt's chain.pem, which stops below the
//     root) uses its last certificate as the anchor. An empty chain is accepted only for a
//     self-signed leaf, because nothing else could prove the leaf was issued by anyone.
//
// The returned errors are meant to be shown to the user as they are.
func Import(certPEM, chainPEM, keyPEM []byte, now time.Time) (*Certificate, error) {
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("certificate: no PEM \"CERTIFICATE\" block found")
	}
	leaf := certs[0]
	chain, err := parseCertificates(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate chain: %w", err)
	}
	chain = append(append([]*x509.Certificate(nil), certs[1:]...), chain...)

	keyBlock, key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, errors.New("private key does not match the certificate")
	}

	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("certificate is not valid until %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("certificate expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}

	if err := verifyChain(leaf, chain, now); err != nil {
		return nil, err
	}
	// A chain that verifies may still be out of order, which TLS 1.2 clients refuse; ACM
	// refuses it on import, and so does this.
	der := [][]byte{leaf.Raw}
	for _, c := range chain {
		der = append(der, c.Raw)
	}
	if err := CheckChainOrder("the certificate chain", der); err != nil {
		return nil, err
	}

	c := &Certificate{
		Leaf:       leaf,
		CertPEM:    encodeCertificates([]*x509.Certificate{leaf}),
		ChainPEM:   encodeCertificates(chain),
		KeyPEM:     pem.EncodeToMemory(keyBlock),
		ImportedAt: now.UTC().Truncate(time.Second),
	}
	c.ID = idFor(leaf)
	c.ARN = ARNPrefix + c.ID

	// The gateway loads the pair with crypto/tls; if it would refuse it, refuse it now,
	// where the user can still fix it, not at serve time.
	if _, err := tls.X509KeyPair(c.FullChainPEM(), c.KeyPEM); err != nil {
		return nil, fmt.Errorf("certificate and key are not a usable TLS key pair: %w", err)
	}
	return c, nil
}

func verifyChain(leaf *x509.Certificate, chain []*x509.Certificate, now time.Time) error {
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	if len(chain) == 0 {
		if !selfSigned(leaf) {
			return fmt.Errorf("certificate chain is empty, but the certificate is not self-signed: "+
				"pass the certificates of its issuer (%s) up to the root as the chain", leaf.Issuer)
		}
		roots.AddCert(leaf)
	}
	anchors := 0
	for _, c := range chain {
		if selfSigned(c) {
			roots.AddCert(c)
			anchors++
		} else {
			intermediates.AddCert(c)
		}
	}
	if len(chain) > 0 && anchors == 0 {
		roots.AddCert(chain[len(chain)-1])
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("certificate chain does not verify the certificate: %w", err)
	}
	return nil
}

// selfSigned reports whether c is its own issuer and its signature checks out with its own
// key; a matching name alone is not enough. (CheckSignatureFrom would also demand that c be
// a CA, which a self-signed server certificate usually is not.)
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// idFor derives the certificate ID from the leaf, so that importing the same certificate
// again yields the same ARN (ACM instead re-imports into an ARN the caller names). The ID is
// a UUIDv8 built from SHA-256 as in RFC 9562 appendix B.2: the first 128 bits of the hash
// with the version and variant bits set.
func idFor(leaf *x509.Certificate) string {
	sum := sha256.Sum256(leaf.Raw)
	var u [16]byte
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // variant 10
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// parseCertificates reads every PEM block of data; all must be certificates. Text
// between blocks (openssl's "subject=" lines) is ignored.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, want \"CERTIFICATE\"", n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(data)) > 0 && len(out) == 0 {
		return nil, errors.New("no PEM data found")
	}
	return out, nil
}

// parsePrivateKey finds the private key in data, skipping blocks such as
// "EC PARAMETERS" that `openssl ecparam -genkey` writes before it.
func parsePrivateKey(data []byte) (*pem.Block, crypto.Signer, error) {
	sawPEM := false
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		sawPEM = true
		var (
			k   any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			if _, encrypted := block.Headers["DEK-Info"]; encrypted {
				return nil, nil, errors.New("the key is encrypted; import needs it unencrypted " +
					"(decrypt it with `openssl pkey -in KEY -out PLAIN`)")
			}
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			if _, encrypted := block.Headers["DEK-Info"]; encrypted {
				return nil, nil, errors.New("the key is encrypted; import needs it unencrypted " +
					"(decrypt it with `openssl pkey -in KEY -out PLAIN`)")
			}
			k, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, nil, errors.New("the key is encrypted; import needs it unencrypted " +
				"(decrypt it with `openssl pkey -in KEY -out PLAIN`)")
		default:
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("cannot parse %q block: %w", block.Type, err)
		}
		switch k := k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return block, k.(crypto.Signer), nil
		default:
			return nil, nil, fmt.Errorf("unsupported key type %T", k)
		}
	}
	if sawPEM {
		return nil, nil, errors.New("no PEM \"PRIVATE KEY\" block found")
	}
	return nil, nil, errors.New("no PEM data found")
}

func encodeCertificates(cs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range cs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}) // writes to a Buffer do not fail
	}
	return b.Bytes()
}

// ToSecret renders c as the kubernetes.io/tls Secret that translation resolves the ARN to:
// tls.crt is the leaf followed by the chain, the ARN is in the CertificateARNAnnotation
// annotation and the ID in the CertificateIDLabel label. c must have its key.
func ToSecret(c *Certificate, namespace string) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        SecretName(c.ID),
			Namespace:   namespace,
			Labels:      map[string]string{CertificateIDLabel: c.ID},
			Annotations: map[string]string{CertificateARNAnnotation: c.ARN},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       c.FullChainPEM(),
			corev1.TLSPrivateKeyKey: c.KeyPEM,
		},
	}
}

// SecretName is the name ToSecret gives the Secret of the certificate with this ID.
func SecretName(id string) string { return "milvus-lb-cert-" + id }
