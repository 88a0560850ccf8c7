// Package bufs is a bounded free list of byte buffers of one capacity, for the buffers the
// relay and its sockets take and give back on every batch: a sync.Pool takes a pointer,
// so pooling a slice costs an allocation per Put, and every GC cycle empties it, which a
// bulk transfer triggers every few milliseconds.
//
// A list keeps what its busiest moment needed, up to Max: after a burst (2,000 clients
// connecting at once, a queue that filled while a backend was slow) that was megabytes of
// buffers no call took again (docs/benchmarks.md, "Many clients, fourth round"). Trim,
// which TrimEvery calls every few seconds, lets go of the buffers that stayed on the list
// the whole period since the last trim: a list in steady use keeps what its peaks take.
package bufs

import (
	"context"
	"sync"
	"time"
)

// List keeps up to Max buffers of capacity Size. Safe for concurrent use. Make it with
// New, so that Trim sees it.
type List struct {
	Max  int
	Size int

	mu   sync.Mutex
	free [][]byte
	// idle is the fewest buffers the list held since the last trim: that many were not
	// needed during the whole period.
	idle int
}

var (
	listsMu sync.Mutex
	lists   []*List
)

// New returns a list keeping up to max buffers of capacity size, trimmed by Trim.
func New(max, size int) *List {
	l := &List{Max: max, Size: size}
	listsMu.Lock()
	lists = append(lists, l)
	listsMu.Unlock()
	return l
}

// Get returns an empty buffer of capacity at least Size: a kept one, or a new one.
func (l *List) Get() []byte {
	l.mu.Lock()
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		l.idle = min(l.idle, n-1)
		l.mu.Unlock()
		return b[:0]
	}
	l.idle = 0
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

// Len is the number of buffers kept.
func (l *List) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.free)
}

// trim drops the buffers no Get took since the last trim (the oldest ones, at the bottom
// of the list: Get takes from the top) and starts a new period.
func (l *List) trim() {
	l.mu.Lock()
	defer l.mu.Unlock()
	drop := l.idle
	n := copy(l.free, l.free[drop:])
	clear(l.free[n:])
	l.free = l.free[:n]
	l.idle = len(l.free)
}

// Trim trims every list made by New.
func Trim() {
	listsMu.Lock()
	all := lists
	listsMu.Unlock()
	for _, l := range all {
		l.trim()
	}
}

// TrimPeriod is how long a kept buffer may go unused before Trim drops it. A few seconds:
// long enough that a list in steady use (calls coming and going) keeps what its peaks
// take, short enough that the memory of a burst goes back while the collector's target
// is low (internal/procmem).
const TrimPeriod = 5 * time.Second

// TrimEvery calls Trim every period until ctx ends.
func TrimEvery(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			Trim()
		}
	}
}
