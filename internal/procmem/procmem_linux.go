package procmem

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ReleaseStartupPages drops the executable's read-only pages (code, read-only data, the
// function tables) from the process's page tables (madvise MADV_DONTNEED), so that its
// resident set counts only the pages used after that. They stay in the page cache,
// where the kernel keeps or evicts them as for any file: the ones used again are mapped
// again on their next access (a minor fault while they are cached, a read of the file
// if the kernel evicted them). Nothing is lost, because only mappings whose pages are
// all clean copies of the file are touched (droppable): writable ones (the executable's
// data, which the process changed) and read-only ones with pages of the process's own
// are left alone. It returns the resident set before and after.
func ReleaseStartupPages() (before, after Resident, err error) {
	before, err = ReadResident()
	if err != nil {
		return before, before, err
	}
	ranges, err := exeRanges()
	if err != nil {
		return before, before, err
	}
	for _, m := range ranges {
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, m[0], m[1]-m[0], syscall.MADV_DONTNEED); e != 0 && err == nil {
			err = e
		}
	}
	after, rerr := ReadResident()
	if err == nil {
		err = rerr
	}
	return before, after, err
}

// exeMaps holds droppable's mappings, read once by exeRanges: the executable's
// mappings do not change after the start, and smaps costs the kernel a walk of every
// mapping's pages (1.4 ms with a 100 MiB heap, where maps costs 33 µs), which the drop
// every 10 s would pay.
var exeMaps struct {
	sync.Mutex
	ranges [][2]uintptr
	read   bool
}

func exeRanges() ([][2]uintptr, error) {
	exeMaps.Lock()
	defer exeMaps.Unlock()
	if exeMaps.read {
		return exeMaps.ranges, nil
	}
	path, err := os.Executable()
	if err != nil {
		return nil, err
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	exeMaps.ranges, exeMaps.read = droppable(smaps, path), true
	return exeMaps.ranges, nil
}

// droppable lists, from /proc/self/smaps, the mappings of the file exe whose pages are
// all clean copies of it: private, not writable (readOnlyMapping), and with no page of
// the process's own ("Anonymous: 0 kB"). A position-independent build (-buildmode=pie,
// as some distributions build Go programs) has its relocated read-only data (RELRO)
// written by the dynamic loader at start and then made read-only: those pages are the
// process's own, and dropping them would bring back the file's bytes, unrelocated (the
// process then crashes on its next use of a pointer there).
func droppable(smaps []byte, exe string) [][2]uintptr {
	var out [][2]uintptr
	var lo, hi uintptr
	ok, clean := false, false
	flush := func() {
		if ok && clean {
			out = append(out, [2]uintptr{lo, hi})
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Text()
		key, v, isField := strings.Cut(line, ":")
		if !isField || strings.ContainsAny(key, " -") { // a mapping's first line
			flush()
			lo, hi, ok = readOnlyMapping(line, exe)
			clean = false
			continue
		}
		if ok && key == "Anonymous" {
			clean = strings.TrimSpace(v) == "0 kB"
		}
	}
	flush()
	return out
}

// readOnlyMapping parses one line of /proc/self/maps and says whether it maps part of
// the file exe privately and without write permission.
// Example: "00400000-01f59000 r-xp 00000000 fe:00 9978946   /usr/bin/milvus-lb".
func readOnlyMapping(line, exe string) (lo, hi uintptr, ok bool) {
	f := strings.Fields(line)
	if len(f) != 6 || f[5] != exe || len(f[1]) != 4 || f[1][0] != 'r' || f[1][1] != '-' || f[1][3] != 'p' {
		return 0, 0, false
	}
	a, b, found := strings.Cut(f[0], "-")
	l, err1 := strconv.ParseUint(a, 16, 64)
	h, err2 := strconv.ParseUint(b, 16, 64)
	if !found || err1 != nil || err2 != nil || h <= l {
		return 0, 0, false
	}
	return uintptr(l), uintptr(h), true
}

// ReadResident reads the process's resident set from /proc/self/status.
func ReadResident() (Resident, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return Resident{}, err
	}
	var r Resident
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "RssAnon":
			r.Anon = kb << 10
		case "RssFile":
			r.File = kb << 10
		}
	}
	return r, nil
}
