package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// chaosLoad is test/clients/chaos_load.py running: pymilvus calls through milvus-lb,
// counted by phases that the test names on the program's standard input.
type chaosLoad struct {
	in      io.WriteCloser
	replies chan string // its lines after "chaos_load: ", in order; closed at its end
	output  testenv.LogBuffer
	// close stops the program; a test defers it, so that the program stops before the
	// cleanups stop what it calls.
	close func()
}

// phaseCounts are one phase's calls by operation, each [calls, failed], and the first
// failures.
type phaseCounts struct {
	Search, Query, Insert [2]int
	Errors                []string
	FailedIDs             []int64 `json:"failed_ids"` // the row ids of the first failed Inserts
}

func (n phaseCounts) calls() int  { return n.Search[0] + n.Query[0] + n.Insert[0] }
func (n phaseCounts) failed() int { return n.Search[1] + n.Query[1] + n.Insert[1] }

// loadResult is what the program prints when it stops.
type loadResult struct {
	Phases map[string]phaseCounts
	Hung   int // threads whose call had not ended a minute after the stop
}

// startChaosLoad runs chaos_load.py with args and waits until its calls have begun.
func startChaosLoad(t *testing.T, args []string) *chaosLoad {
	t.Helper()
	// A bound for a program that its end of input did not stop: the full run
	// (MILVUS_LB_CHAOS_ROUNDS=full) lasts half an hour.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	script := filepath.Join(testenv.Root(t), "test", "clients", "chaos_load.py")
	cmd := exec.CommandContext(ctx, testenv.Python(t), append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	cmd.WaitDelay = 5 * time.Second
	l := &chaosLoad{replies: make(chan string, 16)}
	cmd.Stderr = &l.output
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if l.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	t.Logf("$ python %s %s", script, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		l.read(stdout)
		if err := cmd.Wait(); err != nil {
			l.output.Write([]byte("chaos_load.py: " + err.Error() + "\n"))
		}
	}()
	l.close = sync.OnceFunc(func() {
		l.in.Close() // its end of input stops it
		select {
		case <-exited:
		case <-time.After(90 * time.Second):
		}
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("----- chaos_load.py output -----\n%s----- end -----", l.output.String())
		}
	})
	t.Cleanup(l.close)
	for r := l.next(t, 2*time.Minute); !strings.HasPrefix(r, "running"); r = l.next(t, 2*time.Minute) {
		t.Logf("chaos_load: %s", r)
	}
	return l
}

// read passes the program's replies on and keeps all it printed.
func (l *chaosLoad) read(stdout io.Reader) {
	defer close(l.replies)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		l.output.Write([]byte(line + "\n"))
		if r, ok := strings.CutPrefix(line, "chaos_load: "); ok {
			l.replies <- r
		}
	}
}

// next is the program's next reply.
func (l *chaosLoad) next(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case r, ok := <-l.replies:
		if !ok {
			t.Fatalf("chaos_load.py ended:\n%s", l.output.String())
		}
		return r
	case <-time.After(timeout):
		t.Fatalf("chaos_load.py said nothing for %v", timeout)
	}
	return ""
}

// ask sends a command and returns the reply, which must start with want.
func (l *chaosLoad) ask(t *testing.T, cmd, want string, timeout time.Duration) string {
	t.Helper()
	if _, err := io.WriteString(l.in, cmd+"\n"); err != nil {
		t.Fatalf("chaos_load.py: %v", err)
	}
	r := l.next(t, timeout)
	rest, ok := strings.CutPrefix(r, want)
	if !ok {
		t.Fatalf("chaos_load.py answered %q to %q", r, cmd)
	}
	return strings.TrimSpace(rest)
}

// phase counts the calls that start from now on under name.
func (l *chaosLoad) phase(t *testing.T, name string) {
	t.Helper()
	l.ask(t, "phase "+name, "phase "+name, 30*time.Second)
}

// client makes the calls from now on use the client name of chaos_load.py: "strict"
// (gRPC's transparent retries off) or "defaults" (pymilvus's gRPC options).
func (l *chaosLoad) client(t *testing.T, name string) {
	t.Helper()
	l.ask(t, "client "+name, "client "+name, 30*time.Second)
}

func (l *chaosLoad) count(t *testing.T) int {
	t.Helper()
	n, err := strconv.Atoi(l.ask(t, "count", "count ", 30*time.Second))
	if err != nil {
		t.Fatalf("chaos_load.py count: %v", err)
	}
	return n
}

// calls waits until n more calls have ended, failed or not.
func (l *chaosLoad) calls(t *testing.T, n int) {
	t.Helper()
	want, deadline := l.count(t)+n, time.Now().Add(time.Minute)
	for l.count(t) < want {
		if time.Now().After(deadline) {
			t.Fatalf("the load made fewer than %d calls in a minute", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the load and returns its counts.
func (l *chaosLoad) stop(t *testing.T) loadResult {
	t.Helper()
	out := l.ask(t, "stop", "result ", 90*time.Second)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("chaos_load.py result %q: %v", out, err)
	}
	res := loadResult{Phases: map[string]phaseCounts{}}
	for k, v := range raw {
		var err error
		if k == "hung" {
			err = json.Unmarshal(v, &res.Hung)
		} else {
			var n phaseCounts
			err = json.Unmarshal(v, &n)
			res.Phases[k] = n
		}
		if err != nil {
			t.Fatalf("chaos_load.py result %s: %v", k, err)
		}
	}
	return res
}

// deadline gives the calls that start from now on a deadline (0: none).
func (l *chaosLoad) deadline(t *testing.T, d time.Duration) {
	t.Helper()
	s := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	l.ask(t, "timeout "+s, "timeout "+s, 30*time.Second)
}

// pause stops new calls and waits for those in flight to end; resume lets them go on.
func (l *chaosLoad) pause(t *testing.T) {
	t.Helper()
	l.ask(t, "pause", "paused", 2*time.Minute)
}

func (l *chaosLoad) resume(t *testing.T) {
	t.Helper()
	l.ask(t, "resume", "resumed", 30*time.Second)
}
