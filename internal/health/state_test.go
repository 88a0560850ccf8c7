package health

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
)

func TestParseCodes(t *testing.T) {
	for _, tc := range []struct {
		in      string
		match   []int
		nomatch []int
		norm    string
		wantErr bool
	}{
		{in: "200", match: []int{200}, nomatch: []int{201, 0}, norm: "200"},
		{in: "200,202", match: []int{200, 202}, nomatch: []int{201}, norm: "200,202"},
		{in: "200-299", match: []int{200, 250, 299}, nomatch: []int{199, 300}, norm: "200-299"},
		{in: " 0 - 99 ", match: []int{0, 12, 99}, nomatch: []int{100}, norm: "0-99"},
		{in: "12", match: []int{12}, nomatch: []int{0, 14}, norm: "12"},
		{in: "0,12", match: []int{0, 12}, nomatch: []int{1}, norm: "0,12"},
		{in: "", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "200-", wantErr: true},
		{in: "299-200", wantErr: true},
		{in: "200,,202", wantErr: true},
		{in: "-1", wantErr: true},
	} {
		c, err := ParseCodes(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseCodes(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if tc.wantErr {
			continue
		}
		for _, n := range tc.match {
			if !c.Match(n) {
				t.Errorf("%q does not match %d", tc.in, n)
			}
		}
		for _, n := range tc.nomatch {
			if c.Match(n) {
				t.Errorf("%q matches %d", tc.in, n)
			}
		}
		if c.String() != tc.norm {
			t.Errorf("ParseCodes(%q).String() = %q, want %q", tc.in, c.String(), tc.norm)
		}
	}
	if (Codes{}).Match(0) {
		t.Errorf("zero Codes matches")
	}
}

// TestThresholds drives the state machine with a scripted series of results.
func TestThresholds(t *testing.T) {
	fail := errors.New("down")
	var logs bytes.Buffer
	reg := balancer.NewRegistry()
	ep, _ := reg.Get("10.0.0.1:19530")
	p := newProbe(spec{addr: ep.Addr, backend: "ns/svc:19530", hc: config.HealthCheck{
		Kind: config.CheckMilvus, HealthyThreshold: 3, UnhealthyThreshold: 2,
	}}, ep, slog.New(slog.NewTextHandler(&logs, nil)))

	steps := []struct {
		result error
		want   bool
	}{
		{nil, true},   // the first result decides at once
		{fail, true},  // 1 of 2 failures
		{nil, true},   // a pass resets the count
		{fail, true},  // 1 of 2
		{fail, false}, // 2 of 2: unhealthy
		{nil, false},  // 1 of 3 passes
		{nil, false},  // 2 of 3
		{fail, false}, // reset
		{nil, false},  // 1 of 3
		{nil, false},  // 2 of 3
		{nil, true},   // 3 of 3: healthy
	}
	for i, s := range steps {
		p.observe(s.result)
		if ep.Healthy() != s.want {
			t.Fatalf("step %d: healthy = %v, want %v", i, ep.Healthy(), s.want)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "endpoint healthy"); n != 2 {
		t.Errorf("%d healthy transitions logged, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "endpoint unhealthy") || !strings.Contains(out, "reason=down") || !strings.Contains(out, "address=10.0.0.1:19530") {
		t.Errorf("unhealthy transition not logged with address and reason:\n%s", out)
	}

	// A first failure also decides at once; a stopped probe writes nothing more.
	ep2, _ := reg.Get("10.0.0.2:19530")
	ep2.SetHealthy(true) // stale verdict from an earlier probe
	p2 := newProbe(spec{addr: ep2.Addr, hc: config.HealthCheck{Kind: config.CheckMilvus}}, ep2, slog.New(slog.DiscardHandler))
	p2.observe(fail)
	if ep2.Healthy() {
		t.Errorf("first failure did not decide")
	}
	p2.stop(false)
	p2.observe(nil)
	if ep2.Healthy() {
		t.Errorf("stopped probe changed its endpoint")
	}
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct{ addr, port, want string }{
		{"10.0.0.1:19530", "", "10.0.0.1:19530"},
		{"10.0.0.1:19530", "traffic-port", "10.0.0.1:19530"},
		{"10.0.0.1:19530", "9091", "10.0.0.1:9091"},
		{"[fd00::1]:19530", "9091", "[fd00::1]:9091"},
	} {
		s := spec{addr: tc.addr, hc: config.HealthCheck{Port: tc.port}}
		if got := s.target(); got != tc.want {
			t.Errorf("target(%s, %q) = %s, want %s", tc.addr, tc.port, got, tc.want)
		}
	}
}
