package relay

// SpareStreams returns the streams spareStreams keeps, top first, as opaque values to
// compare, and leaves them kept.
func SpareStreams() []any {
	var got []*stream
	for st := spareStreams.Get(); st != nil; st = spareStreams.Get() {
		got = append(got, st)
	}
	out := make([]any, len(got))
	for i := range got {
		out[i] = got[i]
		spareStreams.Put(got[len(got)-1-i])
	}
	return out
}
