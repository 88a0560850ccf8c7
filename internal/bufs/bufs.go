// Package bufs is a bounded free list of byte buffers of one capacity, for the buffers the
// relay and its sockets take and give back on every batch: a sync.Pool takes a pointer,
// so pooling a slice costs an allocation per Put, and every GC cycle empties it, which a
// bulk transfer triggers every few milliseconds.
package bufs

import "sync"

// List keeps up to Max buffers of capacity Size. Safe for concurrent use.
type List struct {
	Max  int
	Size int

	mu   sync.Mutex
	free [][]byte
}

// Get returns an empty buffer of capacity at least Size: a kept one, or a new one.
func (l *List) Get() []byte {
	l.mu.Lock()
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		l.mu.Unlock()
		return b[:0]
	}
	l.mu.Unlock()
	return make([]byte, 0, l.Size)
}

// Put keeps b for a later Get, unless Max are kept already. b must not be used after.
func (l *List) Put(b []byte) {
	l.mu.Lock()
	if len(l.free) < l.Max {
		l.free = append(l.free, b[:0])
	}
	l.mu.Unlock()
}
