package bufs

import "testing"

// TestTrimDropsWhatAPeriodDidNotUse: after a burst took many buffers and gave them back,
// the list keeps them until a whole trim period passes without their use; a list in
// steady use keeps what its busiest moment of the period took.
func TestTrimDropsWhatAPeriodDidNotUse(t *testing.T) {
	l := New(64, 1024)
	take := func(n int) {
		held := make([][]byte, n)
		for i := range held {
			held[i] = l.Get()
		}
		for _, b := range held {
			l.Put(b)
		}
	}
	take(40) // the burst
	if got := l.Len(); got != 40 {
		t.Fatalf("after the burst the list keeps %d buffers, want 40", got)
	}
	Trim() // the period of the burst: every buffer was in use in it
	if got := l.Len(); got != 40 {
		t.Fatalf("trim right after the burst left %d buffers, want 40", got)
	}
	take(3) // steady use: 3 at a time
	take(2)
	Trim()
	if got := l.Len(); got != 3 {
		t.Fatalf("after a period using 3 at most the list keeps %d buffers, want 3", got)
	}
	Trim() // a period with no use at all
	if got := l.Len(); got != 0 {
		t.Fatalf("after an unused period the list keeps %d buffers, want 0", got)
	}
	take(5) // used again: kept again
	if got := l.Len(); got != 5 {
		t.Fatalf("after use the list keeps %d buffers, want 5", got)
	}
}

// TestGetAndPut: a kept buffer is reused, emptied; the list keeps Max at most.
func TestGetAndPut(t *testing.T) {
	l := New(2, 16)
	b := l.Get()
	if len(b) != 0 || cap(b) < 16 {
		t.Fatalf("new buffer len %d cap %d", len(b), cap(b))
	}
	b = append(b, "data"...)
	l.Put(b)
	if c := l.Get(); len(c) != 0 || &c[:1][0] != &b[0] {
		t.Fatal("the kept buffer was not reused, emptied")
	}
	for range 3 {
		l.Put(make([]byte, 0, 16))
	}
	if got := l.Len(); got != 2 {
		t.Fatalf("kept %d, want Max 2", got)
	}
}

// TestFreeOfOtherValues: a Free of values other than byte buffers makes one with its make
// function when it keeps none, gives back the kept ones, most recent first, keeps Max at
// most, and is trimmed like the byte buffers' lists.
func TestFreeOfOtherValues(t *testing.T) {
	type framer struct{ n int }
	made := 0
	l := NewFree(2, func() *framer { made++; return &framer{n: made} })
	a, b := l.Get(), l.Get()
	if made != 2 || a == b {
		t.Fatalf("two Gets from an empty list made %d values", made)
	}
	l.Put(a)
	l.Put(b)
	l.Put(&framer{})
	if got := l.Len(); got != 2 {
		t.Fatalf("kept %d, want Max 2", got)
	}
	if got := l.Get(); got != b {
		t.Fatalf("Get returned value %d, want the last one put back (%d)", got.n, b.n)
	}
	l.Put(b)
	Trim() // b and a were both taken in this period
	Trim() // and neither in this one
	if got := l.Len(); got != 0 {
		t.Fatalf("after an unused period the list keeps %d values, want 0", got)
	}
	if l.Get(); made != 3 {
		t.Fatalf("a Get from the trimmed list made %d values in all, want 3", made)
	}
}
