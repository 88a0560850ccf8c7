package main

import (
	"os"
	"runtime"
	"strconv"
)

// Mutex and block profiles are empty unless sampling is turned on, and sampling costs a
// little on every contended lock, so it is off unless these variables ask for it (the
// benchmark harness sets them when it profiles): MILVUS_LB_MUTEX_PROFILE_FRACTION=N
// samples one contention event in N; MILVUS_LB_BLOCK_PROFILE_RATE=NS samples one
// blocking event per NS nanoseconds blocked. Read them at /debug/pprof/mutex and /block
// on the admin address.
func init() {
	if n, err := strconv.Atoi(os.Getenv("MILVUS_LB_MUTEX_PROFILE_FRACTION")); err == nil && n > 0 {
		runtime.SetMutexProfileFraction(n)
	}
	if n, err := strconv.Atoi(os.Getenv("MILVUS_LB_BLOCK_PROFILE_RATE")); err == nil && n > 0 {
		runtime.SetBlockProfileRate(n)
	}
}
