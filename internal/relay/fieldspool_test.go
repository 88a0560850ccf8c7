package relay

import (
	"testing"

	"golang.org/x/net/http2/hpack"
)

// Every putFields the package's tests make checks that nothing past the list's length
// was written (putFields clears only to the length).
func init() { checkFieldsTail = true }

// TestPutFieldsCatchesAShortenedList: a list re-sliced shorter before it is given back
// still holds strings past its length, which putFields would not clear; the check the
// tests turn on says so.
func TestPutFieldsCatchesAShortenedList(t *testing.T) {
	var kept *[]hpack.HeaderField
	f := keptList(&kept)
	*f = append(*f, hpack.HeaderField{Name: ":status", Value: "200"}, hpack.HeaderField{Name: "grpc-status", Value: "0"})
	*f = (*f)[:1]
	defer func() {
		if recover() == nil {
			t.Fatal("a list re-sliced shorter was given back unnoticed")
		}
	}()
	putFields(f)
}
