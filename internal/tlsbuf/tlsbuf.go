// Package tlsbuf lends crypto/tls its record buffer while a connection reads, and takes
// it back when the connection parks (internal/relay/park.go). A tls.Conn keeps its
// record buffer and its handshake buffer for its whole life, grown to the largest record
// and handshake message it read (about 4 KiB and 1.5 KiB for a client making Searches):
// with 2,000 connections each making a call a second, 12 MB of a 40 MB live heap
// (docs/benchmarks.md, "Many clients, fourth round"), most of it on connections parked
// between their calls. No API releases them; they are unexported fields (rawInput,
// input, hand), reached here with reflect and unsafe. The layout is checked once against
// the fields' names and types; if the Go release changes it, Supported is false,
// nothing is touched and the balancer logs a warning at start (TestSupported fails, so
// an upgrade that breaks it is seen). What crypto/tls does with the fields cannot be
// checked at run time: TestLayoutReviewed fails when tls.Conn gains, loses or renames any
// field, so that its code is read again, and TestParkCyclesKeepEveryByte drives a real
// connection through parks with records cut short and KeyUpdates.
//
// Every access is made with the connection's input lock (halfConn's mutex, which
// crypto/tls holds while it touches these fields, in Read and in the handshake) and
// from the goroutine that reads: writers (and the KeyUpdate a Read answers) use the
// output side only.
//
// A buffer taken back goes to a free list and is lent to the next connection that
// resumes, so a connection that parks between calls allocates nothing for it; one that
// grew its buffer past the lent size (a bulk upload) lets the grown one go to the
// collector when it parks.
package tlsbuf

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"sync"
	"unsafe"

	"github.com/milvus-lb/milvus-lb/internal/bufs"
)

// size is a lent record buffer's capacity: a Search's record (3.3 KiB) and the
// bytes.MinRead crypto/tls asks for beyond what it needs, with room to spare; larger
// records grow it, as crypto/tls would its own.
const size = 8 << 10

var lent = bufs.New(1024, size)

// Offsets of the fields in tls.Conn; Supported says they were found as expected.
var (
	offIn, offRawInput, offInput, offHand uintptr
	// Supported: this Go release's tls.Conn has the fields this package expects.
	Supported bool
)

func init() {
	t := reflect.TypeFor[tls.Conn]()
	field := func(name string, want reflect.Type) (uintptr, bool) {
		f, ok := t.FieldByName(name)
		return f.Offset, ok && f.Type == want
	}
	var ok [4]bool
	offRawInput, ok[0] = field("rawInput", reflect.TypeFor[bytes.Buffer]())
	offInput, ok[1] = field("input", reflect.TypeFor[bytes.Reader]())
	offHand, ok[2] = field("hand", reflect.TypeFor[bytes.Buffer]())
	if f, found := t.FieldByName("in"); found && f.Type.Kind() == reflect.Struct && f.Type.NumField() > 0 {
		m := f.Type.Field(0) // halfConn embeds the mutex Read holds
		offIn, ok[3] = f.Offset, m.Anonymous && m.Offset == 0 && m.Type == reflect.TypeFor[sync.Mutex]()
	}
	Supported = ok == [4]bool{true, true, true, true}
}

type fields struct {
	in       *sync.Mutex
	rawInput *bytes.Buffer
	input    *bytes.Reader
	hand     *bytes.Buffer
}

func of(c *tls.Conn) fields {
	p := unsafe.Pointer(c)
	return fields{
		in:       (*sync.Mutex)(unsafe.Add(p, offIn)),
		rawInput: (*bytes.Buffer)(unsafe.Add(p, offRawInput)),
		input:    (*bytes.Reader)(unsafe.Add(p, offInput)),
		hand:     (*bytes.Buffer)(unsafe.Add(p, offHand)),
	}
}

// Reclaim takes c's record buffer back, and drops its handshake buffer, if they hold no
// byte not yet read; it returns whether it took the record buffer. Call it only between
// reads, from the goroutine that reads c, after the handshake: when the connection parks.
func Reclaim(c *tls.Conn) bool {
	if !Supported {
		return false
	}
	f := of(c)
	if !f.in.TryLock() { // a Read in progress: not between reads after all
		return false
	}
	defer f.in.Unlock()
	if f.hand.Len() == 0 {
		*f.hand = bytes.Buffer{}
	}
	if f.rawInput.Len() != 0 || f.input.Len() != 0 || f.rawInput.Cap() == 0 {
		return false // a record cut short, or plaintext not yet read, lives in it
	}
	f.rawInput.Reset()
	if b := f.rawInput.Bytes(); cap(b) == size {
		lent.Put(b)
	}
	*f.rawInput = bytes.Buffer{}
	*f.input = bytes.Reader{} // it pointed into the buffer
	return true
}

// Lend gives c a record buffer if Reclaim took its own: call it before reading c again,
// from the goroutine that reads it.
func Lend(c *tls.Conn) {
	if !Supported {
		return
	}
	f := of(c)
	if !f.in.TryLock() {
		return
	}
	if f.rawInput.Cap() == 0 {
		*f.rawInput = *bytes.NewBuffer(lent.Get())
	}
	f.in.Unlock()
}
