package main

import (
	"os"
	"testing"
)

// The command a run reports is one a reader can paste: no stray space when it had no
// flags, every flag when it had some.
func TestCommandLine(t *testing.T) {
	saved := os.Args
	defer func() { os.Args = saved }()
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "go run ./bench/cmd/bench"},
		{[]string{"-quick", "-workloads", "search"}, "go run ./bench/cmd/bench -quick -workloads search"},
	} {
		os.Args = append([]string{"/tmp/go-build/bench"}, c.args...)
		if got := commandLine(); got != c.want {
			t.Errorf("args %q: commandLine() = %q, want %q", c.args, got, c.want)
		}
	}
}
