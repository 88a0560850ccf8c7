//go:build linux

package procmem

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestReleaseStartupPages releases the test binary's pages and checks what a user
// would see in top: a smaller file-backed resident set, and a process that keeps
// running the code it just gave back.
func TestReleaseStartupPages(t *testing.T) {
	before, after, err := ReleaseStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	if before.File <= 0 || after.File >= before.File {
		t.Fatalf("file-backed resident set %d KiB before, %d KiB after: want it smaller", before.File>>10, after.File>>10)
	}
	t.Logf("file-backed resident set %d KiB -> %d KiB, anonymous %d KiB -> %d KiB", before.File>>10, after.File>>10, before.Anon>>10, after.Anon>>10)
	// Code runs again from the released pages (this test goes on), and the data the
	// process wrote at start is intact: writable mappings are left alone.
	if got := string(written[:]); got != "kept" {
		t.Fatalf("package data lost: %q", got)
	}
}

// written is in the executable's data, changed at start: a private copy of the page.
var written = [4]byte{'i', 'n', 'i', 't'}

func init() { copy(written[:], "kept") }

// TestReleaseStartupPagesPIE: the same, in a position-independent build, whose
// relocated read-only data the dynamic loader wrote at start. Dropping those pages
// brought back the file's unrelocated bytes, and the test binary crashed at its next
// use of them.
func TestReleaseStartupPagesPIE(t *testing.T) {
	if testing.Short() {
		t.Skip("builds this package's tests again")
	}
	bin := filepath.Join(t.TempDir(), "procmem.test")
	if out, err := exec.Command("go", "test", "-c", "-buildmode=pie", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go test -c -buildmode=pie: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "-test.run", "^TestReleaseStartupPages$", "-test.v").CombinedOutput(); err != nil {
		t.Fatalf("TestReleaseStartupPages in a PIE build: %v\n%s", err, out)
	}
}

// TestDroppable: of the executable's mappings, the read-only ones with no page of the
// process's own; the RELRO mapping of a PIE build (Anonymous pages: the dynamic loader
// relocated them) and the writable data are left alone.
func TestDroppable(t *testing.T) {
	const exe = "/usr/bin/milvus-lb"
	smaps := `558b9eb54000-558b9ec97000 r-xp 00000000 fe:00 9978946   /usr/bin/milvus-lb
Rss:                1228 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
558b9ec97000-558b9ee12000 r--p 00143000 fe:00 9978946   /usr/bin/milvus-lb
Rss:                1516 kB
Anonymous:             0 kB
558b9ee12000-558b9ee5e000 r--p 002be000 fe:00 9978946   /usr/bin/milvus-lb
Rss:                 304 kB
Anonymous:           268 kB
558b9ee5e000-558b9ee83000 rw-p 0030a000 fe:00 9978946   /usr/bin/milvus-lb
Anonymous:             0 kB
7f0000000000-7f0000001000 r--p 00000000 fe:00 1   /usr/lib/libc.so.6
Anonymous:             0 kB
7f0000002000-7f0000003000 r--p 00000000 fe:00 9978946   /usr/bin/milvus-lb
Rss:                   4 kB
`
	got := droppable([]byte(smaps), exe)
	want := [][2]uintptr{{0x558b9eb54000, 0x558b9ec97000}, {0x558b9ec97000, 0x558b9ee12000}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("droppable: %x, want %x (the last mapping says nothing of its pages: kept)", got, want)
	}
}

func TestReadOnlyMapping(t *testing.T) {
	const exe = "/usr/bin/milvus-lb"
	for _, c := range []struct {
		line string
		ok   bool
	}{
		{"00400000-01f59000 r-xp 00000000 fe:00 9978946   /usr/bin/milvus-lb", true},
		{"01f59000-0419d000 r--p 01b59000 fe:00 9978946   /usr/bin/milvus-lb", true},
		{"0419d000-0425d000 rw-p 03d9d000 fe:00 9978946   /usr/bin/milvus-lb", false},
		{"7f0000000000-7f0000001000 r--p 00000000 fe:00 1   /usr/lib/libc.so.6", false},
		{"00400000-01f59000 r-xs 00000000 fe:00 9978946   /usr/bin/milvus-lb", false},
		{"00400000-01f59000 r-xp 00000000 fe:00 9978946   /usr/bin/milvus-lb (deleted)", false},
		{"c000000000-c000400000 rw-p 00000000 00:00 0", false},
	} {
		if _, _, ok := readOnlyMapping(c.line, exe); ok != c.ok {
			t.Errorf("%q: %v, want %v", c.line, ok, c.ok)
		}
	}
}

// TestTrimGivesBackABurst: once a burst's memory is garbage, a quiet tick gives it back
// to the system at once: the resident set top shows drops by about the burst.
func TestTrimGivesBackABurst(t *testing.T) {
	burst := make([][]byte, 96)
	for i := range burst {
		burst[i] = make([]byte, 1<<20)
		for j := 0; j < len(burst[i]); j += 4096 {
			burst[i][j] = 1 // resident
		}
	}
	burst = nil
	runtime.GC() // the burst is free heap now, still resident
	before, err := ReadResident()
	if err != nil {
		t.Fatal(err)
	}
	if !newTrimmer().tick(time.Now(), true) {
		t.Fatal("a quiet tick after the burst did not trim")
	}
	after, _ := ReadResident()
	t.Logf("anonymous resident set %d MiB -> %d MiB", before.Anon>>20, after.Anon>>20)
	if before.Anon-after.Anon < 64<<20 {
		t.Fatalf("anonymous resident set %d MiB -> %d MiB: want it about 96 MiB smaller", before.Anon>>20, after.Anon>>20)
	}
}
