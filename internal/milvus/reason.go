package milvus

import "strings"

// A Status reason is Milvus's own text, but Milvus quotes the request in some of them: a
// filter that does not parse comes back whole ("cannot parse expression: <filter>, error:
// ..."; milvus-lite's parser prints it on a line of its own under the error), and values
// are quoted ("... '<value>' ...", "invalid parameter[expected=...][actual=<value>]").
// Logs, metrics, the admin page and spans must carry no request content, so the reason
// they get stops where Milvus starts quoting: at the first line break, at the first quote
// character, after "expression:" or "expr:", and after "actual=". What is kept says what
// went wrong ("unexpected character", "cannot parse expression:", "collection not
// found[database=default][collection=books]"); a reason that was cut ends in "…".
const reasonCut = " …"

// reasonQuotes are the words after which Milvus puts request content.
var reasonQuotes = [...]string{"expression:", "expr:", "actual="}

// SafeReason is reason up to where it starts to quote the request (see above).
func SafeReason(reason string) string {
	end := strings.IndexAny(reason, "\n\r\"'`")
	if end < 0 {
		end = len(reason)
	}
	for _, q := range reasonQuotes {
		if i := strings.Index(reason[:end], q); i >= 0 {
			end = i + len(q)
		}
	}
	if end == len(reason) {
		return reason
	}
	return strings.TrimRight(reason[:end], " \t") + reasonCut
}
