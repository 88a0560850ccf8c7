package relay_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

// An uploading client gets its windows back in halves: each WINDOW_UPDATE the balancer
// sends for a 3 MiB insert gives back at least half the window it announced, for the
// stream and for the connection, and the insert is answered. Each WINDOW_UPDATE wakes
// the client, so returning windows in smaller pieces costs both sides per message.
func TestUploadGetsWindowBackInHalves(t *testing.T) {
	l := lbtest.Start(t, lbtest.Options{}, lbtest.Addrs(lbtest.Backends(t, 1, fakemilvus.Options{NoRecord: true}))...)
	nc, err := net.Dial("tcp", l.PlainAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	up := &uploader{fr: http2.NewFramer(nc, nc), connWin: 65535}
	up.cond = sync.NewCond(&up.mu)
	if _, err := nc.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	// Windows the answer (the IDs of the rows) never fills.
	if err := up.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := up.fr.WriteWindowUpdate(0, 1<<30); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- up.read() }()

	msg := insertMessage(t, 3<<20)
	up.send(t, msg)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if up.status != "0" {
		t.Fatalf("insert answered with grpc-status %q, want 0", up.status)
	}
	var streamUpdates, connUpdates int
	for _, u := range up.updates {
		win := up.streamWindow
		if u.conn {
			if u.first {
				continue // the connection window's first growth, before any data
			}
			win = up.connWindow
			connUpdates++
		} else {
			streamUpdates++
		}
		if u.inc < win/2 {
			t.Errorf("a WINDOW_UPDATE (connection: %v) gave back %d bytes of a %d-byte window; want at least half", u.conn, u.inc, win)
		}
	}
	if streamUpdates == 0 || connUpdates == 0 {
		t.Errorf("%d stream and %d connection WINDOW_UPDATEs for a %d-byte upload through windows of %d and %d bytes",
			streamUpdates, connUpdates, len(msg), up.streamWindow, up.connWindow)
	}
}

// A backend stream's window grows only for a reply that needs more than its first
// window. A Search's few kilobytes end within it, and no WINDOW_UPDATE goes to the
// backend for their stream: it would be a frame for a stream the backend has closed, on
// every call. A reply of megabytes gets its window grown, and arrives whole.
func TestBackendWindowGrowsForLongRepliesOnly(t *testing.T) {
	tap := tapToBackend(t, lbtest.Addrs(lbtest.Backends(t, 1, fakemilvus.Options{NoRecord: true}))[0])
	l := lbtest.Start(t, lbtest.Options{}, tap.addr)
	c, _ := l.Dial(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	search := func(replyBytes int) *milvuspb.SearchResults {
		t.Helper()
		resp, err := c.Search(ctx, &milvuspb.SearchRequest{CollectionName: "demo", Nq: 1, SearchParams: []*commonpb.KeyValuePair{
			{Key: fakemilvus.ParamResultBytes, Value: strconv.Itoa(replyBytes)}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for range 20 {
		search(3 << 10)
	}
	if ups := tap.streamUpdates(); len(ups) != 0 {
		t.Errorf("20 Searches of 3 KiB replies sent the backend %d stream WINDOW_UPDATEs (%v); want none", len(ups), ups)
	}

	const big = 3 << 20
	resp := search(big)
	if got := len(resp.GetResults().GetFieldsData()[0].GetVectors().GetBinaryVector()); got < big/2 {
		t.Fatalf("a %d-byte reply arrived with %d bytes of padding", big, got)
	}
	var grown bool
	for _, inc := range tap.streamUpdates() {
		grown = grown || inc >= 512<<10
	}
	if !grown {
		t.Errorf("a %d-byte reply was given back its window as %v: never grown past its first 64 KiB", big, tap.streamUpdates())
	}
}

// insertMessage is a gRPC message (length prefix and InsertRequest) of about size bytes.
func insertMessage(t *testing.T, size int) []byte {
	const dim = 8
	rows := size / (4 * dim)
	req := &milvuspb.InsertRequest{CollectionName: "demo", NumRows: uint32(rows), FieldsData: []*schemapb.FieldData{{
		Type: schemapb.DataType_FloatVector, FieldName: "vector",
		Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: dim,
			Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: make([]float32, rows*dim)}}}},
	}}}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(b))), b...)
}

// uploader is a raw HTTP/2 client of one stream that sends as far as its windows allow.
type uploader struct {
	fr   *http2.Framer
	wmu  sync.Mutex // writes
	mu   sync.Mutex // what follows
	cond *sync.Cond

	streamWin, connWin       int64
	streamWindow, connWindow int64 // what the balancer announced
	updates                  []windowUpdate
	status                   string
}

type windowUpdate struct {
	conn, first bool
	inc         int64
}

// send writes stream 1's HEADERS and msg as DATA frames within the windows.
func (u *uploader) send(t *testing.T, msg []byte) {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", lbtest.Host},
		{":path", "/milvus.proto.milvus.MilvusService/Insert"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	u.mu.Lock()
	for u.streamWindow == 0 { // the balancer's SETTINGS come first
		u.cond.Wait()
	}
	u.mu.Unlock()
	u.write(t, func() error {
		return u.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true})
	})
	for len(msg) > 0 {
		u.mu.Lock()
		for min(u.streamWin, u.connWin) <= 0 {
			u.cond.Wait()
		}
		n := int(min(int64(len(msg)), u.streamWin, u.connWin, 16384))
		u.streamWin -= int64(n)
		u.connWin -= int64(n)
		u.mu.Unlock()
		p := msg[:n]
		msg = msg[n:]
		u.write(t, func() error { return u.fr.WriteData(1, len(msg) == 0, p) })
	}
}

func (u *uploader) write(t *testing.T, f func() error) {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

// read handles the balancer's frames until stream 1 ends.
func (u *uploader) read() error {
	u.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := u.fr.ReadFrame()
		if err != nil {
			return err
		}
		u.mu.Lock()
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				win, _ := f.Value(http2.SettingInitialWindowSize)
				u.streamWindow, u.streamWin = int64(win), int64(win)
				u.wmu.Lock()
				_ = u.fr.WriteSettingsAck()
				u.wmu.Unlock()
			}
		case *http2.WindowUpdateFrame:
			inc := int64(f.Increment)
			conn := f.StreamID == 0
			first := conn && u.connWindow == 0
			if conn {
				u.connWin += inc
				if first {
					u.connWindow = u.connWin
				}
			} else {
				u.streamWin += inc
			}
			u.updates = append(u.updates, windowUpdate{conn: conn, first: first, inc: inc})
		case *http2.MetaHeadersFrame:
			if s := f.PseudoValue("status"); s == "" || f.StreamEnded() {
				for _, hf := range f.RegularFields() {
					if hf.Name == "grpc-status" {
						u.status = hf.Value
					}
				}
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				u.wmu.Lock()
				_ = u.fr.WritePing(true, f.Data)
				u.wmu.Unlock()
			}
		}
		ended := f.Header().StreamID == 1 && f.Header().Flags.Has(http2.FlagHeadersEndStream)
		u.cond.Broadcast()
		u.mu.Unlock()
		if ended {
			return nil
		}
	}
}
