package ingress

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/config"
)

// certificate is a resolved key pair with its parsed leaf, kept for checking which hosts
// a listener's certificates cover.
type certificate struct {
	config.Certificate
	leaf *x509.Certificate
}

// certificates resolves the Ingress's certificates: those named by certificate-arn first
// (the first is the listener's default, as on the ALB), then those of spec.tls.
//
// An ARN names a Secret that `milvus-lb cert import` created, carrying the ARN in the
// certs.CertificateARNAnnotation; like an ACM ARN it is not tied to the Ingress's namespace.
// spec.tls names a kubernetes.io/tls Secret in the Ingress's namespace.
func (x *index) certificates(ing *networkingv1.Ingress, arns []string, r *reporter) []certificate {
	var out []certificate
	seen := map[string]bool{}
	add := func(c certificate) {
		if !seen[c.Ref] {
			seen[c.Ref] = true
			out = append(out, c)
		}
	}

	for _, arn := range arns {
		secrets := x.byARN[arn]
		if len(secrets) == 0 {
			where := ""
			if x.certStore != "" {
				where = " in " + x.certStore
			}
			r.errorf(annotationPath(AnnotationCertificateARN), "certificate %s not found%s; %s", arn, where, x.importedSummary())
			continue
		}
		// Two Secrets claiming one ARN: take the first by namespace/name, so the choice
		// does not depend on the order objects arrived in.
		s := secrets[0]
		c, err := keyPair(s)
		if err != nil {
			r.errorf(annotationPath(AnnotationCertificateARN), "certificate %s (%s): %v", arn, ObjectName("Secret", s.Namespace, s.Name), err)
			continue
		}
		c.Ref = arn
		add(c)
	}

	ns := namespaceOf(ing.Namespace)
	for i, t := range ing.Spec.TLS {
		p := field.NewPath("spec", "tls").Index(i).Child("secretName")
		if t.SecretName == "" {
			r.errorf(p, "secretName is required: milvus-lb has no default certificate")
			continue
		}
		name := ObjectName("Secret", ns, t.SecretName)
		s := x.secrets[ns+"/"+t.SecretName]
		if s == nil {
			r.errorf(p, "%s not found", name)
			continue
		}
		if s.Type != corev1.SecretTypeTLS {
			r.errorf(p, "%s has type %q; want %s", name, s.Type, corev1.SecretTypeTLS)
			continue
		}
		c, err := keyPair(s)
		if err != nil {
			r.errorf(p, "%s: %v", name, err)
			continue
		}
		c.Ref = "secret " + ns + "/" + t.SecretName
		add(c)
	}
	return out
}

// importedSummary lists the ARNs that can be referenced, for a "not found" message.
func (x *index) importedSummary() string {
	if len(x.byARN) == 0 {
		return "no certificate is imported (milvus-lb cert import)"
	}
	arns := make([]string, 0, len(x.byARN))
	for a := range x.byARN {
		arns = append(arns, a)
	}
	sort.Strings(arns)
	return "imported: " + strings.Join(arns, ", ")
}

// keyPair reads tls.crt and tls.key and checks that they belong together.
func keyPair(s *corev1.Secret) (certificate, error) {
	crt, key := secretValue(s, corev1.TLSCertKey), secretValue(s, corev1.TLSPrivateKeyKey)
	switch {
	case len(crt) == 0 && len(key) == 0:
		return certificate{}, errors.New("no tls.crt and tls.key")
	case len(crt) == 0:
		return certificate{}, errors.New("no tls.crt")
	case len(key) == 0:
		return certificate{}, errors.New("no tls.key")
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return certificate{}, fmt.Errorf("tls.crt and tls.key are not a valid key pair: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return certificate{}, fmt.Errorf("tls.crt: %w", err)
	}
	if err := certs.CheckChainOrder("tls.crt", pair.Certificate); err != nil {
		return certificate{}, err
	}
	sum := sha256.Sum256(pair.Certificate[0])
	return certificate{
		Certificate: config.Certificate{
			CertPEM:  crt,
			KeyPEM:   key,
			Identity: "sha256:" + hex.EncodeToString(sum[:]),
		},
		leaf: leaf,
	}, nil
}

// secretValue returns data[key], or stringData[key] for Secrets read from files: the API
// server folds stringData into data, but a file source sees what the user wrote.
func secretValue(s *corev1.Secret, key string) []byte {
	if v, ok := s.Data[key]; ok {
		return v
	}
	if v, ok := s.StringData[key]; ok {
		return []byte(v)
	}
	return nil
}

// covers reports whether one of certs is valid for host ("*.example.com" counts as any
// name under example.com).
func covers(certs []certificate, host string) bool {
	probe := host
	if strings.HasPrefix(host, "*.") {
		probe = "wildcard-probe" + host[1:]
	}
	for _, c := range certs {
		if c.leaf != nil && c.leaf.VerifyHostname(probe) == nil {
			return true
		}
	}
	return false
}
