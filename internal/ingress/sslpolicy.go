package ingress

import (
	"crypto/tls"
	"slices"
	"sort"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// DefaultSSLPolicy is the policy of an HTTPS listener whose Ingresses set no
// alb.ingress.kubernetes.io/ssl-policy, as with the AWS Load Balancer Controller.
const DefaultSSLPolicy = "ELBSecurityPolicy-2016-08"

// LookupSSLPolicy resolves an ELBSecurityPolicy name to the TLS settings it stands for;
// the returned slices are copies.
//
// The ALB's policies list OpenSSL cipher names; CipherSuites holds those that crypto/tls
// implements, in the policy's order. Setting them explicitly also re-enables the RSA key
// exchange suites that Go leaves out by default, as the ALB policies offer them. Two kinds
// of ALB suites have no Go implementation and are left out: the CBC suites with SHA-384
// (ECDHE-*-AES256-SHA384) and AES256-SHA256. A client offering only those cannot connect;
// no maintained TLS stack is in that position. TLS 1.3 suites are not configurable in Go;
// its fixed set (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305) is the one the ALB's TLS13
// policies list. Curves are the key exchanges offered: only the "PQ" policies include the
// hybrid post-quantum ML-KEM groups, matching what the ALB advertises per policy.
func LookupSSLPolicy(name string) (config.TLSPolicy, bool) {
	p, ok := sslPolicies[name]
	if !ok {
		return config.TLSPolicy{}, false
	}
	p.Name = name
	p.CipherSuites = slices.Clone(p.CipherSuites)
	p.Curves = slices.Clone(p.Curves)
	return p, true
}

// SSLPolicies returns the names of the known policies, sorted.
func SSLPolicies() []string {
	names := make([]string, 0, len(sslPolicies))
	for n := range sslPolicies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Cipher groups, named after the OpenSSL names the ALB documentation uses
// (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html).
var (
	// ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256,
	// ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-RSA-AES256-GCM-SHA384.
	ecdheGCM = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	}
	// ECDHE-ECDSA-AES128-SHA256, ECDHE-RSA-AES128-SHA256 (the SHA384 CBC pair has no Go
	// implementation).
	ecdheCBCSHA2 = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	}
	// ECDHE-ECDSA-AES128-SHA, ECDHE-RSA-AES128-SHA, ECDHE-RSA-AES256-SHA,
	// ECDHE-ECDSA-AES256-SHA.
	ecdheCBCSHA1 = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	}
	// AES128-GCM-SHA256, AES256-GCM-SHA384 (RSA key exchange).
	rsaGCM = []uint16{
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	}
	// AES128-SHA256 (AES256-SHA256 has no Go implementation).
	rsaCBCSHA2 = []uint16{
		tls.TLS_RSA_WITH_AES_128_CBC_SHA256,
	}
	// AES128-SHA, AES256-SHA.
	rsaCBCSHA1 = []uint16{
		tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	}

	classicCurves = []config.Curve{config.Curve(tls.X25519), config.Curve(tls.CurveP256), config.Curve(tls.CurveP384), config.Curve(tls.CurveP521)}
	pqCurves      = append([]config.Curve{config.Curve(tls.X25519MLKEM768), config.Curve(tls.SecP256r1MLKEM768), config.Curve(tls.SecP384r1MLKEM1024)}, classicCurves...)
)

// suites concatenates cipher groups into a policy's list.
func suites(groups ...[]uint16) []config.CipherSuite {
	var out []config.CipherSuite
	for _, id := range slices.Concat(groups...) {
		out = append(out, config.CipherSuite(id))
	}
	return out
}

// The 2016-08 set, in the ALB's order: ECDHE first (GCM, SHA-2, SHA-1), then RSA.
var legacy = suites(ecdheGCM[:2], ecdheCBCSHA2, ecdheCBCSHA1[:2], ecdheGCM[2:], ecdheCBCSHA1[2:], rsaGCM[:1], rsaCBCSHA2, rsaCBCSHA1[:1], rsaGCM[1:], rsaCBCSHA1[1:])

