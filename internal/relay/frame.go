package relay

import (
	"golang.org/x/net/http2"
)

// maxControlRun is how many PING and SETTINGS frames in a row, with no other frame
// between them, end a connection (GOAWAY ENHANCE_YOUR_CALM). Each asks for an
// acknowledgement; a client flooding them without reading the answers fills the kernel's
// socket buffers (megabytes) before any write blocks long enough for --write-timeout, and
// meanwhile costs a write per batch. Legitimate clients send a few: keepalive pings and
// grpc-go's BDP pings, which come with the DATA and WINDOW_UPDATE frames of their calls.
// net/http's server has the same bound on queued control frames.
const maxControlRun = 10000

// frame handles one frame from the client, with the stream state checks of RFC 9113
// §5.1: an id above every one the client opened is idle, an id at or below it with no
// stream is closed, and a stream whose client sent END_STREAM is half-closed (remote).
// It returns a StreamError to reset one stream, or any other error to end the connection.
func (s *clientConn) frame(f http2.Frame, b *batch) error {
	if err := s.countControl(f); err != nil {
		return err
	}
	switch f := f.(type) {
	case *http2.HeadersFrame:
		hb, err := s.c.hd.read(s.c.lent.fr, f)
		if err != nil {
			return err
		}
		return s.headers(hb, b)
	case *http2.DataFrame:
		return s.data(f, b)
	case *http2.RSTStreamFrame:
		return s.rstStream(f, b)
	case *http2.SettingsFrame:
		return s.settings(f, b)
	case *http2.WindowUpdateFrame:
		return s.windowUpdate(f, b)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
	case *http2.PingFrame:
		s.ping(f, b)
	case *http2.GoAwayFrame:
		// The client will open no more streams; those it has go on.
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil
}

// countControl ends a connection whose client sends a flood of PING or SETTINGS frames
// (see maxControlRun).
func (s *clientConn) countControl(f http2.Frame) error {
	switch f.(type) {
	case *http2.PingFrame, *http2.SettingsFrame:
		if s.ctrlRun++; s.ctrlRun > maxControlRun {
			s.sv.Port.Log.Warn("closing connection: flood of PING or SETTINGS frames", "remote", s.c.nc.RemoteAddr().String())
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
	default:
		s.ctrlRun = 0
	}
	return nil
}

// headers handles a header block from the client: a new call, or the end of one.
func (s *clientConn) headers(f *headerBlock, b *batch) error {
	id := f.StreamID
	st, idle := s.lookupOrIdle(id)
	if st != nil {
		return st.fromClientTrailers(f, b)
	}
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if !idle {
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	}
	return s.open(f, b)
}

func (s *clientConn) data(f *http2.DataFrame, b *batch) error {
	id := f.StreamID
	if st := s.lookup(id); st != nil {
		return st.fromClientData(f, b)
	}
	// Not forwarded: the connection window is given back all the same.
	s.c.returnConnWindow(int64(f.Length), b)
	if s.idle(id) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
}

func (s *clientConn) rstStream(f *http2.RSTStreamFrame, b *batch) error {
	if s.idle(f.StreamID) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if st := s.lookup(f.StreamID); st != nil {
		st.fromClientReset(b)
	}
	return nil
}

// settings applies the client's SETTINGS; a new initial window size changes the send
// window of every open stream by the difference (RFC 9113 §6.9.2).
func (s *clientConn) settings(f *http2.SettingsFrame, b *batch) error {
	c := s.c
	c.mu.Lock()
	old := c.peerWin
	c.mu.Unlock()
	if err := c.settings(f, b); err != nil {
		return err
	}
	c.mu.Lock()
	delta := int64(c.peerWin) - int64(old)
	c.mu.Unlock()
	if delta == 0 {
		return nil
	}
	for _, st := range s.all() {
		if err := st.fromClientWindow(delta, b); err != nil {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	}
	return nil
}

func (s *clientConn) windowUpdate(f *http2.WindowUpdateFrame, b *batch) error {
	c := s.c
	id, inc := f.StreamID, int64(f.Increment)
	if id == 0 {
		c.mu.Lock()
		over := c.sendWin+inc > maxWindow
		c.mu.Unlock()
		if over {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.windowUpdate(f, b)
		c.grantDeferred(b)
		s.wakeREST()
		return nil
	}
	if s.idle(id) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if st := s.lookup(id); st != nil {
		return st.fromClientWindow(inc, b)
	}
	return nil
}

func (s *clientConn) ping(f *http2.PingFrame, b *batch) {
	c := s.c
	if f.IsAck() {
		c.mu.Lock()
		c.pingOut = false
		c.mu.Unlock()
		switch f.Data {
		case drainPing:
			s.confirmDrain(b)
		case drainPing2:
			s.finishDrain()
		}
	} else if c.lockWrite() {
		_ = c.fr.WritePing(true, f.Data)
		c.unlockWrite(b)
	}
}
