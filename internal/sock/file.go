package sock

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// FileWriter returns a writer for f whose write(2) calls are made the way the data path
// makes its own (rawWrite, without telling the scheduler), and a closer for what it
// opened: nothing when f is a regular file, written as it is; a new descriptor of its own
// when f is a pipe (FIFO); for anything else (a terminal, a socket), f itself.
//
// Why: the access log writes a 64 KiB chunk about a hundred times a second under load.
// Made the usual way, each write wakes the runtime's monitor thread, sysmon, if it was
// asleep, and sysmon then polls every 20 µs for a millisecond (see rawRead). With the log
// on, the balancer made 0.40 voluntary thread switches per client read under the Search
// benchmark, against 0.22 with these writes (docs/benchmarks.md). A write to a regular
// file copies into the page cache without waiting for the disk, as a socket write that
// cannot block does; but the kernel makes a writer sleep while too much waits for the
// disk (dirty page throttling), and a network filesystem may wait for the server: such a
// write holds its P, and a stop-the-world of the collector waits for it, where a write
// made the usual way would have let both go. A pipe's reader can make a writer wait as
// long as it likes, which must not hold a P: the pipe is opened again (a FIFO opened
// through /proc/self/fd is a description of its own, so standard output's flags stay as
// they are) in non-blocking mode, and a write that finds it full waits in the netpoller.
// A write to a pipe whose reader is gone fails (EPIPE) and the process lives on. Without
// /proc, or with no reader when FileWriter is called, f itself is returned: Go ends a
// program whose write to a broken pipe on standard output or error goes through os.File
// (SIGPIPE), as it does for any program, milvus-lb's own log on stderr included.
func FileWriter(f *os.File) (io.Writer, io.Closer) {
	rc, err := f.SyscallConn()
	if err != nil || !rawFiles {
		return f, nopCloser{} // nothing gained to risk: the usual writes
	}
	var fd uintptr
	var st syscall.Stat_t
	var serr error = syscall.EBADF
	err = rc.Control(func(d uintptr) { fd, serr = d, syscall.Fstat(int(d), &st) })
	if err != nil || serr != nil {
		return f, nopCloser{}
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		return &fileWriter{f: f, rc: rc}, nopCloser{}
	case syscall.S_IFIFO:
		// O_NONBLOCK: opening a FIFO for writing waits until it has a reader, forever
		// if its reader is gone; non-blocking, that open fails (ENXIO) at once.
		p, err := os.OpenFile(fmt.Sprintf(procSelfFD, fd), os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return f, nopCloser{} // no /proc, or no reader now: the usual writes
		}
		prc, err := p.SyscallConn()
		if err != nil {
			p.Close()
			return f, nopCloser{}
		}
		return &fileWriter{f: p, rc: prc, poll: true}, p
	}
	return f, nopCloser{}
}

// procSelfFD names a descriptor of this process's anew (a test names a /proc that is
// not mounted).
var procSelfFD = "/proc/self/fd/%d"

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// fileWriter writes p whole with rawWrite: through Control for a regular file (a write
// that never waits), through the netpoller for a pipe (poll: a full pipe waits there).
type fileWriter struct {
	f    *os.File // kept: rc does not keep the file open
	rc   syscall.RawConn
	poll bool
}

func (w *fileWriter) Write(p []byte) (n int, err error) {
	write := func(fd uintptr) bool {
		for n < len(p) {
			m, e := rawWrite(fd, p[n:])
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN && w.poll:
				return false // full: wait until the reader takes some
			case e != 0:
				err = &os.PathError{Op: "write", Path: w.f.Name(), Err: e}
				return true
			case m == 0:
				err = io.ErrShortWrite
				return true
			}
			n += m
		}
		return true
	}
	var cerr error
	if w.poll {
		cerr = w.rc.Write(write)
	} else {
		cerr = w.rc.Control(func(fd uintptr) { write(fd) })
	}
	if err == nil {
		err = cerr
	}
	return n, err
}
