package sock

import (
	"os"
	"sync"
	"syscall"
)

// parking: readers park on Linux, where one epoll set watches the parked connections.
const parking = true

// parker is the epoll set of the parked connections. Its descriptor is itself watched by
// Go's netpoller (an epoll set is readable when one of its descriptors is ready), so the
// goroutine that hands out the wake-ups waits like any reader, holding no thread.
type parker struct {
	once  sync.Once
	epfd  int
	err   error
	mu    sync.Mutex
	conns map[int32]*Conn // by descriptor: the connections registered in the set
}

var pk parker

func (p *parker) start() {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err == nil {
		err = syscall.SetNonblock(fd, true)
	}
	if err != nil {
		p.err = os.NewSyscallError("epoll_create1", err)
		return
	}
	f := os.NewFile(uintptr(fd), "sock-parker")
	rc, err := f.SyscallConn()
	if err != nil {
		p.err = err
		return
	}
	p.epfd, p.conns = fd, map[int32]*Conn{}
	go p.run(f, rc)
}

// run hands out the wake-ups: each ready connection is removed from the watch (one-shot)
// and its reader started.
func (p *parker) run(f *os.File, rc syscall.RawConn) {
	defer f.Close()
	events := make([]syscall.EpollEvent, 128)
	var n int
	wait := func(fd uintptr) bool {
		for {
			k, err := syscall.EpollWait(int(fd), events, 0)
			if err == syscall.EINTR {
				continue
			}
			n = max(k, 0)
			return n > 0
		}
	}
	for {
		if err := rc.Read(wait); err != nil {
			return
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			c := p.conns[ev.Fd]
			p.mu.Unlock()
			if c != nil {
				c.wake()
			}
		}
	}
}

// watch registers c for one wake-up when it has bytes to read or is closed. c.mu held.
func watch(c *Conn) error {
	pk.once.Do(pk.start)
	if pk.err != nil {
		return pk.err
	}
	if c.fd < 0 {
		var fd int32 = -1
		if err := c.rc.Control(func(d uintptr) { fd = int32(d) }); err != nil {
			return err
		}
		c.fd = fd
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: c.fd}
	pk.mu.Lock()
	defer pk.mu.Unlock()
	op := syscall.EPOLL_CTL_MOD
	if !c.watched {
		op = syscall.EPOLL_CTL_ADD
	}
	if err := syscall.EpollCtl(pk.epfd, op, int(c.fd), &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	c.watched = true
	pk.conns[c.fd] = c
	return nil
}

// unwatch removes c from the set before its descriptor is closed (and may be reused).
// c.mu held.
func unwatch(c *Conn) {
	if !c.watched {
		return
	}
	pk.mu.Lock()
	defer pk.mu.Unlock()
	_ = syscall.EpollCtl(pk.epfd, syscall.EPOLL_CTL_DEL, int(c.fd), nil)
	if pk.conns[c.fd] == c {
		delete(pk.conns, c.fd)
	}
	c.watched = false
}
