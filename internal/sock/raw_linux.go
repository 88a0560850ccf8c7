package sock

import (
	"syscall"
	"unsafe"
)

// rawRead and rawWrite are read(2) and write(2) on a non-blocking descriptor (Go's
// sockets are), made without telling the scheduler: they never wait in the kernel
// (EAGAIN when there is nothing to read or no room, and the caller waits in the
// netpoller), so the goroutine keeps its P as if it were copying memory.
//
// Why: a system call made the usual way (syscall.Read, net.Conn.Read) wakes the runtime's
// monitor thread, sysmon, when every P had been idle, and sysmon then polls every 20 µs
// for a millisecond before it backs off again. A balancer goes idle between bursts
// thousands of times a second: sysmon woke about 3,500 times a second under the Search
// benchmark, each wake-up a thread switch (a VM makes them dear), and the relay spent a
// fifth more CPU per call than with these (docs/benchmarks.md). p is not empty.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	return rawIO(syscall.SYS_READ, fd, p)
}

func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	return rawIO(syscall.SYS_WRITE, fd, p)
}

func rawIO(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
