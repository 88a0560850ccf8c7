// Command testreport reads `go test -json` on stdin and prints what a person wants from a
// long run: one line per package as `go test` prints it, the full output of every failed
// test (and only of those), the names of skipped tests with their reason, and a closing
// line "tests: N passed, N failed, N skipped". It exits 1 if any test or package failed
// or did not build, 0 otherwise. scripts/test.sh pipes the main module's tests through it.
//
//	go test -json ./... | go run ./test/testreport
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	Elapsed     float64
	ImportPath  string // build-output and build-fail events
	FailedBuild string
}

type key struct{ pkg, test string }

type report struct {
	out                     io.Writer
	output                  map[key]*strings.Builder // buffered until the test ends
	passed, failed, skipped int
	failedPkgs              []string
	failedPkg               map[string]bool
	skips                   []string
}

func main() {
	r := &report{out: os.Stdout, output: map[key]*strings.Builder{}, failedPkg: map[string]bool{}}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not JSON: go vet or linker messages printed before the stream.
			fmt.Fprintf(r.out, "%s\n", line)
			continue
		}
		r.handle(e)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(r.out, "testreport: reading go test output: %v\n", err)
		r.failed++
	}
	os.Exit(r.finish())
}

func (r *report) handle(e event) {
	switch e.Action {
	case "build-output":
		fmt.Fprint(r.out, e.Output)
		return
	case "build-fail":
		// ImportPath names the test binary's build ("p [p.test]"); the package's own fail
		// event that follows says just "p".
		pkg, _, _ := strings.Cut(e.ImportPath, " ")
		r.failPackage(pkg, "build failed")
		return
	}
	k := key{e.Package, e.Test}
	switch e.Action {
	case "output":
		b := r.output[k]
		if b == nil {
			b = &strings.Builder{}
			r.output[k] = b
		}
		b.WriteString(e.Output)
	case "pass", "fail", "skip":
		out := r.output[k]
		delete(r.output, k)
		if e.Test == "" {
			r.endPackage(e, out)
			return
		}
		switch e.Action {
		case "pass":
			r.passed++
		case "skip":
			r.skipped++
			r.skips = append(r.skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, skipReason(out)))
		case "fail":
			r.failed++
			// The test's own output ends with go's "--- FAIL: Name (time)" line.
			if out != nil {
				fmt.Fprint(r.out, withoutProgress(out.String()))
			}
		}
	}
}

// endPackage prints the package's line as plain `go test` does, plus its own output when it
// failed outside any test (a panic in TestMain, a build error, a -timeout).
func (r *report) endPackage(e event, out *strings.Builder) {
	switch e.Action {
	case "pass":
		fmt.Fprintf(r.out, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
	case "skip":
		fmt.Fprintf(r.out, "?   \t%s\t[no test files]\n", e.Package)
	case "fail":
		r.failPackage(e.Package, "")
		// The package's output holds go's own FAIL lines; print them as they are.
		if out != nil {
			fmt.Fprint(r.out, out.String())
		} else {
			fmt.Fprintf(r.out, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
		}
	}
}

// failPackage records a failed package once; a build failure is reported twice by go test
// (build-fail, then the package's fail), and the first reason is kept.
func (r *report) failPackage(pkg, reason string) {
	if r.failedPkg[pkg] {
		return
	}
	r.failedPkg[pkg] = true
	if reason != "" {
		pkg += " (" + reason + ")"
	}
	r.failedPkgs = append(r.failedPkgs, pkg)
}

func (r *report) finish() int {
	// Output of tests that never ended: the binary was killed (timeout, crash).
	for k, b := range r.output {
		if k.test != "" && b.Len() > 0 {
			fmt.Fprintf(r.out, "--- unfinished: %s %s\n%s", k.pkg, k.test, withoutProgress(b.String()))
		}
	}
	if len(r.skips) > 0 {
		fmt.Fprintf(r.out, "\nskipped tests:\n")
		for _, s := range r.skips {
			fmt.Fprintf(r.out, "  %s\n", s)
		}
	}
	if len(r.failedPkgs) > 0 {
		fmt.Fprintf(r.out, "\nfailed packages:\n")
		for _, p := range r.failedPkgs {
			fmt.Fprintf(r.out, "  %s\n", p)
		}
	}
	fmt.Fprintf(r.out, "\ntests: %d passed, %d failed, %d skipped\n", r.passed, r.failed, r.skipped)
	if r.failed > 0 || len(r.failedPkgs) > 0 {
		return 1
	}
	return 0
}

// skipReason is the message given to t.Skip: the last output line before "--- SKIP".
func skipReason(out *strings.Builder) string {
	if out == nil {
		return "(no reason given)"
	}
	var reason string
	for line := range strings.Lines(out.String()) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "=== ") || strings.HasPrefix(line, "--- SKIP") {
			continue
		}
		reason = line
	}
	if reason == "" {
		return "(no reason given)"
	}
	return reason
}

// withoutProgress drops go test's "=== RUN/PAUSE/CONT/NAME" lines: noise in a failure
// report, since only this test's output is shown.
func withoutProgress(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.HasPrefix(strings.TrimLeft(line, " "), "=== ") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
