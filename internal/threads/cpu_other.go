//go:build !unix

package threads

import "time"

// processCPU is unknown here: Run leaves the number of threads to the runtime.
func processCPU() (time.Duration, bool) { return 0, false }
