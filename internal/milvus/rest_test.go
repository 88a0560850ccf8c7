package milvus

import (
	"strings"
	"testing"
)

func TestRESTNames(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, c := range []struct{ body, db, coll string }{
		{`{"dbName":"analytics","collectionName":"books","filter":"id > 0"}`, "analytics", "books"},
		{` { "collectionName" : "b\u00f6oks", "data": [{"id": 1, "vector": [0.1, 0.2]}], "dbName": "x" }`, "x", "böoks"},
		{`{"data":[1,2,3],"collectionName":"books"}`, "", "books"},
		{`{"collectionName":1,"dbName":null}`, "", ""},
		{`{"collectionName":"` + long + `"}`, "", ""},
		{`[1,2]`, "", ""},
		{`not json`, "", ""},
		{``, "", ""},
		// Names after the prefix read are not seen; those before it are.
		{`{"collectionName":"books","data":"` + strings.Repeat("y", RESTBodyPrefix) + `","dbName":"late"}`, "", "books"},
	} {
		var s RESTNames
		for i := 0; i < len(c.body); i += 7 { // in pieces, as a body arrives
			if !s.Write([]byte(c.body[i:min(i+7, len(c.body))])) {
				break
			}
		}
		if db, coll := s.Result(); db != c.db || coll != c.coll {
			t.Errorf("%.60q: db %q collection %q, want %q %q", c.body, db, coll, c.db, c.coll)
		}
	}
}
