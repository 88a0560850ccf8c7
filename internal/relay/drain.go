package relay

import (
	"time"

	"golang.org/x/net/http2"
)

// A connection's graceful drain (Conn.Shutdown), in the steps of RFC 9113 §6.8: first a
// GOAWAY with the highest stream id and a PING, so that the client opens no new streams
// but those it already sent are still taken; then, when the PING comes back (the client
// has seen the first GOAWAY), a second PING; when that one comes back, or after
// drainNoticeWait, the GOAWAY with the last stream id taken. A single GOAWAY with the
// last id would refuse the calls on their way, and a client that connected just before
// the drain would have its first call refused with nowhere else to go.
//
// The second round trip is for the calls a client began just as the notice arrived: gRPC
// C core (pymilvus) can number a stream, read the notice and answer its PING, and write
// the stream's HEADERS after that answer (its control frames go first in a write). With
// the final GOAWAY sent at the first answer, such a stream came after it and was refused
// (seen once in 60 restarts in place under pymilvus's load, TestChaosRealClients). A
// client that writes its frames in order, as gRPC C core and Go's HTTP/2 do, writes
// every stream it numbered before it read the notice before it answers a PING that
// reached it after its first answer went out.

// drainNoticeWait is how long the relay waits for the drain's PINGs to come back before
// it sends the final GOAWAY.
const drainNoticeWait = time.Second

// firstStreamWait is how long a connection that has not opened a stream yet (it was
// accepted just before the drain) is given to send its first call before it is told to go.
const firstStreamWait = 500 * time.Millisecond

// drainPing and drainPing2 are the payloads of the drain's two PINGs.
var (
	drainPing  = [8]byte{'d', 'r', 'a', 'i', 'n', 'm', 'l', 'b'}
	drainPing2 = [8]byte{'d', 'r', 'a', 'i', 'n', 'm', 'l', '2'}
)

// The steps of a connection's drain (clientConn.drain).
const (
	drainNone    = iota
	drainWanted  // Shutdown was called; the notice waits for SETTINGS and a first stream
	drainNoticed // the first GOAWAY and the PING went out
	drainConfirm // the first PING came back, the second went out
	drainFinal   // the final GOAWAY went out
)

// Shutdown sends GOAWAY: calls in progress and calls the client sent before it saw the
// GOAWAY finish, no new ones start, and the connection closes when the last one ends.
func (hc *Conn) Shutdown() {
	s := hc.s
	c := s.c
	c.mu.Lock()
	if s.drain != drainNone || c.closed {
		c.mu.Unlock()
		return
	}
	s.drain = drainWanted
	s.drainTimer = time.AfterFunc(firstStreamWait, func() {
		c.mu.Lock()
		s.drainWaited = true
		c.mu.Unlock()
		s.noticeDrain()
	})
	c.mu.Unlock()
	s.noticeDrain()
}

// noticeDrain sends the drain notice once it may: after the relay's SETTINGS (the
// connection preface comes first) and after the client's first stream or
// firstStreamWait. It is called at each of those events.
func (s *clientConn) noticeDrain() {
	c := s.c
	c.mu.Lock()
	now := s.drain == drainWanted && s.started && (c.lastID > 0 || s.drainWaited)
	if now {
		s.drain = drainNoticed
	}
	c.mu.Unlock()
	if !now {
		return
	}
	var b batch
	if c.lockWrite() {
		_ = c.fr.WriteGoAway(1<<31-1, http2.ErrCodeNo, nil)
		_ = c.fr.WritePing(false, drainPing)
		c.unlockWrite(&b)
	}
	b.flush()
	c.mu.Lock()
	if s.drainTimer != nil {
		s.drainTimer.Stop()
	}
	s.drainTimer = time.AfterFunc(drainNoticeWait, s.finishDrain)
	c.mu.Unlock()
}

// confirmDrain sends the second PING when the first came back.
func (s *clientConn) confirmDrain(b *batch) {
	c := s.c
	if !c.lockWrite() {
		return
	}
	if s.drain == drainNoticed {
		s.drain = drainConfirm
		_ = c.fr.WritePing(false, drainPing2)
	}
	c.unlockWrite(b)
}

// finishDrain sends the final GOAWAY, with the last stream id the connection took, and
// closes the connection if no call is in progress (else the last one's end closes it).
func (s *clientConn) finishDrain() {
	c := s.c
	c.mu.Lock()
	now := s.drain == drainNoticed || s.drain == drainConfirm
	if now {
		s.drain = drainFinal
	}
	c.mu.Unlock()
	if !now {
		return
	}
	var b batch
	if !c.lockWrite() {
		return
	}
	c.goAway = true
	_ = c.fr.WriteGoAway(c.lastID, http2.ErrCodeNo, nil)
	idle := len(s.streams) == 0
	c.unlockWrite(&b)
	b.flush()
	if idle {
		go func() {
			c.flushWait()
			_ = c.nc.Close()
		}()
	}
}

// stopDrain stops the drain's timer when the connection closes.
func (s *clientConn) stopDrain() {
	s.c.mu.Lock()
	if s.drainTimer != nil {
		s.drainTimer.Stop()
	}
	s.c.mu.Unlock()
}
