package milvus

import (
	"encoding/base64"
	"strings"
	"testing"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func containsColon(s string) bool { return strings.Contains(s, ":") }

func TestUserName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// pymilvus and the Go SDK: the bare base64 of user:password.
		{b64("root:Milvus"), "root"},
		{b64("alice:pa:ss:word"), "alice"},
		{base64.RawStdEncoding.EncodeToString([]byte("bob:x")), "bob"},
		{"Basic " + b64("carol:secret"), "carol"},
		// REST: Bearer user:password, not encoded.
		{"Bearer dave:secret", "dave"},
		// API keys and tokens name no user.
		{b64("6f1c0e9a4b3d2c1e0f9a8b7c6d5e4f3a"), ""},
		{"Bearer 6f1c0e9a4b3d2c1e0f9a8b7c6d5e4f3a", ""},
		{"", ""},
		{"not base64!", ""},
		{b64(":nouser"), ""},
		{b64("\xff\xfe:x"), ""},
	} {
		if got := UserName(c.in); got != c.want {
			t.Errorf("UserName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestResolveDB(t *testing.T) {
	for _, c := range [][3]string{{"db1", "db2", "db1"}, {"", "db2", "db2"}, {"", "", "default"}} {
		if got := ResolveDB(c[0], c[1]); got != c[2] {
			t.Errorf("ResolveDB(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}
