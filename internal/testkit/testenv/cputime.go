package testenv

import (
	"syscall"
	"time"
)

// CPUTime is the process's CPU time, user and system, every thread included. Benchmarks
// report it per operation beside ns/op: on a machine shared with other work it is
// disturbed far less than wall time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
