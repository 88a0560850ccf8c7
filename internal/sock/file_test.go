//go:build linux

package sock

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
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
	fifo := filepath.Join(t.TempDir(), "out")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// A blocking descriptor, as a shell gives a program its standard output (os.OpenFile
	// would make a FIFO non-blocking itself).
	fd, err := syscall.Open(fifo, syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := os.NewFile(uintptr(fd), "stdout")
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
