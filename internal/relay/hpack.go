package relay

import (
	"unsafe"

	"golang.org/x/net/http2/hpack"
)

// headerEncoder encodes one connection's header blocks and remembers the blocks whose
// encoding left the connection's dynamic table as it was: the same fields then encode to
// the same bytes for as long as the table does not change, and gRPC sends the same fields
// call after call, so most blocks are copied rather than encoded again (x/net's Encoder
// looks every field up in two hash tables: a tenth of the relay's CPU under Search). The
// connection's mu is held for all of it.
type headerEncoder struct {
	enc     *hpack.Encoder
	buf     []byte // the block being encoded: the Encoder's writer
	changed bool   // the encoding inserted into the table or resized it
	filled  bool   // the table may hold entries (forget)
	// size is the table size set (setTableSize), limit the peer's
	// SETTINGS_HEADER_TABLE_SIZE: both outlive the Encoder, which forget replaces.
	size, limit uint32
	// epoch counts the table's changes; a remembered block is valid in its epoch only.
	epoch uint64
	memo  []memoBlock
	next  int
}

type memoBlock struct {
	epoch  uint64
	fields []hpack.HeaderField
	block  []byte
}

const (
	memoBlocks   = 8    // blocks remembered per connection
	memoMaxBytes = 1024 // larger blocks are not remembered (nor their field values kept)
)

// defaultTableSize is HPACK's initial table size (RFC 7541 §6.5.2, SETTINGS_HEADER_TABLE_SIZE).
const defaultTableSize = 4096

func newHeaderEncoder() *headerEncoder {
	e := &headerEncoder{size: defaultTableSize, limit: defaultTableSize}
	e.enc = hpack.NewEncoder(e)
	return e
}

// setTableSize sets the size of the table the blocks are encoded with, up to the peer's
// limit; the next block says so.
func (e *headerEncoder) setTableSize(v uint32) {
	e.size = v
	e.enc.SetMaxDynamicTableSize(v)
}

// forget empties the table and lets go of the blocks remembered over it, for a
// connection that went quiet: x/net's table keeps its entries and two maps over them
// (about 0.7 KiB for a gRPC reply's fields) for as long as the connection is open. The
// next block starts with a size update to 0, which empties the peer's table too, and then
// one to the size again (RFC 7541 §4.2: the smallest size since the last block comes
// first).
func (e *headerEncoder) forget() {
	if !e.filled {
		return
	}
	e.enc = hpack.NewEncoder(e)
	e.enc.SetMaxDynamicTableSizeLimit(e.limit)
	e.enc.SetMaxDynamicTableSize(0)
	e.enc.SetMaxDynamicTableSize(e.size)
	e.filled = false
	e.memo, e.next, e.buf = nil, 0, nil
	e.epoch++
}

// Write takes one field's encoding from the Encoder (one Write per field, a pending table
// size update first) and notes whether it changes the table (RFC 7541 §6): a literal with
// incremental indexing (01xxxxxx) or a size update (001xxxxx); indexed fields and
// literals without indexing leave it as it is.
func (e *headerEncoder) Write(p []byte) (int, error) {
	if len(p) > 0 && (p[0]&0xc0 == 0x40 || p[0]&0xe0 == 0x20) {
		e.changed = true
	}
	e.buf = append(e.buf, p...)
	return len(p), nil
}

// encode returns the block for fields, valid until the next call.
func (e *headerEncoder) encode(fields []hpack.HeaderField) []byte {
	for i := range e.memo {
		if m := &e.memo[i]; m.epoch == e.epoch && sameFields(m.fields, fields) {
			return m.block
		}
	}
	e.buf, e.changed = e.buf[:0], false
	for _, f := range fields {
		_ = e.enc.WriteField(f)
	}
	if e.changed {
		e.epoch++
		e.filled = true
		return e.buf
	}
	if len(e.buf) <= memoMaxBytes {
		if len(e.memo) < memoBlocks {
			e.memo = append(e.memo, memoBlock{})
		}
		m := &e.memo[e.next]
		e.next = (e.next + 1) % memoBlocks
		m.epoch = e.epoch
		m.fields = append(m.fields[:0], fields...)
		m.block = append(m.block[:0], e.buf...)
	}
	return e.buf
}

// setMaxDynamicTableSizeLimit applies the peer's SETTINGS_HEADER_TABLE_SIZE; the table may
// shrink, so no remembered block stands.
func (e *headerEncoder) setMaxDynamicTableSizeLimit(v uint32) {
	e.limit = v
	e.enc.SetMaxDynamicTableSizeLimit(v)
	e.epoch++
}

func sameFields(a, b []hpack.HeaderField) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Sensitive != y.Sensitive || !equalString(x.Name, y.Name) || !equalString(x.Value, y.Value) {
			return false
		}
	}
	return true
}

// equalString is a == b without a call for the same string: most fields are, call
// after call, the strings of the client's HPACK table or the relay's constants.
func equalString(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}
