package listener

import (
	"net"
	"net/http"
	"sync"
)

// serveLate returns what serves an HTTP/1.1 connection that was accepted before a drain
// but finished its handshake after net/http stopped accepting: one request, answered
// with "Connection: close", by a server like base. It returns when the connection closes.
func serveLate(base *http.Server) func(net.Conn) {
	return func(nc net.Conn) {
		ln := &oneConnListener{conn: nc, done: make(chan struct{})}
		srv := &http.Server{
			Handler:     base.Handler,
			ConnContext: base.ConnContext,
			ConnState: func(c net.Conn, st http.ConnState) {
				if base.ConnState != nil {
					base.ConnState(c, st)
				}
				if st == http.StateClosed || st == http.StateHijacked {
					_ = ln.Close()
				}
			},
			Protocols:         base.Protocols,
			ReadHeaderTimeout: base.ReadHeaderTimeout,
			MaxHeaderBytes:    base.MaxHeaderBytes,
			ErrorLog:          base.ErrorLog,
		}
		srv.SetKeepAlivesEnabled(false)
		_ = srv.Serve(ln)
	}
}

// oneConnListener accepts conn once, then blocks until closed.
type oneConnListener struct {
	conn      net.Conn
	taken     bool
	done      chan struct{}
	closeOnce sync.Once
}

// Accept is called by one goroutine only (http.Server.Serve).
func (l *oneConnListener) Accept() (net.Conn, error) {
	if !l.taken {
		l.taken = true
		return l.conn, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }
