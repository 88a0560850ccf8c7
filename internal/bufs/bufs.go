// Package bufs is a bounded free list (Free), for the values the relay and its sockets
// take and give back on every batch or every park: byte buffers of one capacity (List),
// and the Framers and header lists a parked connection lends back. A sync.Pool takes a
// pointer, so pooling a slice costs an allocation per Put, and every GC cycle empties it,
// which a bulk transfer triggers every few milliseconds; and it keeps, until two
// collections have passed, whatever a burst gave back (10,000 connections parking at
// once), which a quiet process may not make for a long time.
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

// Free keeps up to Max values of one kind for later Gets, and makes new ones with its
// make function when it has none. Safe for concurrent use. Make it with NewFree (or New,
// for byte buffers), so that Trim sees it. Unlike a sync.Pool, it keeps what it holds
// across collections, and no more than Max of it.
type Free[T any] struct {
	Max  int
	make func() T

	mu   sync.Mutex
	free []T
	// idle is the fewest values the list held since the last trim: that many were not
	// needed during the whole period.
	idle int
}

// List keeps up to Max byte buffers of capacity Size.
type List struct {
	Free[[]byte]
	Size int
}

var (
	listsMu sync.Mutex
	lists   []interface{ trim() }
)

// NewFree returns a list keeping up to max values made by make, trimmed by Trim.
func NewFree[T any](max int, make func() T) *Free[T] {
	l := &Free[T]{Max: max, make: make}
	register(l)
	return l
}

// New returns a list keeping up to max buffers of capacity size, trimmed by Trim.
func New(max, size int) *List {
	l := &List{Free: Free[[]byte]{Max: max, make: func() []byte { return make([]byte, 0, size) }}, Size: size}
	register(l)
	return l
}

func register(l interface{ trim() }) {
	listsMu.Lock()
	lists = append(lists, l)
	listsMu.Unlock()
}

// Get returns a kept value, or a new one.
func (l *Free[T]) Get() T {
	l.mu.Lock()
	if n := len(l.free); n > 0 {
		v := l.free[n-1]
		var zero T
		l.free[n-1] = zero
		l.free = l.free[:n-1]
		l.idle = min(l.idle, n-1)
		l.mu.Unlock()
		return v
	}
	l.idle = 0
	l.mu.Unlock()
	return l.make()
}

// Put keeps v for a later Get, unless Max are kept already; it reports whether it kept
// v. v must not be used after if it did.
func (l *Free[T]) Put(v T) bool {
	l.mu.Lock()
	kept := len(l.free) < l.Max
	if kept {
		l.free = append(l.free, v)
	}
	l.mu.Unlock()
	return kept
}

// Put keeps b, emptied, for a later Get, unless Max are kept already. b must not be used
// after.
func (l *List) Put(b []byte) { l.Free.Put(b[:0]) }

// Len is the number of values kept.
func (l *Free[T]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.free)
}

// trim drops the values no Get took since the last trim (the oldest ones, at the bottom
// of the list: Get takes from the top) and starts a new period.
func (l *Free[T]) trim() {
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
