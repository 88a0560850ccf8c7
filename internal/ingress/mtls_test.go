package ingress

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckTrustStore: a trust store is one or more PEM CA certificates and nothing else;
// every other file is refused with a message that says what is wrong with it.
func TestCheckTrustStore(t *testing.T) {
	ca, err := os.ReadFile(filepath.Join("testdata", "client-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pair := selfSignedPEM() // a server certificate, not a CA, and its key
	for _, c := range []struct {
		name string
		data string
		want string // "" = accepted
	}{
		{"one CA", string(ca), ""},
		{"bundle of two with text between", "# clients\n" + string(ca) + "subject=...\n" + string(ca), ""},
		{"empty", "", "no PEM CERTIFICATE block found"},
		{"not PEM", "hello", "no PEM CERTIFICATE block found"},
		{"a key", string(pair.key), `PEM block 1 is "PRIVATE KEY"`},
		{"CA then key", string(ca) + string(pair.key), `PEM block 2 is "PRIVATE KEY"`},
		{"server certificate", string(pair.cert), "is not a CA certificate"},
	} {
		err := checkTrustStore([]byte(c.data))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}
