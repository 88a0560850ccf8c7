package listener

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// capNetBindService is CAP_NET_BIND_SERVICE's bit in the capability sets
// (linux/capability.h).
const capNetBindService = 10

// unprivilegedPortStart reads net.ipv4.ip_unprivileged_port_start of this network
// namespace (it applies to IPv6 too); kernels before 4.11 lack it and use 1024.
func unprivilegedPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

// hasNetBindService reports whether CAP_NET_BIND_SERVICE is in this process's effective
// set (the CapEff line of /proc/self/status, see proc(5)). Unreadable means no.
func hasNetBindService() bool {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<capNetBindService) != 0
		}
	}
	return false
}
