//go:build !linux

package sock

import "syscall"

// rawRead and rawWrite are plain system calls where the raw ones (raw_linux.go) are not
// written: a build for development on another system, not a measured one.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	return errno(syscall.Read(int(fd), p))
}

func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	return errno(syscall.Write(int(fd), p))
}

func errno(n int, err error) (int, syscall.Errno) {
	if err == nil {
		return n, 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return 0, e
	}
	return 0, syscall.EIO
}
