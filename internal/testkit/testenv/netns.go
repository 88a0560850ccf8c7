package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

const netnsEnv = "MILVUS_LB_TEST_NETNS"

// MainInNetns is Main for a test package that runs in a network namespace of its own
// (unshare --net, as root), where subnet (e.g. "10.200.0.1/24") is local on the loopback
// device: the API server refuses EndpointSlice addresses on 127.0.0.0/8, so such tests
// give their "pods" addresses there. Every socket stays inside the namespace and nothing
// listens on a real interface. The test binary re-runs itself, with the same flags,
// inside; what is the package's name for the error message without root.
func MainInNetns(m *testing.M, subnet, what string) {
	if os.Getenv(netnsEnv) == "" {
		os.Exit(inNetns(subnet, what))
	}
	Main(m)
}

func inNetns(subnet, what string) int {
	script := `set -e; ip link set lo up; ip addr add ` + subnet + ` dev lo; exec "$@"`
	args := append([]string{"--net", "--", "sh", "-c", script, "sh", os.Args[0]}, os.Args[1:]...)
	c := exec.Command("unshare", args...)
	c.Env = append(os.Environ(), netnsEnv+"=1")
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := c.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s runs in its own network namespace and needs root for it (unshare --net): %v\n", what, err)
		return 1
	}
	return 0
}
