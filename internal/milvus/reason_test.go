package milvus

import "testing"

func TestSafeReason(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// Milvus's own words stay whole.
		{"rate limit exceeded[rate=10]", "rate limit exceeded[rate=10]"},
		{"collection not found[database=default][collection=books]", "collection not found[database=default][collection=books]"},
		{"", ""},
		// milvus-lite's parser: the filter on the next line, a quoted character first.
		{"unexpected character '=' at column 8\n  note === \"secret\"\n         ^\ndid you mean '=='?", "unexpected character …"},
		{"line one\nnote == 5", "line one …"},
		// Milvus's planner: the filter after "expression:".
		{"failed to create query plan: cannot parse expression: email == x@y.z, error: invalid", "failed to create query plan: cannot parse expression: …"},
		{"invalid expr: a > 1", "invalid expr: …"},
		{"invalid parameter[expected=L2 or IP][actual=s3cret]", "invalid parameter[expected=L2 or IP][actual= …"},
		{`field "note" not exist`, "field …"},
		{"value `x` too long", "value …"},
	} {
		if got := SafeReason(c.in); got != c.want {
			t.Errorf("SafeReason(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
