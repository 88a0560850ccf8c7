package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every kind of run rewrites its own part of docs/benchmarks.md: the markers it looks
// for are there, once each.
func TestSectionsAreInTheBenchmarksPage(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []section{resultsSection, chaosSection, liteSection, mirrorSection, mixedSection} {
		for _, m := range []string{s.begin(), s.end()} {
			if n := strings.Count(string(doc), m); n != 1 {
				t.Errorf("docs/benchmarks.md has %q %d times; want once", m, n)
			}
		}
	}
}

// A run's figures are written whatever the file: into a new file, at the end of one
// without the section (under its title), and in place of the section's last figures,
// the text around it left as it was.
func TestSectionWrite(t *testing.T) {
	out := filepath.Join(t.TempDir(), "new", "bench.md")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if err := mixedSection.write(out, "first\n"); err != nil {
		t.Fatal(err)
	}
	if got := read(); !strings.HasPrefix(got, "# Benchmarks\n\n## "+mixedSection.title+"\n\n"+mixedSection.begin()+"\nfirst\n"+mixedSection.end()) {
		t.Errorf("a new file reads %q", got)
	}
	if err := os.WriteFile(out, []byte(read()+"\nNotes kept.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chaosSection.write(out, "faults\n"); err != nil {
		t.Fatal(err)
	}
	if err := mixedSection.write(out, "second\n"); err != nil {
		t.Fatal(err)
	}
	got := read()
	for _, want := range []string{"second\n", "Notes kept.\n", "## " + chaosSection.title + "\n\n" + chaosSection.begin() + "\nfaults\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("after three writes the file lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "first") || strings.Count(got, mixedSection.begin()) != 1 {
		t.Errorf("the second write did not replace the first:\n%s", got)
	}
	if err := mixedSection.write("", "nothing"); err != nil {
		t.Errorf("writing to no file: %v", err)
	}
}
