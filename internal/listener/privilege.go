package listener

import (
	"fmt"
	"os"
)

// PortPermission says whether this process may bind port, and if not, why and how to
// allow it. Ports below 1024 are privileged on Linux unless the process has
// CAP_NET_BIND_SERVICE or net.ipv4.ip_unprivileged_port_start is lowered (containers
// often set it to 0), see capabilities(7) and ip(7). It looks at the process, not at
// the port: a port that is free but privileged is refused, a port already taken is not
// its business (binding reports that).
func PortPermission(port int) error {
	start := unprivilegedPortStart()
	if port >= start || hasNetBindService() {
		return nil
	}
	bin, err := os.Executable()
	if err != nil {
		bin = "milvus-lb"
	}
	return fmt.Errorf("port %d is below %d and this process may not bind it (it lacks CAP_NET_BIND_SERVICE): "+
		"run it as root, grant the capability with `sudo setcap cap_net_bind_service=+ep %s`, "+
		"or listen on port %d or above", port, start, bin, start)
}
