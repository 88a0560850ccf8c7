//go:build linux

package sock

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// park has c's reader park after wait and returns the channel its wake-up closes.
func park(t *testing.T, c *Conn, wait time.Duration) chan struct{} {
	t.Helper()
	c.BeforeRead = func() {}
	c.MayPark = func() bool { return true }
	c.ParkSoon(wait)
	if _, err := c.Read(make([]byte, 16)); !errors.Is(err, ErrParked) {
		t.Fatalf("read = %v, want ErrParked", err)
	}
	woken := make(chan struct{})
	if !c.Park(func() { close(woken) }) {
		t.Fatal("Park refused")
	}
	return woken
}

// A reader asked to park returns ErrParked once nothing arrived for the wait; the parked
// connection wakes when its peer writes, and the bytes are all there.
func TestParkWakesOnBytes(t *testing.T) {
	c, peer := pair(t, 0, nil)
	woken := park(t, c, 20*time.Millisecond)
	buf := make([]byte, 16)
	select {
	case <-woken:
		t.Fatal("woken with nothing to read")
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatal("not woken by the peer's bytes")
	}
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v after the wake-up", buf[:n], err)
	}
	// Parked again, it wakes for the next bytes: the watch is one-shot and re-armed.
	woken2 := park(t, c, time.Millisecond)
	_, _ = peer.Write([]byte("again"))
	select {
	case <-woken2:
	case <-time.After(10 * time.Second):
		t.Fatal("not woken the second time")
	}
}

// A parked connection that is closed wakes its reader, which finds it closed; one whose
// peer leaves wakes too and reads the end.
func TestParkWakesOnClose(t *testing.T) {
	for _, who := range []string{"us", "peer"} {
		t.Run(who, func(t *testing.T) {
			c, peer := pair(t, 0, nil)
			woken := park(t, c, time.Millisecond)
			buf := make([]byte, 16)
			if who == "us" {
				_ = c.Close()
			} else {
				_ = peer.Close()
			}
			select {
			case <-woken:
			case <-time.After(10 * time.Second):
				t.Fatal("not woken by the close")
			}
			_, err := c.Read(buf)
			if err == nil || (who == "peer") != errors.Is(err, io.EOF) {
				t.Fatalf("read after the close = %v", err)
			}
			if c.Park(func() {}) && who == "us" {
				t.Fatal("a closed connection parked")
			}
		})
	}
}

// A reader whose MayPark says no keeps waiting past the wait and gets the bytes.
func TestParkRefusedKeepsReading(t *testing.T) {
	c, peer := pair(t, 0, nil)
	c.BeforeRead = func() {}
	c.MayPark = func() bool { return false }
	c.ParkSoon(5 * time.Millisecond)
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = peer.Write([]byte("late"))
	}()
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "late" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

// A client that stayed silent for the whole wait before it spoke again parks early the
// next time it has nothing to do: at once, not after another wait. One that comes back
// sooner than the wait after that early park goes back to waiting first.
func TestParkEarlyAfterSilence(t *testing.T) {
	c, peer := pair(t, 0, nil)
	buf := make([]byte, 16)
	wakeThenRead := func(woken chan struct{}, msg string) {
		t.Helper()
		if _, err := peer.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-woken:
		case <-time.After(10 * time.Second):
			t.Fatalf("not woken by %q", msg)
		}
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != msg {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, msg)
		}
	}
	wakeThenRead(park(t, c, 20*time.Millisecond), "late") // silent for the whole wait
	// With a wait of an hour, the reader parks at its first wait all the same.
	read := make(chan error, 1)
	go func() {
		c.ParkSoon(time.Hour)
		_, err := c.Read(buf)
		read <- err
	}()
	select {
	case err := <-read:
		if !errors.Is(err, ErrParked) {
			t.Fatalf("read = %v, want ErrParked at once", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a client silent for the whole wait did not park early")
	}
	woken := make(chan struct{})
	if !c.Park(func() { close(woken) }) {
		t.Fatal("Park refused")
	}
	wakeThenRead(woken, "soon") // back well within the hour
	// So the reader waits for the next bytes rather than parking.
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = peer.Write([]byte("next"))
	}()
	c.ParkSoon(time.Hour)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "next" {
		t.Fatalf("read %q, %v; want the bytes, not a park", buf[:n], err)
	}
}

// A woken reader runs as long as its connection is busy: while one holds on, the other
// parked connections still wake, one alone and then many at once.
func TestParkWakesWhileAReaderHoldsOn(t *testing.T) {
	c, peer := pair(t, 0, nil)
	c.BeforeRead = func() {}
	c.MayPark = func() bool { return true }
	c.ParkSoon(time.Millisecond)
	if _, err := c.Read(make([]byte, 16)); !errors.Is(err, ErrParked) {
		t.Fatalf("read = %v, want ErrParked", err)
	}
	holding, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	if !c.Park(func() { close(holding); <-release }) {
		t.Fatal("Park refused")
	}
	_, _ = peer.Write([]byte("busy"))
	select {
	case <-holding:
	case <-time.After(10 * time.Second):
		t.Fatal("not woken by the peer's bytes")
	}

	const others = 20
	woken := make([]chan struct{}, others)
	peers := make([]net.Conn, others)
	for i := range others {
		oc, op := pair(t, 0, nil)
		woken[i], peers[i] = park(t, oc, time.Millisecond), op
	}
	_, _ = peers[0].Write([]byte("one"))
	select {
	case <-woken[0]:
	case <-time.After(10 * time.Second):
		t.Fatal("a parked connection not woken alone while another reader held on")
	}
	for i, p := range peers[1:] {
		if _, err := p.Write([]byte("many")); err != nil {
			t.Fatalf("peer %d: %v", i+1, err)
		}
	}
	for i, w := range woken {
		select {
		case <-w:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection %d of %d not woken while another reader held on", i, others)
		}
	}
}
