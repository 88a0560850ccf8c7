package ingress

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

func TestSSLPoliciesKnown(t *testing.T) {
	names := SSLPolicies()
	for _, want := range []string{
		DefaultSSLPolicy,
		"ELBSecurityPolicy-TLS-1-2-2017-01",
		"ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
		"ELBSecurityPolicy-FS-1-2-Res-2020-10",
		"ELBSecurityPolicy-TLS13-1-2-2021-06",
		"ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
		"ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
		"ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
		"ELBSecurityPolicy-TLS13-1-3-2021-06",
		"ELBSecurityPolicy-TLS13-1-0-2021-06",
		"ELBSecurityPolicy-TLS13-1-1-2021-06",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("SSLPolicies() lacks %s", want)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("SSLPolicies() is not sorted")
	}

	// Every suite must be one crypto/tls implements, or the listener would fail to start.
	implemented := map[config.CipherSuite]bool{}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		implemented[config.CipherSuite(s.ID)] = true
	}
	for _, n := range names {
		p, ok := LookupSSLPolicy(n)
		if !ok || p.Name != n {
			t.Fatalf("LookupSSLPolicy(%q) = %+v, %v", n, p, ok)
		}
		if p.MinVersion > p.MaxVersion || p.MinVersion < tls.VersionTLS10 {
			t.Errorf("%s: bad version range %x-%x", n, p.MinVersion, p.MaxVersion)
		}
		if p.MinVersion < tls.VersionTLS13 && len(p.CipherSuites) == 0 {
			t.Errorf("%s allows TLS 1.2 or older but lists no cipher suite", n)
		}
		for _, id := range p.CipherSuites {
			if !implemented[id] {
				t.Errorf("%s: cipher suite %#04x is not implemented by crypto/tls", n, id)
			}
		}
	}

	// Lookups return copies: a caller cannot change the table.
	p, _ := LookupSSLPolicy(DefaultSSLPolicy)
	p.CipherSuites[0] = 0
	if q, _ := LookupSSLPolicy(DefaultSSLPolicy); q.CipherSuites[0] == 0 {
		t.Errorf("LookupSSLPolicy returned the table's own slice")
	}
	if _, ok := LookupSSLPolicy("ELBSecurityPolicy-Nope"); ok {
		t.Errorf("unknown policy found")
	}
}

// TestSSLPolicyHandshake serves TLS on loopback with a policy applied and checks what a
// client of a given capability gets, which is what choosing a policy is for.
func TestSSLPolicyHandshake(t *testing.T) {
	cert := selfSigned(t, "milvus-demo.milvus.io")
	tests := []struct {
		policy string
		client *tls.Config
		ok     bool
		want   uint16 // negotiated version when ok
	}{
		// The default still lets a TLS 1.0 client in, as on the ALB.
		{DefaultSSLPolicy, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, true, tls.VersionTLS10},
		{DefaultSSLPolicy, &tls.Config{}, true, tls.VersionTLS12},
		{"ELBSecurityPolicy-TLS13-1-2-2021-06", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false, 0},
		{"ELBSecurityPolicy-TLS13-1-2-2021-06", &tls.Config{}, true, tls.VersionTLS13},
		{"ELBSecurityPolicy-TLS13-1-3-2021-06", &tls.Config{MaxVersion: tls.VersionTLS12}, false, 0},
		// A CBC-SHA1-only TLS 1.2 client: allowed by 2016-08, refused by the restricted
		// forward-secrecy policy.
		{DefaultSSLPolicy, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, true, tls.VersionTLS12},
		{"ELBSecurityPolicy-FS-1-2-Res-2020-10", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, false, 0},
	}
	for _, tc := range tests {
		p, ok := LookupSSLPolicy(tc.policy)
		if !ok {
			t.Fatalf("unknown policy %s", tc.policy)
		}
		srv := &tls.Config{Certificates: []tls.Certificate{cert}}
		p.Apply(srv)
		client := tc.client.Clone()
		client.InsecureSkipVerify = true // the test is about versions and suites
		version, err := handshake(t, srv, client)
		if tc.ok && (err != nil || version != tc.want) {
			t.Errorf("%s: client %x-%x: version %x, err %v; want %x", tc.policy, tc.client.MinVersion, tc.client.MaxVersion, version, err, tc.want)
		}
		if !tc.ok && err == nil {
			t.Errorf("%s: client %x-%x suites %v connected with %x; want refused", tc.policy, tc.client.MinVersion, tc.client.MaxVersion, tc.client.CipherSuites, version)
		}
	}
}

func handshake(t *testing.T, srv, client *tls.Config) (uint16, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_ = c.(*tls.Conn).Handshake()
	}()
	defer func() { <-done }()

	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), client)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.ConnectionState().Version, nil
}

func selfSigned(t *testing.T, host string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

type pemPair struct{ cert, key []byte }

func selfSignedPEM() pemPair {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "demo.example.com"},
		DNSNames:     []string{"demo.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	return pemPair{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
	}
}
