package tlsbuf

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/sock"
)

// TestParkCyclesKeepEveryByte drives a real server tls.Conn the way a parking client
// connection is driven (internal/relay/park.go): its socket's reads stop with
// sock.ErrParked at any byte, a record header or body cut short; the reader then Reclaims
// and Lends, as park and resume do. The client's records are written by hand so that they
// come split across reads and so that KeyUpdates (one of them cut across two records,
// asking the server for its own) come between them, while the server writes to the
// client from another goroutine. Each buffer Reclaim gives back is overwritten before it
// is lent again: had crypto/tls kept a reference into it (a record cut short, plaintext
// not yet read, a handshake message in flight), the bytes read would differ from those
// sent. Run it with -race: Reclaim and Lend touch the tls.Conn while another goroutine
// writes to it.
func TestParkCyclesKeepEveryByte(t *testing.T) {
	srv, rec := handRolledPair(t)
	var sent bytes.Buffer
	var read atomic.Int64 // bytes the server read
	sentAll := make(chan struct{})
	go func() { // the client: records, KeyUpdates, and writes cut at any byte
		defer close(sentAll)
		defer rec.raw.(*net.TCPConn).CloseWrite()
		rng := rand.New(rand.NewPCG(16, 11))
		for i := 0; i < 400; i++ {
			// As in TestParkCyclesTLS12: on a loaded machine the records would pile up,
			// and no park would find the buffer empty.
			waitRead(&read, sent.Len())
			switch {
			case i%7 == 5:
				rec.keyUpdate(i%3 == 0, i%2 == 0) // some ask the server to update its keys too
			default:
				b := make([]byte, 1+rng.IntN(pick(rng, 40, 3000, 16000)))
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
				sent.Write(b)
				rec.record(23, b)
			}
			if !rec.flush(rng) {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); serverWrites(srv) }()
	go func() { // the client drains what the server writes, its KeyUpdates included
		defer wg.Done()
		_, _ = io.Copy(io.Discard, rec.raw) // not through rec.cli: it would answer, with keys of its own
	}()

	got, took, kept := readParking(t, srv, func(n int) { read.Store(int64(n)) })
	<-sentAll
	srv.Close()
	wg.Wait()
	checkParked(t, got, sent.Bytes(), took, kept)
}

// TestParkCyclesTLS12: the same parks with a TLS 1.2 client (records sealed with an
// explicit nonce; no KeyUpdate), its records written by crypto/tls itself. The client
// waits until a chunk was read before it writes the next (20 ms at most), so that some
// parks find nothing buffered and the buffer is taken.
func TestParkCyclesTLS12(t *testing.T) {
	cn := &choppy{rng: rand.New(rand.NewPCG(5, 6))}
	srv, cli := loopback(t, func(nc net.Conn) net.Conn { cn.Conn = nc; return cn }, &tls.Config{MaxVersion: tls.VersionTLS12})
	cn.on = true
	if v := cli.ConnectionState().Version; v != tls.VersionTLS12 {
		t.Fatalf("negotiated %s, want TLS 1.2", tls.VersionName(v))
	}
	var sent bytes.Buffer
	var read atomic.Int64 // bytes the server read
	sentAll := make(chan struct{})
	go func() {
		defer close(sentAll)
		defer cli.CloseWrite()
		rng := rand.New(rand.NewPCG(7, 8))
		for range 300 {
			waitRead(&read, sent.Len())
			b := make([]byte, 1+rng.IntN(pick(rng, 40, 3000, 7000, 40000)))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			sent.Write(b)
			if _, err := cli.Write(b); err != nil {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); serverWrites(srv) }()
	go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, cli) }()
	got, took, kept := readParking(t, srv, func(n int) { read.Store(int64(n)) })
	<-sentAll
	srv.Close()
	wg.Wait()
	checkParked(t, got, sent.Bytes(), took, kept)
}

// waitRead waits until the server has read sent bytes, not past 20 ms: a server that
// lost bytes would never catch up.
func waitRead(read *atomic.Int64, sent int) {
	for end := time.Now().Add(20 * time.Millisecond); int(read.Load()) < sent && time.Now().Before(end); {
		time.Sleep(50 * time.Microsecond)
	}
}

// serverWrites writes to the client while the server's reader parks and resumes.
func serverWrites(srv *tls.Conn) {
	for i := 0; i < 200; i++ {
		if _, err := srv.Write(bytes.Repeat([]byte{byte(i)}, 1+i*50)); err != nil {
			return
		}
	}
}

// readParking reads srv to its end, Reclaiming and Lending at each sock.ErrParked and at
// one read in four, and overwriting each buffer Reclaim gives back before it is lent.
// progress, if set, is told how many bytes were read after each read.
func readParking(t *testing.T, srv *tls.Conn, progress func(int)) (got []byte, took, kept int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	var read bytes.Buffer
	buf := make([]byte, 5000)
	for {
		n, err := srv.Read(buf[:1+rng.IntN(len(buf)-1)])
		read.Write(buf[:n])
		if progress != nil {
			progress(read.Len())
		}
		if err == nil && rng.IntN(4) != 0 {
			continue
		}
		if err != nil && !errors.Is(err, sock.ErrParked) {
			if err != io.EOF {
				t.Fatalf("read after %d bytes: %v", read.Len(), err)
			}
			break
		}
		if Reclaim(srv) { // park
			took++
			b := lent.Get() // the buffer just given back: overwrite it
			for j := range b[:cap(b)] {
				b[:cap(b)][j] = 0xAA
			}
			lent.Put(b)
		} else {
			kept++
		}
		Lend(srv) // resume
	}
	return read.Bytes(), took, kept
}

