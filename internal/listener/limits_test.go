package listener

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

func TestPrematureResetWindow(t *testing.T) {
	c := &trackedConn{}
	// A client whose calls mostly complete never loses its connection, even with many
	// cancellations.
	for i := range 10 * resetWindow {
		if c.streamEnded(i%5 < 2) { // 40% cancelled early
			t.Fatalf("closed after %d streams with 40%% premature resets", i+1)
		}
	}
	// A window of mostly premature resets closes it, at the window's end.
	for i := range resetWindow {
		kill := c.streamEnded(true)
		if kill != (i == resetWindow-1) {
			t.Fatalf("stream %d of an all-reset window: kill = %v", i+1, kill)
		}
	}
}

// The idle clock counts what the client sends on its own, not its answers to the
// balancer's keepalive PINGs.
func TestIdleClockIgnoresPingAnswers(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := &conns{idle: time.Hour, pingInterval: 50 * time.Millisecond, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tc := &trackedConn{Conn: server, c: c}
	start := time.Now().Add(-time.Second).UnixNano()
	tc.lastRead.Store(start)
	tc.lastActive.Store(start)
	buf := make([]byte, 16)
	send := func() {
		go func() { _, _ = client.Write([]byte("x")) }()
		if _, err := tc.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	go func() { _, _ = io.Copy(io.Discard, client) }()

	// The balancer pinged (a write) after a silence of more than pingInterval: the next
	// read is the answer and does not count.
	_, _ = tc.Write([]byte("ping"))
	send()
	if tc.lastActive.Load() != start {
		t.Fatal("the answer to the balancer's PING counted as client activity")
	}
	// The client's own frame soon after counts.
	send()
	if tc.lastActive.Load() == start {
		t.Fatal("a frame the client sent on its own did not count as activity")
	}
}
