package relay

// The frames of a backend connection (the relay as an HTTP/2 client): responses to the
// streams it opened, settings, windows, GOAWAY.

import (
	"io"

	"golang.org/x/net/http2"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

// backendFrame handles one frame from a backend.
func (c *h2conn) backendFrame(f http2.Frame, b *batch) error {
	switch f := f.(type) {
	case *http2.HeadersFrame:
		hb, err := c.hd.read(c.fr, f)
		if err != nil {
			return err
		}
		if s := c.lookup(hb.StreamID); s != nil {
			s.fromBackendHeaders(c, hb, b)
		}
	case *http2.DataFrame:
		s := c.lookup(f.StreamID)
		if s == nil {
			c.returnConnWindow(int64(f.Length), b)
			return nil
		}
		s.fromBackendData(c, f, b)
	case *http2.RSTStreamFrame:
		if s := c.lookup(f.StreamID); s != nil {
			s.backendReset(c, f.StreamID, f.ErrCode, b)
		}
	case *http2.SettingsFrame:
		return c.settings(f, b)
	case *http2.WindowUpdateFrame:
		c.windowUpdate(f, b)
	case *http2.PingFrame:
		if !f.IsAck() && c.lockWrite() {
			_ = c.fr.WritePing(true, f.Data)
			c.unlockWrite(b)
		}
	case *http2.GoAwayFrame:
		// Calls already opened below LastStreamID go on; no new ones here. Streams above
		// it were never seen by the backend and fail as UNAVAILABLE: it is shutting down.
		c.mu.Lock()
		c.goAway = true
		var lost []*stream
		for id, s := range c.streams {
			if id > f.LastStreamID {
				lost = append(lost, s)
			}
		}
		c.mu.Unlock()
		for _, s := range lost {
			s.backendGone(c, io.EOF, call.NotSent)
		}
	}
	return nil
}

// stream looks a stream up by id on this connection.
func (c *h2conn) lookup(id uint32) *stream {
	c.mu.Lock()
	s := c.streams[id]
	c.mu.Unlock()
	return s
}

// returnConnWindow gives n received bytes back to the peer's connection window, at once
// if half of it is owed (refreshDue), else with a later WINDOW_UPDATE. Only a due
// update takes c.mu: a Search call's few kilobytes each way seldom make one due.
func (c *h2conn) returnConnWindow(n int64, b *batch) {
	if n == 0 || !refreshDue(c.recvOwed.Add(n), c.connWindow) || !c.lockWrite() {
		return
	}
	c.giveConnWindowLocked()
	c.unlockWrite(b)
}

// settings applies the peer's SETTINGS and acknowledges them.
func (c *h2conn) settings(f *http2.SettingsFrame, b *batch) error {
	if f.IsAck() {
		return nil
	}
	var delta int32
	var changed bool
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta += int32(s.Val) - c.peerWin
			c.peerWin = int32(s.Val)
			changed = true
		case http2.SettingMaxFrameSize:
			c.peerFrame = s.Val
		case http2.SettingMaxConcurrentStreams:
			c.peerMaxStr = s.Val
		case http2.SettingHeaderTableSize:
			c.henc.setMaxDynamicTableSizeLimit(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c.lockWrite() {
		_ = c.fr.WriteSettingsAck()
		c.unlockWrite(b)
	}
	if changed && delta != 0 {
		type open struct {
			id uint32
			s  *stream
		}
		c.mu.Lock()
		streams := make([]open, 0, len(c.streams))
		for id, s := range c.streams {
			streams = append(streams, open{id, s})
		}
		c.mu.Unlock()
		for _, o := range streams {
			o.s.adjustWindow(c, o.id, int64(delta), b)
		}
	}
	return nil
}

// windowUpdate opens the connection or a stream window and sends what waited for it.
func (c *h2conn) windowUpdate(f *http2.WindowUpdateFrame, b *batch) {
	if f.StreamID != 0 {
		if s := c.lookup(f.StreamID); s != nil {
			s.adjustWindow(c, f.StreamID, int64(f.Increment), b)
		}
		return
	}
	c.mu.Lock()
	c.sendWin += int64(f.Increment)
	blocked := c.blocked
	c.blocked = nil
	c.mu.Unlock()
	for _, s := range blocked {
		s.adjustWindow(c, 0, 0, b) // pinned while listed
	}
}
