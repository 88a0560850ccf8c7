package config

import (
	"crypto/tls"
	"fmt"
)

// TLSPolicy is what an HTTPS listener offers in a handshake: protocol versions, cipher
// suites and key exchanges. Translation resolves it from the listener's ssl-policy, so
// that whatever serves the model needs no table of policy names. The zero TLSPolicy
// means crypto/tls's defaults.
type TLSPolicy struct {
	// Name is the ssl-policy this was resolved from, for status pages; nothing looks it up.
	Name       string     `json:"name,omitempty"`
	MinVersion TLSVersion `json:"minVersion,omitempty"`
	MaxVersion TLSVersion `json:"maxVersion,omitempty"`
	// CipherSuites are those of TLS 1.0-1.2, in order of preference. TLS 1.3's are fixed
	// by crypto/tls.
	CipherSuites []CipherSuite `json:"cipherSuites,omitempty"`
	Curves       []Curve       `json:"curves,omitempty"`
}

// Apply sets c's version range, cipher suites and curves to p's.
func (p TLSPolicy) Apply(c *tls.Config) {
	c.MinVersion, c.MaxVersion = uint16(p.MinVersion), uint16(p.MaxVersion)
	c.CipherSuites, c.CurvePreferences = nil, nil
	for _, s := range p.CipherSuites {
		c.CipherSuites = append(c.CipherSuites, uint16(s))
	}
	for _, k := range p.Curves {
		c.CurvePreferences = append(c.CurvePreferences, tls.CurveID(k))
	}
}

// TLSVersion is a crypto/tls version number; it reads "TLS 1.2" in JSON.
type TLSVersion uint16

func (v TLSVersion) MarshalText() ([]byte, error) { return []byte(tls.VersionName(uint16(v))), nil }

// CipherSuite is a crypto/tls cipher suite ID; it reads as its IANA name in JSON.
type CipherSuite uint16

func (s CipherSuite) MarshalText() ([]byte, error) {
	return []byte(tls.CipherSuiteName(uint16(s))), nil
}

// Curve is a crypto/tls key exchange group; it reads as its name ("X25519") in JSON.
type Curve tls.CurveID

func (k Curve) MarshalText() ([]byte, error) {
	return []byte(fmt.Sprint(tls.CurveID(k))), nil
}
