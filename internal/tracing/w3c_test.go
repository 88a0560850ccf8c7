package tracing

import (
	"strings"
	"testing"
)

const (
	clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpan  = "00f067aa0ba902b7"
	clientTP    = "00-" + clientTrace + "-" + clientSpan + "-01"
)

func TestParseTraceparent(t *testing.T) {
	tests := []struct {
		in    string
		ok    bool
		flags byte
	}{
		{clientTP, true, 0x01},
		{"00-" + clientTrace + "-" + clientSpan + "-00", true, 0x00},
		{"00-" + clientTrace + "-" + clientSpan + "-03", true, 0x03},
		{" \t" + clientTP + " ", true, 0x01}, // optional white space around the value
		// A later version: the first 55 characters as version 00, then '-' and more.
		{"01-" + clientTrace + "-" + clientSpan + "-01-what-comes-next", true, 0x01},
		{"01-" + clientTrace + "-" + clientSpan + "-01", true, 0x01},
		{"01-" + clientTrace + "-" + clientSpan + "-01x", false, 0},
		{"00-" + clientTrace + "-" + clientSpan + "-01-more", false, 0}, // version 00 is exactly 55
		{"ff-" + clientTrace + "-" + clientSpan + "-01", false, 0},
		{"00-" + strings.ToUpper(clientTrace) + "-" + clientSpan + "-01", false, 0},
		{"00-" + strings.Repeat("0", 32) + "-" + clientSpan + "-01", false, 0},
		{"00-" + clientTrace + "-0000000000000000-01", false, 0},
		{"00-" + clientTrace + "-" + clientSpan + "-0g", false, 0},
		{"00_" + clientTrace + "-" + clientSpan + "-01", false, 0},
		{"00-" + clientTrace[1:] + "-" + clientSpan + "0-01", false, 0},
		{"0x-" + clientTrace + "-" + clientSpan + "-01", false, 0},
		{"", false, 0},
		{"00-" + clientTrace, false, 0},
	}
	for _, tt := range tests {
		p, ok := parseTraceparent(tt.in)
		if ok != tt.ok {
			t.Errorf("parseTraceparent(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			continue
		}
		if ok && (p.traceID != clientTrace || p.spanID != clientSpan || p.flags != tt.flags) {
			t.Errorf("parseTraceparent(%q) = %+v, want %s %s %02x", tt.in, p, clientTrace, clientSpan, tt.flags)
		}
	}
}

func TestFormatTraceparentRoundTrips(t *testing.T) {
	tp := formatTraceparent(clientTrace, [8]byte{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31}, 0x03)
	if want := "00-" + clientTrace + "-b7ad6b7169203331-03"; tp != want {
		t.Fatalf("formatTraceparent = %q, want %q", tp, want)
	}
	if _, ok := parseTraceparent(tp); !ok {
		t.Errorf("parseTraceparent rejects formatTraceparent's %q", tp)
	}
	for range 100 {
		tp := newTraceparent()
		if p, ok := parseTraceparent(tp); !ok || p.flags != flagSampled|flagRandom {
			t.Fatalf("newTraceparent = %q: not a valid, sampled traceparent", tp)
		}
	}
}

func TestValidTracestate(t *testing.T) {
	many := func(n int) string {
		m := make([]string, n)
		for i := range m {
			m[i] = "k" + strings.Repeat("x", i) + "=v"
		}
		return strings.Join(m, ",")
	}
	tests := []struct {
		in string
		ok bool
	}{
		{"congo=t61rcWkgMzE", true},
		{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", true},
		{"rojo=00f067aa0ba902b7 ,\t, congo=t61rcWkgMzE", true}, // empty members are allowed
		{"tenant1@vendor=value", true},
		{"0tenant@vendor=x", true},
		{"k_-*/9=a b!~", true},
		{many(32), true},
		{"", true},
		{many(33), false},
		{"rojo=1,rojo=2", false},
		{"Rojo=1", false},
		{"9rojo=1", false},
		{"rojo", false},
		{"rojo=", false},
		{"rojo=a=b", false},
		{"rojo=trailing ", true}, // the space is white space around the member
		{"rojo=tab\tinside", false},
		{"tenant@9vendor=x", false},
		{"tenant@vendorvendorvendor=x", false},
		{"@vendor=x", false},
		{"k=" + strings.Repeat("v", 257), false},
	}
	for _, tt := range tests {
		if got := validTracestate(tt.in); got != tt.ok {
			t.Errorf("validTracestate(%q) = %v, want %v", tt.in, got, tt.ok)
		}
	}
}
