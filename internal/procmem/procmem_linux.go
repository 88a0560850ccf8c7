package procmem

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ReleaseStartupPages unmaps the executable's read-only pages (code, read-only data,
// the function tables) from the process, so that its resident set counts only the
// pages used after that. Nothing is lost: the pages are clean copies of the file, the
// ones used again are mapped again from the page cache on their next access (a minor
// fault), as after the kernel reclaims them under memory pressure. Writable mappings
// (the executable's data, which the process has changed) are left alone. It returns
// the resident set before and after.
func ReleaseStartupPages() (before, after Resident, err error) {
	before, err = ReadResident()
	if err != nil {
		return before, before, err
	}
	exe, err := os.Executable()
	if err != nil {
		return before, before, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return before, before, err
	}
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		lo, hi, ok := readOnlyMapping(sc.Text(), exe)
		if !ok {
			continue
		}
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, lo, hi-lo, syscall.MADV_DONTNEED); e != 0 && err == nil {
			err = e
		}
	}
	after, rerr := ReadResident()
	if err == nil {
		err = rerr
	}
	return before, after, err
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
