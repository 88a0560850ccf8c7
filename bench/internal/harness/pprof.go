package harness

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"
)

// ProfileEnv is the environment that turns on milvus-lb's mutex and block profiles
// (cmd/milvus-lb/profiling.go).
var ProfileEnv = []string{"MILVUS_LB_MUTEX_PROFILE_FRACTION=10", "MILVUS_LB_BLOCK_PROFILE_RATE=100000"}

// PprofCapture returns a Profiler that saves, for the first round's measured window of
// each workload, milvus-lb's CPU, allocation, mutex and block profiles in dir as
// <workload>-<kind>.pb.gz (the baseline's as baseline-<workload>-<kind>.pb.gz), and for
// every target the CPU profiles of the fake backend (when Config.BackendPprof is set) and
// of the load generator, as <target>-<workload>-backend-cpu.pb.gz and
// <target>-<workload>-client-cpu.pb.gz: what the balancer makes the other two spend.
// Read them with `go tool pprof`. Of the idle and many-clients workloads it saves a heap
// snapshot instead
// (heapSnapshot).
func PprofCapture(dir string, logf func(string, ...any)) Profiler {
	return func(t *Target, workload string, round int, window time.Duration) func() {
		if round != 1 {
			return func() {}
		}
		if workload == Idle || workload == Many {
			return heapSnapshot(dir, t, workload, logf)
		}
		secs := max(1, int(window.Seconds())-1)
		paths := map[string]string{}
		if t.AdminAddr != "" {
			prefix := workload
			if t.Name != MilvusLB {
				prefix = t.Name + "-" + workload
			}
			for kind, path := range map[string]string{
				"cpu":    "/debug/pprof/profile?seconds=%d",
				"allocs": "/debug/pprof/allocs?seconds=%d",
				"mutex":  "/debug/pprof/mutex?seconds=%d",
				"block":  "/debug/pprof/block?seconds=%d",
			} {
				paths[filepath.Join(dir, prefix+"-"+kind+".pb.gz")] = "http://" + t.AdminAddr + fmt.Sprintf(path, secs)
			}
		}
		if t.BackendAdmin != "" {
			paths[filepath.Join(dir, t.Name+"-"+workload+"-backend-cpu.pb.gz")] = "http://" + t.BackendAdmin + fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs)
		}
		var wg sync.WaitGroup
		for file, url := range paths {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fetch(url, file); err != nil {
					logf("pprof %s: %v", filepath.Base(file), err)
				}
			}()
		}
		// The load generator is this process.
		wg.Add(1)
		go func() {
			defer wg.Done()
			file := filepath.Join(dir, t.Name+"-"+workload+"-client-cpu.pb.gz")
			f, err := os.Create(file)
			if err == nil {
				if err = pprof.StartCPUProfile(f); err == nil {
					time.Sleep(time.Duration(secs) * time.Second)
					pprof.StopCPUProfile()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				logf("pprof %s: %v", filepath.Base(file), err)
			}
		}()
		return wg.Wait
	}
}

// heapSnapshot saves milvus-lb's heap profile (live objects, after a collection) and its
// goroutines as idle-heap.pb.gz and idle-goroutine.pb.gz (many-clients-heap.pb.gz ...):
// what the connections hold; and idle-memstats.txt, the runtime's figures before it. The idle and many-clients workloads take it after reading
// the resident set (the collection it forces would change it), connections still open.
func heapSnapshot(dir string, t *Target, workload string, logf func(string, ...any)) func() {
	return func() {
		if t.AdminAddr == "" {
			return
		}
		prefix := workload
		if t.Name != MilvusLB {
			prefix = t.Name + "-" + workload
		}
		// First the heap's text form, whose runtime.MemStats at the end say where the
		// resident set is (heap in use, free, released, stacks) before the collection.
		if err := fetch("http://"+t.AdminAddr+"/debug/pprof/heap?debug=1", filepath.Join(dir, prefix+"-memstats.txt")); err != nil {
			logf("pprof %s-memstats.txt: %v", prefix, err)
		}
		for kind, path := range map[string]string{"heap": "/debug/pprof/heap?gc=1", "goroutine": "/debug/pprof/goroutine"} {
			file := filepath.Join(dir, prefix+"-"+kind+".pb.gz")
			if err := fetch("http://"+t.AdminAddr+path, file); err != nil {
				logf("pprof %s: %v", filepath.Base(file), err)
			}
		}
	}
}

func fetch(url, file string) error {
	c := http.Client{Timeout: 2 * time.Minute}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
