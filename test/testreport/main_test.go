package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// run feeds a `go test -json` stream through the report and returns what it printed and its
// exit status.
func run(t *testing.T, stream string) (string, int) {
	t.Helper()
	var out strings.Builder
	r := &report{out: &out, output: map[key]*strings.Builder{}, failedPkg: map[string]bool{}}
	for _, e := range parse(t, stream) {
		r.handle(e)
	}
	code := r.finish()
	return out.String(), code
}

func parse(t *testing.T, stream string) []event {
	t.Helper()
	var events []event
	for line := range strings.Lines(strings.TrimSpace(stream)) {
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("bad test stream line %q: %v", line, err)
		}
		events = append(events, e)
	}
	return events
}

func TestAllPass(t *testing.T) {
	out, code := run(t, `
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0}
{"Action":"skip","Package":"q","Test":"TestB"}
{"Action":"pass","Package":"p","Elapsed":0.5}
{"Action":"skip","Package":"r","Elapsed":0}
`)
	if code != 0 {
		t.Errorf("exit %d for a passing run, want 0", code)
	}
	for _, want := range []string{"ok  \tp\t0.500s\n", "?   \tr\t[no test files]\n", "tests: 1 passed, 0 failed, 1 skipped\n", "q TestB: (no reason given)"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "=== RUN") || strings.Contains(out, "--- PASS") {
		t.Errorf("report shows passing tests' output:\n%s", out)
	}
}

func TestFailureShowsOutputAndFails(t *testing.T) {
	out, code := run(t, `
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:9: boom\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- FAIL: TestA (0.00s)\n"}
{"Action":"fail","Package":"p","Test":"TestA","Elapsed":0}
{"Action":"output","Package":"p","Output":"FAIL\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}
{"Action":"fail","Package":"p","Elapsed":0.1}
`)
	if code != 1 {
		t.Errorf("exit %d for a failing run, want 1", code)
	}
	for _, want := range []string{"a_test.go:9: boom", "--- FAIL: TestA", "FAIL\tp\t0.1s", "tests: 0 passed, 1 failed, 0 skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "FAIL\tp\t"); n != 1 {
		t.Errorf("package FAIL line printed %d times, want once:\n%s", n, out)
	}
}

// A package that does not build has no failed test, and must still fail the run.
func TestBuildFailureFails(t *testing.T) {
	out, code := run(t, `
{"ImportPath":"p [p.test]","Action":"build-output","Output":"p/x.go:1:1: undefined: y\n"}
{"ImportPath":"p [p.test]","Action":"build-fail"}
{"Action":"output","Package":"p","Output":"FAIL\tp [build failed]\n"}
{"Action":"fail","Package":"p","Elapsed":0,"FailedBuild":"p [p.test]"}
`)
	if code != 1 {
		t.Errorf("exit %d when a package does not build, want 1", code)
	}
	if !strings.Contains(out, "undefined: y") || !strings.Contains(out, "  p (build failed)") {
		t.Errorf("report does not show the build failure:\n%s", out)
	}
	if strings.Count(out, "\n  p") != 1 {
		t.Errorf("the failed package is listed more than once:\n%s", out)
	}
}
