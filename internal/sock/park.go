package sock

import (
	"errors"
	"os"
	"time"
)

// Parking: a connection with nothing to do (no call in flight, its client silent) need
// not keep a goroutine waiting in its Read, with the stack that goroutine grew reading
// TLS records and relaying calls (4 KiB at least, more once it relayed a call): 10,000
// idle clients are a workload the balancer must hold in little memory. Instead its reader
// returns (ErrParked), the connection is watched by one epoll set for the whole process,
// and a new goroutine starts reading when bytes arrive or the connection closes (Park).
//
// The reader is asked to park with ParkSoon: when it has waited that long without a
// byte, and MayPark still says yes, Read returns ErrParked. The wait is bounded by the
// socket's read deadline, so a connection in use pays one deadline change per grace
// period and nothing per read.
//
// A client that was silent that long before it spoke again is taken for one that calls
// now and then (2,000 clients each making a call a second): its connection parks early,
// at the first wait MayPark allows, until a wake-up comes sooner than ParkSoon's wait
// after a park. Waiting out the wait after each of its calls would hold the goroutine and
// its stack for nothing, and cost a wake-up when the deadline passes: one of the four
// or five times a thread slept and woke per call of that workload. Parking early took
// that to 3.7 and the balancer's CPU per call to 0.92× (docs/benchmarks.md, "Many
// clients, seventh round").

// ErrParked is what Read returns when the connection's reader is to park: a temporary
// net.Error, so crypto/tls keeps its state and the reads can go on after Park.
var ErrParked error = parkedError{}

type parkedError struct{}

func (parkedError) Error() string   { return "sock: reader parked" }
func (parkedError) Timeout() bool   { return false }
func (parkedError) Temporary() bool { return true }

// ParkSoon asks the reader to park once it has waited d for bytes, if MayPark then says
// so. It may be called from any goroutine; a request already pending stands.
func (c *Conn) ParkSoon(d time.Duration) {
	if c.rc == nil || !parking || c.MayPark == nil {
		return
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	c.parkWait = d
	if c.parkArmed {
		return
	}
	c.parkArmed = true
	_ = c.Conn.SetReadDeadline(time.Now().Add(d))
}

// parkDeadline handles a read that failed: if it failed because the deadline ParkSoon
// set passed, the deadline is cleared, the reader is due to park at its next wait, and
// parkDeadline returns true (the read is to be made again).
func (c *Conn) parkDeadline(err error) bool {
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if !c.parkArmed {
		return false // a deadline of the caller's own
	}
	c.parkArmed = false
	c.parkDue = true // the reading goroutine's own (see Conn)
	_ = c.Conn.SetReadDeadline(time.Time{})
	return true
}

// Park watches the connection for bytes (or its close) with no goroutine: onReady then
// runs on a new goroutine, which reads on. It returns false when the connection cannot be
// parked (closed, no descriptor, not on Linux): the caller reads on itself. The caller must
// not touch the connection's reading state after Park returned true.
func (c *Conn) Park(onReady func()) bool {
	if c.rc == nil || !parking {
		return false
	}
	wait := c.disarm()
	// Cleared whatever happens: a reader that cannot park must not try at every wait,
	// and the wake-up of one that does sets it anew.
	early := c.parkEarly
	c.parkEarly = false
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.parked, c.onReady = true, onReady
	if err := watch(c); err != nil {
		c.parked, c.onReady = false, nil
		return false
	}
	// A client silent for the whole wait parks early from its next wake-up on; after an
	// early park, only if it stays silent for the wait again.
	c.earlyFrom = time.Now()
	if early {
		c.earlyFrom = c.earlyFrom.Add(wait)
	}
	return true
}

// disarm clears the deadline ParkSoon set, if it has not passed (a reader that parks
// early), and returns ParkSoon's wait.
func (c *Conn) disarm() time.Duration {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.parkArmed {
		c.parkArmed = false
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
	return c.parkWait
}

// wake starts the reader of a parked connection: bytes arrived, or it is closing.
func (c *Conn) wake() {
	c.mu.Lock()
	f := c.unparkLocked()
	c.mu.Unlock()
	if f != nil {
		go f()
	}
}

// unparkLocked ends the parking and returns the function that reads on, or nil if the
// connection was not parked. c.mu held.
func (c *Conn) unparkLocked() func() {
	if !c.parked {
		return nil
	}
	f := c.onReady
	c.parked, c.onReady = false, nil
	// Before the reader starts: parkEarly is its own from then on.
	c.parkEarly = !c.earlyFrom.IsZero() && !time.Now().Before(c.earlyFrom)
	return f
}
