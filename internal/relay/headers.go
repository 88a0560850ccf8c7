package relay

import (
	"errors"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/bufs"
)

// headerBlock is a decoded header block: a HEADERS frame and the CONTINUATION frames that
// complete it. Each connection decodes into one block of its own, reused block after
// block: x/net's Framer.ReadMetaHeaders allocates a MetaHeadersFrame, an emit closure and
// a growing field slice for every block, half of the relay's allocations under load. A
// block and its Fields are valid until the connection reads its next frame; the strings in
// them stay valid.
type headerBlock struct {
	*http2.HeadersFrame
	// Fields are the decoded fields in order: the pseudo-header fields first (a block
	// that has one after a regular field is refused).
	Fields []hpack.HeaderField
	// Truncated is set when the fields were over the header list limit; Fields then
	// hold those before the limit.
	Truncated bool
	pseudo    int // Fields[:pseudo] are pseudo-header fields
	// at[k] is 1 + the index in Fields of pseudo-header field k (pMethod...), 0 when the
	// block has none: noted once, while checkPseudos walks them, instead of looked up by
	// name each time a field is asked for.
	at [nPseudo]uint8
}

// The pseudo-header fields (RFC 9113 §8.3, RFC 8441 §4), as indexes of headerBlock.at.
const (
	pMethod = iota
	pScheme
	pAuthority
	pPath
	pProtocol
	pStatus
	nPseudo
)

// Pseudo is the value of pseudo-header field k (pMethod...), or "".
func (b *headerBlock) Pseudo(k int) string {
	if i := b.at[k]; i > 0 {
		return b.Fields[i-1].Value
	}
	return ""
}

// PseudoFields are the pseudo-header fields.
func (b *headerBlock) PseudoFields() []hpack.HeaderField { return b.Fields[:b.pseudo] }

// RegularFields are the fields that are not pseudo-header fields.
func (b *headerBlock) RegularFields() []hpack.HeaderField { return b.Fields[b.pseudo:] }

// blockDecoder decodes a connection's header blocks with the checks x/net's readMetaFrame
// makes (RFC 9113 §8.2 and §8.3): field names lower case and valid, values valid,
// pseudo-header fields first, known, not repeated and not mixing request and response,
// the header list within maxList bytes (RFC 9113 §6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE,
// counted as RFC 7541 §4.1 sizes; past it Truncated is set and decoding stops), and a
// connection error for a block far over the limit or with more fragments after an invalid
// field. Reader goroutine only.
type blockDecoder struct {
	dec   *hpack.Decoder
	block headerBlock
	max   uint32

	// State of the block being decoded.
	sawRegular     bool
	invalid        error
	headersRemain  uint32
	trailersRemain uint32
}

// errInvalidField is the stream error of a block with a malformed field. The detail is
// not sent anywhere: the stream is reset with PROTOCOL_ERROR.
var errInvalidField = errors.New("invalid header field")

func newBlockDecoder(maxList uint32) *blockDecoder {
	if maxList == 0 {
		maxList = 16 << 20 // x/net's default for an unset limit
	}
	d := &blockDecoder{max: maxList}
	d.dec = hpack.NewDecoder(4096, d.emitter())
	d.dec.SetMaxStringLength(int(min(maxList, 1<<30)))
	return d
}

