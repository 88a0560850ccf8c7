package harness

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/milvus-lb/milvus-lb/bench/internal/gopipe"
	"github.com/milvus-lb/milvus-lb/internal/threads"
)

// goPipeEnv tells a re-executed harness binary to be the Go pipe (GoPipe):
// "listen,backend,certFile,keyFile".
const goPipeEnv = "MILVUS_LB_BENCH_GOPIPE"

// startGoPipe starts the Go pipe in front of the first backend, a process of its own
// like the fake backend (this binary again).
func (e *Env) startGoPipe(backends []string) (*Target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, addr, err := e.place(GoPipe)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), goPipeEnv+"="+strings.Join([]string{addr, backends[0], e.cert.certFile, e.cert.keyFile}, ","))
	p, err := startProc(GoPipe, filepath.Join(dir, GoPipe+".log"), cmd)
	if err != nil {
		return nil, err
	}
	return &Target{Name: GoPipe, Addr: addr, TLS: true, proc: p}, nil
}

// runGoPipe is the Go pipe's process: it serves until SIGTERM, choosing its threads as
// milvus-lb does.
func runGoPipe(spec string) error {
	f := strings.Split(spec, ",")
	if len(f) != 4 {
		return fmt.Errorf("%s=%q: want listen,backend,certFile,keyFile", goPipeEnv, spec)
	}
	cert, err := tls.LoadX509KeyPair(f[2], f[3])
	if err != nil {
		return err
	}
	l, err := tls.Listen("tcp", f[0], gopipe.Config(cert))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go threads.Run(ctx, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	return gopipe.Serve(l, f[1])
}
