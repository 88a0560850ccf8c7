package harness

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ProfileEnv is the environment that turns on milvus-lb's mutex and block profiles
// (cmd/milvus-lb/profiling.go).
var ProfileEnv = []string{"MILVUS_LB_MUTEX_PROFILE_FRACTION=10", "MILVUS_LB_BLOCK_PROFILE_RATE=100000"}

// PprofCapture returns a Profiler that saves milvus-lb's CPU, allocation, mutex and
// block profiles of the first round's measured window of each workload in dir, as
// <workload>-<kind>.pb.gz (read with `go tool pprof`).
func PprofCapture(dir string, logf func(string, ...any)) Profiler {
	return func(t *Target, workload string, round int, window time.Duration) func() {
		if t.AdminAddr == "" || round != 1 {
			return func() {}
		}
		secs := max(1, int(window.Seconds())-1)
		var wg sync.WaitGroup
		for kind, path := range map[string]string{
			"cpu":    "/debug/pprof/profile?seconds=%d",
			"allocs": "/debug/pprof/allocs?seconds=%d",
			"mutex":  "/debug/pprof/mutex?seconds=%d",
			"block":  "/debug/pprof/block?seconds=%d",
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				file := filepath.Join(dir, workload+"-"+kind+".pb.gz")
				if err := fetch("http://"+t.AdminAddr+fmt.Sprintf(path, secs), file); err != nil {
					logf("pprof %s %s: %v", workload, kind, err)
				}
			}()
		}
		return wg.Wait
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
