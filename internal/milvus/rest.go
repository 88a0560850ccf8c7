package milvus

import (
	"bytes"
	"encoding/json"
	"sync"
)

// RESTBodyPrefix is how much of a Milvus REST v2 request body RESTNames reads: its names are
// top-level keys that clients write first ({"dbName": ..., "collectionName": ..., "data":
// [...]}); a body that names them after this many bytes is not read further.
const RESTBodyPrefix = 16 << 10

// RESTNames reads the database and collection a Milvus REST v2 request names (its
// top-level "dbName" and "collectionName" strings) from the start of its JSON body, kept
// as the body passes (at most RESTBodyPrefix bytes; nothing else of the body is kept).
// Write and Result may be called from different goroutines: net/http's transport may
// still be sending the body when the call ends.
type RESTNames struct {
	mu     sync.Mutex
	prefix []byte
}

// Write takes the next bytes of the body and reports whether it wants more.
func (s *RESTNames) Write(p []byte) (more bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(len(p), RESTBodyPrefix-len(s.prefix))
	s.prefix = append(s.prefix, p[:n]...)
	return len(s.prefix) < RESTBodyPrefix
}

// Result is what the body named so far ("" for a name it did not give, or gave as
// something else than a string of at most 256 bytes).
func (s *RESTNames) Result() (db, collection string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dec := json.NewDecoder(bytes.NewReader(s.prefix))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			break
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			break // the prefix ends inside this value
		}
		var v string
		if json.Unmarshal(raw, &v) != nil || len(v) > valueCap { // as long as gRPC names are read
			continue
		}
		switch key {
		case "dbName":
			db = v
		case "collectionName":
			collection = v
		}
	}
	return db, collection
}
