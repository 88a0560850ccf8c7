package main_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// A standalone milvus-lb restarted in place 20 times (SIGHUP) under steady load loses
// nothing: no call fails, with a client that retries nothing of its own, and no
// connection is refused. Each restart is checked to have happened: a new process
// serves (pid file, systemd's READY=1 with its MAINPID) and the old one has exited.
func TestRestartInPlaceUnderLoad(t *testing.T) {
	const restarts = 20
	var backends []string
	for i := range 3 {
		be := fakemilvus.New(fakemilvus.Options{Name: "b" + strconv.Itoa(i)})
		if err := be.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(be.Stop)
		backends = append(backends, be.Addr())
	}
	port := testenv.FreePort(t)
	file := manifests(t, port, `    alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=20
    milvus-lb.io/healthcheck-type: none`, backends...)
	pidFile := filepath.Join(t.TempDir(), "milvus-lb.pid")
	notified := listenNotify(t)

	// A short handshake timeout: an old process waits that long after its last accepted
	// connection before it drains.
	lb := testenv.StartLB(t, "-f", file, "--state-dir", t.TempDir(), "--pid-file", pidFile, "--handshake-timeout", "2s")
	// Runs before StartLB's cleanup: the process to stop is the last generation.
	t.Cleanup(func() { lb.StopGenerations(t, pidFile) })

	ctx, stop := context.WithTimeout(context.Background(), 3*time.Minute)
	defer stop()
	load := startLoad(ctx, t, "127.0.0.1:"+strconv.Itoa(port))

	pid := testenv.WaitNewPID(ctx, t, pidFile, 0)
	if pid != lb.Pid() {
		t.Fatalf("pid file says %d, the process is %d", pid, lb.Pid())
	}
	var old []int
	for i := range restarts {
		before := load.ok.Load()
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		next := testenv.WaitNewPID(ctx, t, pidFile, pid)
		// Calls went on through the restart.
		for load.ok.Load() < before+20 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("restart %d: pid %d -> %d, %d calls so far", i+1, pid, next, load.ok.Load())
		old = append(old, pid)
		pid = next
	}
	// Every old process drains and exits, with the load still on.
	for _, p := range old {
		waitExited(ctx, t, p)
	}
	stats := load.stop()
	t.Logf("%d calls, %d failed; %d connections dialed, %d refused", stats.ok+stats.failed, stats.failed, stats.dials, stats.refused)
	if stats.failed != 0 || stats.refused != 0 {
		t.Errorf("%d calls failed (first: %v), %d connections refused; want 0 and 0", stats.failed, stats.firstErr, stats.refused)
	}
	if ctx.Err() != nil {
		t.Fatalf("the restarts did not finish in time")
	}
	// systemd (Type=notify, NotifyAccess=all) followed the service from process to process.
	msgs := notified()
	for _, want := range []string{"READY=1\nMAINPID=" + strconv.Itoa(lb.Pid()), "READY=1\nMAINPID=" + strconv.Itoa(pid)} {
		if !strings.Contains(msgs, want) {
			t.Errorf("no %q among the service manager's notifications:\n%s", want, msgs)
		}
	}
	if n := strings.Count(msgs, "READY=1\nMAINPID="); n != restarts+1 {
		t.Errorf("%d READY notifications with a MAINPID, want %d", n, restarts+1)
	}
}

type loadStats struct {
	ok, failed, dials, refused int64
	firstErr                   error
}

type load struct {
	ok, failed, dials, refused atomic.Int64
	firstErr                   atomic.Pointer[error]
	cancel                     context.CancelFunc
	wg                         sync.WaitGroup
}

// startLoad runs, until ctx ends or stop is called: callers that share a long-lived
// connection (as applications do), a caller that dials a new connection for every call,
// and a dialer that counts refused TCP connections. No caller retries.
func startLoad(ctx context.Context, t *testing.T, addr string) *load {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{cancel: cancel}
	dial := func() *grpc.ClientConn {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithAuthority("milvus-demo.milvus.io"), grpc.WithDisableRetry())
		if err != nil {
			t.Error(err)
			return nil
		}
		return cc
	}
	shared := dial()
	for i := range 4 {
		l.run(ctx, func() {
			for ctx.Err() == nil {
				l.call(ctx, shared, i%2 == 0)
			}
		})
	}
	l.run(ctx, func() {
		for ctx.Err() == nil {
			cc := dial()
			l.call(ctx, cc, true)
			cc.Close()
		}
	})
	l.run(ctx, func() {
		for ctx.Err() == nil {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			l.dials.Add(1)
			if errors.Is(err, syscall.ECONNREFUSED) {
				l.refused.Add(1)
			}
			if err == nil {
				c.Close()
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	t.Cleanup(func() { l.stop(); shared.Close() })
	return l
}

func (l *load) run(ctx context.Context, f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
}

// call makes one Search or Insert with a deadline; a failure that is not the end of the
// load counts.
func (l *load) call(ctx context.Context, cc *grpc.ClientConn, read bool) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := milvuspb.NewMilvusServiceClient(cc)
	var err error
	if read {
		_, err = c.Search(cctx, &milvuspb.SearchRequest{CollectionName: "c1", Nq: 1})
	} else {
		_, err = c.Insert(cctx, &milvuspb.InsertRequest{CollectionName: "c1", NumRows: 1})
	}
	switch {
	case ctx.Err() != nil:
	case err != nil:
		l.failed.Add(1)
		l.firstErr.CompareAndSwap(nil, &err)
	default:
		l.ok.Add(1)
	}
}

func (l *load) stop() loadStats {
	l.cancel()
	l.wg.Wait()
	s := loadStats{ok: l.ok.Load(), failed: l.failed.Load(), dials: l.dials.Load(), refused: l.refused.Load()}
	if e := l.firstErr.Load(); e != nil {
		s.firstErr = *e
	}
	return s
}

// waitExited waits until process pid is gone (or a zombie nobody reaped: its parent, an
// earlier generation, exited before it).
func waitExited(ctx context.Context, t *testing.T, pid int) {
	t.Helper()
	for ctx.Err() == nil {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		// The state follows the command name in parentheses.
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d did not exit after handing over", pid)
}

// listenNotify is a service manager's notification socket (systemd's NOTIFY_SOCKET),
// set in the environment milvus-lb inherits. It returns what was received so far.
func listenNotify(t *testing.T) func() string {
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	var mu sync.Mutex
	var got strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			fmt.Fprintf(&got, "%s\n--\n", buf[:n])
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return got.String()
	}
}
