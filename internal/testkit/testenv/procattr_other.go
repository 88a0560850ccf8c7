//go:build !linux

package testenv

import "os/exec"

func setDeathSignal(*exec.Cmd) {}

// processExists is conservative where it cannot probe: it says yes, so nothing is removed.
func processExists(int) bool { return true }
