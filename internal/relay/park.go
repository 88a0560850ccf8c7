package relay

import (
	"crypto/tls"
	"errors"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/tlsbuf"
)

// An idle client connection parks (sock.Conn.Park): its reader goroutine ends, with its
// stack, and its read buffer goes back to the pool, until the client sends something or
// the connection closes; then a new goroutine reads on (resume). A connection parks once
// it has had no call in flight and no frame from its client for parkAfter, at a frame
// boundary (the frame reader keeps a header cut short); one whose client was silent that
// long before its last frames parks as soon as it has no call in flight (sock: parking
// early). 10,000 idle TLS connections held 20.3 KiB each with a goroutine waiting in
// each, 4 KiB of it the goroutine's stack (docs/benchmarks.md, "Memory, third round").

// parkAfter is how long a connection with no call in flight keeps its reader waiting
// before it parks: a client making calls more often than this never parks between them
// (a park and a resume cost a few microseconds: an epoll registration, a wake-up, a new
// goroutine whose stack grows again).
const parkAfter = 100 * time.Millisecond

// errParked ends readFrames when the connection parked: its reader goroutine returns and
// leaves the connection as it is.
var errParked = errors.New("relay: connection parked")

// mayPark is the socket's MayPark: the reader is between frames, at the start of a frame
// header, and the connection has no stream open. Reader goroutine.
func (s *clientConn) mayPark() bool {
	c := s.c
	if !c.br.header {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(s.streams) == 0 && !c.closed
}

// park lets the reader goroutine go, if the socket can watch the connection without it;
// it returns false when the reader is to read on itself.
//
// What the connection grew while it was busy goes too: the Framer it reads with goes
// back to its pool (readframer.go: it keeps the largest payload it read); the stream
// table keeps the room it grew, so it is replaced by a new one; the route memo lets its
// snapshot go (call.RouteMemo); the finished streams kept for the next calls (reuse.go)
// go as they do after PingInterval of silence. And crypto/tls's record buffer goes back
// to the list it is lent from (internal/tlsbuf) until the connection resumes.
func (s *clientConn) park() bool {
	c := s.c
	c.rb.flush()
	c.br.release()
	c.hd.release()
	c.giveBackReadFramer()
	s.route.Forget()
	tc, _ := c.nc.(*tls.Conn)
	if tc != nil {
		tlsbuf.Reclaim(tc)
	}
	c.mu.Lock()
	if len(s.streams) == 0 {
		s.streams = map[uint32]clientStream{}
	}
	s.dropFree()
	c.mu.Unlock()
	if c.sk.Park(s.resume) {
		return true
	}
	if tc != nil {
		tlsbuf.Lend(tc)
	}
	c.lendReadFramer(s.o.MaxHeaderBytes)
	return false
}

// resume reads on after the connection parked: on a new goroutine, when bytes arrived or
// the connection is closing.
func (s *clientConn) resume() {
	if tc, ok := s.c.nc.(*tls.Conn); ok {
		tlsbuf.Lend(tc)
	}
	s.c.sk.ParkSoon(parkAfter)
	if err := s.readFrames(&s.c.rb); err != errParked {
		s.end(err)
	}
}