// TLS 1.3 policies' TLS 1.2 suites.
var (
	tls13Std  = suites(ecdheGCM, ecdheCBCSHA2)                                               // TLS13-1-2-2021-06
	tls13Ext1 = suites(ecdheGCM, ecdheCBCSHA2, rsaGCM, rsaCBCSHA2)                           // adds RSA key exchange
	tls13Ext2 = suites(ecdheGCM, ecdheCBCSHA2, ecdheCBCSHA1, rsaGCM, rsaCBCSHA2, rsaCBCSHA1) // adds SHA-1
)

// sslPolicies maps every accepted ssl-policy name to its settings. Policies the ALB offers
// only in FIPS mode are not listed: FIPS is a property of the whole Go binary, not of a
// listener.
var sslPolicies = map[string]config.TLSPolicy{
	"ELBSecurityPolicy-2016-08":             {MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12, CipherSuites: legacy, Curves: classicCurves},
	"ELBSecurityPolicy-2015-05":             {MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12, CipherSuites: legacy, Curves: classicCurves},
	"ELBSecurityPolicy-TLS-1-1-2017-01":     {MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS12, CipherSuites: legacy, Curves: classicCurves},
	"ELBSecurityPolicy-TLS-1-2-2017-01":     {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites(ecdheGCM, ecdheCBCSHA2, rsaGCM, rsaCBCSHA2), Curves: classicCurves},
	"ELBSecurityPolicy-TLS-1-2-Ext-2018-06": {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: legacy, Curves: classicCurves},
	"ELBSecurityPolicy-FS-2018-06":          {MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12, CipherSuites: suites(ecdheGCM, ecdheCBCSHA2, ecdheCBCSHA1), Curves: classicCurves},
	"ELBSecurityPolicy-FS-1-1-2019-08":      {MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS12, CipherSuites: suites(ecdheGCM, ecdheCBCSHA2, ecdheCBCSHA1), Curves: classicCurves},
	"ELBSecurityPolicy-FS-1-2-2019-08":      {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites(ecdheGCM, ecdheCBCSHA2, ecdheCBCSHA1), Curves: classicCurves},
	"ELBSecurityPolicy-FS-1-2-Res-2019-08":  {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites(ecdheGCM, ecdheCBCSHA2), Curves: classicCurves},
	"ELBSecurityPolicy-FS-1-2-Res-2020-10":  {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites(ecdheGCM), Curves: classicCurves},

	"ELBSecurityPolicy-TLS13-1-0-2021-06":      {MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS13, CipherSuites: tls13Ext2, Curves: classicCurves},
	"ELBSecurityPolicy-TLS13-1-1-2021-06":      {MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS13, CipherSuites: tls13Ext2, Curves: classicCurves},
	"ELBSecurityPolicy-TLS13-1-2-2021-06":      {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, CipherSuites: tls13Std, Curves: classicCurves},
	"ELBSecurityPolicy-TLS13-1-2-Res-2021-06":  {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, CipherSuites: suites(ecdheGCM), Curves: classicCurves},
	"ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06": {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, CipherSuites: tls13Ext1, Curves: classicCurves},
	"ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06": {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, CipherSuites: tls13Ext2, Curves: classicCurves},
	"ELBSecurityPolicy-TLS13-1-3-2021-06":      {MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13, Curves: classicCurves},

	// Hybrid post-quantum key exchange (2025-09): the same suites, plus ML-KEM groups.
	"ELBSecurityPolicy-TLS13-1-0-PQ-2025-09":      {MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS13, CipherSuites: tls13Ext2, Curves: pqCurves},
	"ELBSecurityPolicy-TLS13-1-1-PQ-2025-09":      {MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS13, CipherSuites: tls13Ext2, Curves: pqCurves},
	"ELBSecurityPolicy-TLS13-1-2-PQ-2025-09":      {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, CipherSuites: tls13Std, Curves: pqCurves},
	"ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09":  {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, CipherSuites: suites(ecdheGCM), Curves: pqCurves},
	"ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09": {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, CipherSuites: tls13Ext1, Curves: pqCurves},
	"ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09": {MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, CipherSuites: tls13Ext2, Curves: pqCurves},
	"ELBSecurityPolicy-TLS13-1-3-PQ-2025-09":      {MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13, Curves: pqCurves},
}
