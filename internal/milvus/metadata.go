package milvus

import (
	"bytes"
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// Metadata keys a call's record reads (gRPC metadata are HTTP/2 headers, lower case).
const (
	// AuthorizationKey carries the credentials: pymilvus and the Go SDK send the bare
	// base64 of "user:password" (or of an API key); REST clients send "Bearer user:password".
	AuthorizationKey = "authorization"
	// DBNameKey names the database when the request's db_name field does not.
	DBNameKey = "dbname"
	// RequestIDKey and RequestIDKeyAlt carry a client's request id: pymilvus sends
	// client-request-id; Milvus's own access log reads client_request_id.
	RequestIDKey    = "client-request-id"
	RequestIDKeyAlt = "client_request_id"
)

// DefaultDB is the database of a call that names none.
const DefaultDB = "default"

// ResolveDB is the database a call uses, resolved as Milvus resolves it: the request's
// db_name field, else the dbname metadata, else "default".
func ResolveDB(field, metadata string) string {
	switch {
	case field != "":
		return field
	case metadata != "":
		return metadata
	}
	return DefaultDB
}

// maxUser bounds the user names read (Milvus allows 32 characters by default).
const maxUser = 256

// UserName is the user name in an authorization value, without the password: "" when
// there is none (no value, an API key, or not decodable). The password is never copied
// out of a stack buffer, which is cleared.
func UserName(authorization string) string {
	v := authorization
	if len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") {
		user, _, ok := strings.Cut(v[7:], ":")
		if !ok || len(user) > maxUser || !utf8.ValidString(user) {
			return ""
		}
		return strings.Clone(user)
	}
	if len(v) > 6 && strings.EqualFold(v[:6], "Basic ") {
		v = v[6:]
	}
	return userFromBase64(v)
}

// userFromBase64 decodes four characters at a time until the colon after the user name;
// the rest (the password) is never decoded.
func userFromBase64(v string) string {
	var buf [maxUser + 3]byte
	defer clear(buf[:])
	n := 0
	for i := 0; i < len(v) && n < maxUser; i += 4 {
		group := v[i:min(i+4, len(v))]
		enc := base64.StdEncoding
		if len(group) < 4 {
			enc = base64.RawStdEncoding // an unpadded last group
		}
		k, err := enc.Decode(buf[n:], []byte(group))
		if err != nil {
			return ""
		}
		if j := bytes.IndexByte(buf[n:n+k], ':'); j >= 0 {
			user := buf[:n+j]
			if !utf8.Valid(user) {
				return ""
			}
			return string(user)
		}
		n += k
	}
	return ""
}
