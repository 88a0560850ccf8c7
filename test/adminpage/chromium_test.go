package adminpage

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// chromium runs Debian's chromium headless on url with extra flags and returns what it
// printed on standard output. A fresh profile each time; nothing but url is fetched.
func chromium(t *testing.T, url string, flags ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: run scripts/setup.sh (it installs Debian's chromium)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--hide-scrollbars"}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(flags, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// loadPage loads url and returns the document after its scripts have run for a few
// seconds of virtual time (enough for the first fetch of /api/v1/live and a refresh).
func loadPage(t *testing.T, url string) *node {
	t.Helper()
	out := chromium(t, url, "--window-size=1360,1800", "--virtual-time-budget=5000", "--dump-dom")
	doc, err := html.Parse(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("chromium's DOM does not parse: %v", err)
	}
	return &node{doc}
}

// screenshot writes a PNG of url, once its data has come in, to path: the whole page,
// for the README.
func screenshot(t *testing.T, url, path string) {
	t.Helper()
	chromium(t, url, "--window-size=1360,1960", "--virtual-time-budget=5000", "--screenshot="+path)
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", path, err)
	}
	t.Logf("screenshot written to %s", path)
}

// node is an element of the dumped DOM, with the lookups the test needs.
type node struct{ n *html.Node }

// attr matches elements whose attribute key has value (any value when value is "").
func attr(key, value string) func(*html.Node) bool {
	return func(n *html.Node) bool {
		for _, a := range n.Attr {
			if a.Key == key && (value == "" || a.Val == value) {
				return true
			}
		}
		return false
	}
}

func (x *node) findAll(match func(*html.Node) bool) []*node {
	var out []*node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, &node{n})
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	if x != nil {
		walk(x.n)
	}
	return out
}

// find returns the first match, or nil; the methods of a nil node return "" and nil.
func (x *node) find(match func(*html.Node) bool) *node {
	if all := x.findAll(match); len(all) > 0 {
		return all[0]
	}
	return nil
}

func (x *node) attr(key string) string {
	if x == nil {
		return ""
	}
	for _, a := range x.n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// text is the element's text with runs of white space made one space.
func (x *node) text() string {
	if x == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(x.n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// hasAttr reports whether the element has the attribute key, whatever its value (hidden="").
func hasAttr(x *node, key string) bool {
	if x == nil {
		return false
	}
	for _, a := range x.n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}
