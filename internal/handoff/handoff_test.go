package handoff

import (
	"log/slog"
	"net"
	"testing"
	"time"
)

// A predecessor's descriptors that do not parse are an error, not a silent fresh start
// that would then fail to bind the ports.
func TestNewRejectsBadInheritance(t *testing.T) {
	for _, env := range [][2]string{
		{envReady, "x"}, {envReady, "1"}, {envListeners, "127.0.0.1:80"}, {envListeners, "127.0.0.1:80=two"},
	} {
		t.Setenv(env[0], env[1])
		if _, err := New(slog.New(slog.DiscardHandler), "", time.Second, time.Second); err == nil {
			t.Errorf("%s=%q: no error", env[0], env[1])
		}
	}
}

// Nothing is accepted before Ready; after a handover, Accept waits for Close and then
// says closed, as a listener closed by the drain does.
func TestListenerLifecycle(t *testing.T) {
	h, err := New(slog.New(slog.DiscardHandler), "", time.Second, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := h.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case err := <-accepted:
		t.Fatalf("accepted before Ready: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := h.Ready(); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	if h.settleFor(time.Now()) <= 0 {
		t.Error("just after a connection, the drain must wait for its handshake")
	}
	if d := h.settleFor(time.Now().Add(2 * time.Second)); d != 0 {
		t.Errorf("long after the last connection the drain waits %v, want 0", d)
	}

	h.open[ln.(*listener).addr].pause()
	go func() {
		_, err := ln.Accept()
		accepted <- err
	}()
	select {
	case err := <-accepted:
		t.Fatalf("Accept returned %v after the handover, before Close", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; err != net.ErrClosed {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if len(h.open) != 0 {
		t.Fatal("a closed listener is still handed over")
	}
}
