//go:build !linux

package sock

// Parking needs epoll (park_linux.go); elsewhere readers wait in Read as before.
const parking = false

func watch(*Conn) error { return nil }

func unwatch(*Conn) {}
