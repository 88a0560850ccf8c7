//go:build !linux

package listener

// unprivilegedPortStart: elsewhere the rules differ (macOS lets anyone bind low ports on
// all interfaces), so no port is refused in advance; binding reports what the OS says.
func unprivilegedPortStart() int { return 0 }

func hasNetBindService() bool { return false }