// read decodes the block that hf starts, reading its CONTINUATION frames from fr (the
// Framer checks that nothing else comes between them). It returns a ConnectionError for
// what breaks the connection's header compression state or is far over the limit, a
// StreamError for a malformed block.
func (d *blockDecoder) read(fr *http2.Framer, hf *http2.HeadersFrame) (*headerBlock, error) {
	b := &d.block
	if b.Fields == nil {
		b.Fields = blockFields.Get()
	}
	clear(b.Fields)
	b.HeadersFrame, b.Fields, b.Truncated, b.pseudo, b.at = hf, b.Fields[:0], false, 0, [nPseudo]uint8{}
	d.sawRegular, d.invalid = false, nil
	d.headersRemain, d.trailersRemain = d.max, d.max
	d.dec.SetEmitEnabled(true)
	frag, ended := hf.HeaderBlockFragment(), hf.HeadersEnded()
	for {
		// A fragment more than twice what may still be accepted, or any fragment after
		// the limit was passed or a field was invalid, is not worth decoding: the
		// connection goes (as in x/net, which cannot reset the stream at this point).
		if int64(len(frag)) > 2*int64(d.headersRemain+d.trailersRemain) || d.invalid != nil {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if _, err := d.dec.Write(frag); err != nil {
			return nil, http2.ConnectionError(http2.ErrCodeCompression)
		}
		if ended {
			break
		}
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		cf := f.(*http2.ContinuationFrame) // the Framer's frame order check
		frag, ended = cf.HeaderBlockFragment(), cf.HeadersEnded()
	}
	if err := d.dec.Close(); err != nil {
		return nil, http2.ConnectionError(http2.ErrCodeCompression)
	}
	if d.invalid == nil {
		d.invalid = b.checkPseudos()
	}
	if d.invalid != nil {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol, Cause: d.invalid}
	}
	return b, nil
}

// blockFields keeps the field lists of parked connections' decoders: a list grown from
// nil by append took five allocations, about 1 KiB, each time a connection resumed. Not
// fieldsPool: a sync.Pool keeps what a burst of parks gives back (thousands of lists)
// until two collections have passed (bufs.Free).
var blockFields = bufs.NewFree(256, func() []hpack.HeaderField { return make([]hpack.HeaderField, 0, 24) })

// release gives the list of fields back while the connection is parked, cleared: the last
// block's fields keep its strings. Past its length nothing is left: read clears the
// fields of each block before the next.
func (d *blockDecoder) release() {
	if f := d.block.Fields; f != nil && cap(f) <= maxKeptFields {
		clear(f)
		blockFields.Put(f[:0])
	}
	d.block = headerBlock{}
}

// emitter returns what hpack calls with each decoded field. A function literal rather
// than the method value of a method, which is a wrapper calling the method: a second call
// for every field, about 22 instructions each (callgrind).
func (d *blockDecoder) emitter() func(hpack.HeaderField) {
	return func(f hpack.HeaderField) {
		pseudo := strings.HasPrefix(f.Name, ":")
		switch {
		case !validFieldValue(f.Value):
			d.invalid = errInvalidField
		case pseudo && d.sawRegular:
			d.invalid = errInvalidField // a pseudo-header field after a regular one
		case !pseudo:
			d.sawRegular = true
			if !validFieldName(f.Name) {
				d.invalid = errInvalidField
			}
		}
		if d.invalid != nil {
			d.dec.SetEmitEnabled(false)
			return
		}
		remain, size := &d.headersRemain, f.Size()
		if f.Name == "trailer" {
			// As x/net counts it: each name a trailer announces as a field of its own.
			n := uint32(strings.Count(f.Value, ",") + 1)
			remain, size = &d.trailersRemain, uint32(len(f.Value))-n+1+n*hpack.HeaderField{}.Size()
		}
		if size > *remain {
			d.dec.SetEmitEnabled(false)
			d.block.Truncated = true
			d.headersRemain, d.trailersRemain = 0, 0
			return
		}
		*remain -= size
		d.block.Fields = append(d.block.Fields, f)
		if pseudo {
			d.block.pseudo++
		}
	}
}

// checkPseudos refuses unknown and repeated pseudo-header fields, and a block with both
// request and response ones (RFC 9113 §8.3), and notes where each is (b.at).
func (b *headerBlock) checkPseudos() error {
	for i, f := range b.PseudoFields() {
		k := pseudoIndex(f.Name)
		if k < 0 || b.at[k] != 0 {
			return errInvalidField
		}
		b.at[k] = uint8(i + 1)
	}
	if b.at[pStatus] != 0 && b.pseudo > 1 {
		return errInvalidField // a response's one pseudo-header field beside a request's
	}
	return nil
}

func pseudoIndex(name string) int {
	switch name {
	case ":method":
		return pMethod
	case ":scheme":
		return pScheme
	case ":authority":
		return pAuthority
	case ":path":
		return pPath
	case ":protocol":
		return pProtocol
	case ":status":
		return pStatus
	}
	return -1
}
