package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process: a balancer or the fake backend. Its output goes to a log file
// in the run directory, so a failure can point at it.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // valid after done
}

func startProc(name, logPath string, cmd *exec.Cmd) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	// Children die with the harness, even if it is killed: no balancer outlives a run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail is the end of the process's log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// stop sends SIGTERM to the process group and waits; after 10 s it kills the group.
func (p *proc) stop() error {
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		return p.err
	}
	return nil
}

// tree is pid and all its descendants (nginx's workers, for instance).
func tree(pid int) []int {
	children := map[int][]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces, so cut at the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		self, _ := strconv.Atoi(strings.Fields(s)[0])
		children[ppid] = append(children[ppid], self)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// memory is the resident set of a process tree, in KiB: now (VmRSS) and the high-water
// mark since the last resetPeak (VmHWM), each summed over the processes.
type memory struct{ rssKiB, peakKiB int64 }

func readMemory(pids []int) (memory, error) {
	var m memory
	for _, pid := range pids {
		f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			return m, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Bytes()
			for _, k := range []struct {
				key string
				dst *int64
			}{{"VmRSS:", &m.rssKiB}, {"VmHWM:", &m.peakKiB}} {
				if v, ok := bytes.CutPrefix(line, []byte(k.key)); ok {
					n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
					*k.dst += n
				}
			}
		}
		f.Close()
	}
	return m, nil
}

// resetPeak resets VmHWM to the current RSS (Linux clear_refs "5"), so that the next
// readMemory tells the peak of one workload only.
func resetPeak(pids []int) error {
	for _, pid := range pids {
		if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0); err != nil {
			return fmt.Errorf("reset peak RSS of %d: %w", pid, err)
		}
	}
	return nil
}

// peakSampler samples RSS every few milliseconds as well, in case clear_refs is not
// allowed: the larger of the sampled maximum and VmHWM is reported.
type peakSampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	max  int64
}

func samplePeak(pids func() []int) *peakSampler {
	s := &peakSampler{stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := readMemory(pids()); err == nil {
				s.max = max(s.max, m.rssKiB)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *peakSampler) done() int64 {
	close(s.stop)
	s.wg.Wait()
	return s.max
}

// raiseFileLimit lifts RLIMIT_NOFILE as far as allowed: the idle workload holds 10,000
// connections in the load generator and twice that in a balancer. Children inherit it.
func raiseFileLimit(want uint64) (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur >= want {
		return l.Cur, nil
	}
	n := syscall.Rlimit{Cur: want, Max: max(want, l.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n); err != nil {
		// Not root: go as far as the hard limit.
		n = syscall.Rlimit{Cur: l.Max, Max: l.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n); err != nil {
			return l.Cur, err
		}
	}
	return n.Cur, nil
}

// cpuTicks is the CPU time (user and system, in clock ticks of 1/100 s) used so far by
// the processes pids.
func cpuTicks(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		// Fields after the command: state ppid ... utime is the 12th, stime the 13th.
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + st
	}
	return total
}

// cpuMeter measures the CPU time a target uses during a window, from a goroutine that
// wakes at its start and end.
type cpuMeter struct {
	done  chan struct{}
	ticks int64
	idle  float64
}

func meterCPU(pids func() []int, w window) *cpuMeter {
	m := &cpuMeter{done: make(chan struct{})}
	go func() {
		defer close(m.done)
		time.Sleep(time.Until(w.from))
		p := pids()
		start := cpuTicks(p)
		idle0, total0 := machineTicks()
		time.Sleep(time.Until(w.to))
		m.ticks = cpuTicks(p) - start
		idle1, total1 := machineTicks()
		if total1 > total0 {
			m.idle = float64(idle1-idle0) / float64(total1-total0)
		}
	}()
	return m
}

// meterCPUs meters, over w, the target's processes, its fake backend's and the load
// generator's own: the three that share the machine's cores.
func meterCPUs(t *Target, w window) (target, backend, client *cpuMeter) {
	return meterCPU(t.PIDs, w),
		meterCPU(func() []int { return []int{t.backend.pid()} }, w),
		meterCPU(func() []int { return []int{os.Getpid()} }, w)
}

// setCPU fills in res's CPU per call (res.Calls made) and the machine's idle share.
func setCPU(res *Result, target, backend, client *cpuMeter) {
	res.CPUus = target.perCall(res.Calls)
	res.BackendCPUus = backend.perCall(res.Calls)
	res.ClientCPUus = client.perCall(res.Calls)
	res.IdlePct = 100 * target.idleShare()
}

// perCall is the CPU time per call in microseconds.
func (m *cpuMeter) perCall(calls int64) float64 {
	<-m.done
	if calls == 0 {
		return 0
	}
	return float64(m.ticks) * 1e4 / float64(calls)
}

// idleShare is the share of the machine's CPU time that was idle in the window.
func (m *cpuMeter) idleShare() float64 {
	<-m.done
	return m.idle
}

// machineTicks is the idle and the total CPU time of the machine so far (/proc/stat).
func machineTicks() (idle, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return idle, total
}
