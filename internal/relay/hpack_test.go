package relay

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// Blocks from the remembering encoder decode, in sequence, to exactly the fields given,
// through insertions, evictions, table size changes, tables forgotten and sensitive
// fields; and a list repeated with the table unchanged is copied, not encoded again.
func TestHeaderEncoderBlocksDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	e := newHeaderEncoder()
	var got []hpack.HeaderField
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) { got = append(got, f) })
	lists := make([][]hpack.HeaderField, 40)
	for i := range lists {
		lists[i] = []hpack.HeaderField{
			{Name: ":status", Value: "200"},
			{Name: "content-type", Value: "application/grpc"},
			{Name: "x-request", Value: strconv.Itoa(i % 13)},
			{Name: "authorization", Value: "Basic " + strconv.Itoa(i%3), Sensitive: true},
		}
		if i%4 == 0 {
			// Values long enough to evict others from the 4 KiB table.
			lists[i] = append(lists[i], hpack.HeaderField{Name: "x-big", Value: string(rune('a'+i%26)) + strconv.Itoa(rng.IntN(1e6)) + string(make([]byte, 900))})
		}
	}
	hits := 0
	resized := false
	tableSize := uint32(4096)
	var fields []hpack.HeaderField
	for n := range 5000 {
		if n%997 == 0 && n > 0 {
			// A peer lowering its SETTINGS_HEADER_TABLE_SIZE: the encoder must shrink its
			// table and say so at the start of its next block. (Raising the limit
			// changes nothing: the table stays as small as it is.)
			size := []uint32{1024, 256, 4096, 128, 2048}[n/997%5]
			e.setMaxDynamicTableSizeLimit(size)
			resized = size < tableSize
			tableSize = min(tableSize, size)
		} else {
			// Else a random list; after a resize the last one again, which the encoder
			// may remember from before the resize.
			fields = lists[rng.IntN(len(lists))]
		}
		forgot := n%331 == 0 && n > 0
		if forgot {
			// A connection gone quiet empties its table (forget): the next block empties
			// the peer's (a size update to 0 first), and the table is as large as the
			// peer's current limit allows again.
			e.forget()
			tableSize = e.limit
		}
		if fields == nil {
			fields = lists[0]
		}
		before := e.epoch
		memo := len(e.memo)
		hit := e.memoHit(fields)
		block := e.encode(fields)
		sizeUpdate := len(block) > 0 && block[0]&0xe0 == 0x20
		if resized && !sizeUpdate {
			t.Fatalf("block %d, the first after a table size change, does not start with a size update (RFC 7541 §4.2)", n)
		}
		if forgot && (hit || len(block) == 0 || block[0] != 0x20) {
			t.Fatalf("block %d, the first after forget, starts % x, not with a size update to 0", n, block[:min(len(block), 4)])
		}
		if hit && sizeUpdate {
			t.Fatalf("block %d was remembered with a table size update in it", n)
		}
		resized = false
		got = got[:0]
		if _, err := dec.Write(block); err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		if err := dec.Close(); err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		if !sameFields(got, fields) {
			t.Fatalf("block %d decoded to %v, want %v", n, got, fields)
		}
		if e.epoch == before && len(e.memo) == memo && e.memoHit(fields) {
			hits++
		}
	}
	if hits < 1000 {
		t.Errorf("%d of 5000 blocks were copied from memory, want most once the table settles", hits)
	}
}

// memoHit reports whether fields are remembered in the current epoch.
func (e *headerEncoder) memoHit(fields []hpack.HeaderField) bool {
	for i := range e.memo {
		if m := &e.memo[i]; m.epoch == e.epoch && sameFields(m.fields, fields) {
			return true
		}
	}
	return false
}

// A peer that lowers its table size gets the size update at the start of the next block,
// even when that block's fields were remembered from before (RFC 7541 §4.2).
func TestHeaderEncoderSignalsTableShrink(t *testing.T) {
	e := newHeaderEncoder()
	fields := []hpack.HeaderField{{Name: "content-type", Value: "application/grpc"}, {Name: "x-request", Value: "1"}}
	e.encode(fields) // literals, inserted into the table
	e.encode(fields) // indexed: remembered
	if !e.memoHit(fields) {
		t.Fatal("an indexed block was not remembered")
	}
	e.setMaxDynamicTableSizeLimit(0)
	if b := e.encode(fields); len(b) == 0 || b[0]&0xe0 != 0x20 {
		t.Fatalf("the block after the peer's table size went to 0 starts %x, not with a size update", b)
	}
}