// checkParked: the server read what the client sent, and Reclaim both took buffers and
// kept them (a record cut short, plaintext unread).
func checkParked(t *testing.T, got, sent []byte, took, kept int) {
	t.Helper()
	if !bytes.Equal(got, sent) {
		t.Fatalf("read %d bytes, sent %d: they differ", len(got), len(sent))
	}
	if took == 0 || kept == 0 {
		t.Fatalf("Reclaim took the buffer %d times and kept it %d times: want both to happen", took, kept)
	}
	t.Logf("%d bytes in %d parks: buffer taken %d times, kept %d times", len(got), took+kept, took, kept)
}

func pick(rng *rand.Rand, sizes ...int) int { return sizes[rng.IntN(len(sizes))] }

// choppy is the server's socket: each read returns at most a few hundred bytes, often a
// few only, and one in three stops with sock.ErrParked before reading, as a parking socket's Read does.
type choppy struct {
	net.Conn
	rng *rand.Rand
	on  bool // set once the handshake is done, before the first read after it
}

func (c *choppy) Read(b []byte) (int, error) {
	if !c.on {
		return c.Conn.Read(b)
	}
	if c.rng.IntN(3) == 0 {
		return 0, sock.ErrParked
	}
	return c.Conn.Read(b[:min(len(b), 1+c.rng.IntN(pick(c.rng, 8, 700)))])
}

// recorder writes the client's TLS 1.3 records itself, with the client's traffic secret
// (from the client tls.Conn's key log), on the client's socket; after the handshake the
// client tls.Conn is not used: an alert it sent would be sealed with keys out of date.
type recorder struct {
	cli    *tls.Conn
	raw    net.Conn
	hash   func() hash.Hash
	secret []byte
	aead   cipher.AEAD
	iv     []byte
	seq    uint64
	out    bytes.Buffer
}

// handRolledPair: a TLS 1.3 connection over loopback whose server end reads through
// choppy and whose client end writes through a recorder.
func handRolledPair(t *testing.T) (*tls.Conn, *recorder) {
	t.Helper()
	var keys bytes.Buffer
	cn := &choppy{rng: rand.New(rand.NewPCG(1, 2))}
	srv, cli := loopback(t, func(nc net.Conn) net.Conn { cn.Conn = nc; return cn }, &tls.Config{MinVersion: tls.VersionTLS13, KeyLogWriter: &keys})
	cn.on = true // from here on its reads are cut short and stop as a parking socket's do
	raw := cli.NetConn()
	r := &recorder{cli: cli, raw: raw}
	switch cli.ConnectionState().CipherSuite {
	case tls.TLS_AES_128_GCM_SHA256:
		r.hash = sha256.New
	case tls.TLS_AES_256_GCM_SHA384:
		r.hash = sha512.New384
	default:
		t.Skipf("cipher suite %s: the recorder writes AES-GCM only", tls.CipherSuiteName(cli.ConnectionState().CipherSuite))
	}
	for line := range strings.Lines(keys.String()) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "CLIENT_TRAFFIC_SECRET_0" {
			r.secret, _ = hex.DecodeString(f[2])
		}
	}
	if r.secret == nil {
		t.Fatal("no client traffic secret in the key log")
	}
	r.setKeys()
	return srv, r
}

func (r *recorder) expandLabel(label string, n int) []byte {
	b, err := hkdf.Expand(r.hash, r.secret, string(hkdfLabel(label, n)), n)
	if err != nil {
		panic(err)
	}
	return b
}

func hkdfLabel(label string, n int) []byte {
	full := "tls13 " + label
	b := binary.BigEndian.AppendUint16(nil, uint16(n))
	b = append(b, byte(len(full)))
	b = append(b, full...)
	return append(b, 0) // no context
}

func (r *recorder) setKeys() {
	keyLen := 16 // TLS_AES_128_GCM_SHA256
	if len(r.secret) == 48 {
		keyLen = 32 // TLS_AES_256_GCM_SHA384
	}
	block, err := aes.NewCipher(r.expandLabel("key", keyLen))
	if err != nil {
		panic(err)
	}
	r.aead, _ = cipher.NewGCM(block)
	r.iv = r.expandLabel("iv", 12)
	r.seq = 0
}

// record seals one TLS 1.3 record of content type typ into r.out.
func (r *recorder) record(typ byte, data []byte) {
	nonce := bytes.Clone(r.iv)
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], r.seq)
	for i := range seq {
		nonce[4+i] ^= seq[i]
	}
	r.seq++
	inner := append(bytes.Clone(data), typ)
	hdr := []byte{23, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(hdr[3:], uint16(len(inner)+r.aead.Overhead()))
	r.out.Write(hdr)
	r.out.Write(r.aead.Seal(nil, nonce, inner, hdr))
}

// keyUpdate sends a KeyUpdate (asking the server for its own if request), in two records
// if split, and moves to the next traffic secret.
func (r *recorder) keyUpdate(request, split bool) {
	msg := []byte{24, 0, 0, 1, 0} // key_update, length 1, update_not_requested
	if request {
		msg[4] = 1
	}
	if split {
		r.record(22, msg[:2])
		r.record(22, msg[2:])
	} else {
		r.record(22, msg)
	}
	n := r.hash().Size()
	r.secret = r.expandLabel("traffic upd", n)
	r.setKeys()
}

// flush writes what was sealed in a few writes cut at random bytes.
func (r *recorder) flush(rng *rand.Rand) bool {
	for r.out.Len() > 0 {
		if _, err := r.raw.Write(r.out.Next(1 + rng.IntN(r.out.Len()))); err != nil {
			return false
		}
	}
	return true
}
