//go:build linux

package sock

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A log file opened for appending keeps what it held, and gets every byte written, in
// order, through the raw writes.
func TestFileWriterRegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	if err := os.WriteFile(path, []byte("before\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, own := FileWriter(f)
	defer own.Close()
	if _, ok := w.(*fileWriter); !ok {
		t.Fatalf("FileWriter(regular file) = %T, want the raw writer", w)
	}
	data := make([]byte, 300<<10)
	rand.Read(data)
	for p := data; len(p) > 0; p = p[min(len(p), 64<<10):] {
		if n, err := w.Write(p[:min(len(p), 64<<10)]); err != nil || n != min(len(p), 64<<10) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("before\n"), data...); !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes, want %d (the old line and every byte written)", len(got), len(want))
	}
}

// A pipe whose reader is slow: the writer waits for room instead of failing or losing
// bytes, and the descriptor it was given (standard output, in milvus-lb) stays blocking
// and open.
func TestFileWriterPipeWaitsForItsReader(t *testing.T) {
	r, out := fifo(t)
	defer r.Close()
	defer out.Close()
	if fcntlFlags(t, out)&syscall.O_NONBLOCK != 0 {
		t.Fatal("the test's descriptor is non-blocking to begin with")
	}
	w, own := FileWriter(out)
	if _, ok := w.(*fileWriter); !ok {
		t.Fatalf("FileWriter(pipe) = %T, want the raw writer", w)
	}
	data := make([]byte, 1<<20) // 16 times a pipe's buffer
	rand.Read(data)
	wrote := make(chan error, 1)
	go func() {
		_, err := w.Write(data)
		wrote <- err
	}()
	var got bytes.Buffer
	buf := make([]byte, 8<<10)
	for got.Len() < len(data) {
		n, err := r.Read(buf)
		if err != nil && err != io.EOF && !os.IsTimeout(err) {
			t.Fatalf("read: %v", err)
		}
		got.Write(buf[:n])
		time.Sleep(100 * time.Microsecond) // a slow reader
	}
	if err := <-wrote; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("the reader got other bytes than were written")
	}
	if err := own.Close(); err != nil {
		t.Fatal(err)
	}
	if fcntlFlags(t, out)&syscall.O_NONBLOCK != 0 {
		t.Error("the given descriptor was made non-blocking")
	}
	if _, err := out.Write([]byte("x")); err != nil {
		t.Errorf("the given descriptor after the writer's Close: %v", err)
	}
}

// fifo is a named pipe's reading end and a blocking writing end, as a shell gives a
// program its standard output (os.OpenFile would make a FIFO non-blocking itself).
func fifo(t *testing.T) (r, w *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	return r, os.NewFile(uintptr(fd), "stdout")
}

// A terminal or /dev/null is written the usual way: the file itself.
func TestFileWriterOtherFiles(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if w, _ := FileWriter(f); w != io.Writer(f) {
		t.Fatalf("FileWriter(%s) = %T, want the file itself", os.DevNull, w)
	}
}

// A FIFO whose reader is gone before the writer is made (standard output sent to a
// named pipe whose reader already exited): FileWriter returns at once, with the file
// itself, rather than wait in open(2) for a reader that may never come.
func TestFileWriterFIFOWithoutReader(t *testing.T) {
	r, out := fifo(t)
	defer out.Close()
	r.Close()
	made := make(chan io.Writer, 1)
	go func() {
		fw, _ := FileWriter(out)
		made <- fw
	}()
	select {
	case fw := <-made:
		if fw != io.Writer(out) {
			t.Fatalf("FileWriter(FIFO without a reader) = %T, want the file itself", fw)
		}
	case <-time.After(time.Minute):
		t.Fatal("FileWriter waits for the FIFO's reader to come back")
	}
}

// Without /proc (a container with a restricted one) a pipe is written the usual way.
func TestFileWriterPipeWithoutProc(t *testing.T) {
	defer func(p string) { procSelfFD = p }(procSelfFD)
	procSelfFD = filepath.Join(t.TempDir(), "proc", "self", "fd", "%d")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if fw, _ := FileWriter(w); fw != io.Writer(w) {
		t.Fatalf("FileWriter(pipe) without /proc = %T, want the file itself", fw)
	}
}

// A pipe whose reader goes away while it is written: the write fails with EPIPE (the
// access log counts the lines as failed) and the process lives on. Go kills a program
// that writes to a broken pipe on descriptor 1 or 2 through os.File, so this runs in a
// child whose standard output is such a pipe.
func TestFileWriterStdoutReaderGone(t *testing.T) {
	if os.Getenv("SOCK_TEST_STDOUT_CHILD") == "1" {
		fw, _ := FileWriter(os.Stdout)
		if _, raw := fw.(*fileWriter); !raw {
			os.Stderr.WriteString("not the raw writer\n")
			os.Exit(3)
		}
		fw.Write([]byte("ready\n"))
		for {
			if _, err := fw.Write(make([]byte, 4096)); err != nil {
				if !errors.Is(err, syscall.EPIPE) {
					os.Stderr.WriteString("write: " + err.Error() + "\n")
					os.Exit(4)
				}
				os.Stderr.WriteString("EPIPE\n")
				os.Exit(0)
			}
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestFileWriterStdoutReaderGone$")
	cmd.Env = append(os.Environ(), "SOCK_TEST_STDOUT_CHILD=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(out, make([]byte, len("ready\n"))); err != nil {
		t.Fatal(err)
	}
	out.Close() // the reader goes
	if err := cmd.Wait(); err != nil || strings.TrimSpace(stderr.String()) != "EPIPE" {
		t.Fatalf("child writing to a pipe whose reader went: %v, stderr %q; want exit 0 after EPIPE", err, stderr.String())
	}
}

func fcntlFlags(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags uintptr
	var errno syscall.Errno
	rc.Control(func(fd uintptr) {
		flags, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	})
	if errno != 0 {
		t.Fatal(errno)
	}
	return int(flags)
}
