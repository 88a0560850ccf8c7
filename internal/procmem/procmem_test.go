//go:build linux

package procmem

import (
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
