package handoff

import (
	"net"
	"os"
)

// notify sends state to the service manager when there is one: systemd's sd_notify
// protocol, a datagram to the socket named in NOTIFY_SOCKET (docs/operations.md has the
// unit: Type=notify, NotifyAccess=all). A successor sends READY=1 with MAINPID set to
// itself, so that systemd follows the service to the new process, and the old one,
// whose exit then is not the service's, may drain and exit. Best effort: a service
// manager that cannot be told is not a reason to stop serving.
func notify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}
