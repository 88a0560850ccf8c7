package milvus

import "testing"

// Every method of the Milvus API has a class; these are the ones a Milvus user knows.
func TestClassOfWellKnownMethods(t *testing.T) {
	for name, want := range map[string]struct {
		class    Class
		readOnly bool
	}{
		"Search": {Read, true}, "HybridSearch": {Read, true}, "Query": {Read, true},
		"HasCollection": {Read, true}, "ShowCollections": {Read, true}, "DescribeCollection": {Read, true},
		"GetLoadState": {Read, true}, "DescribeIndex": {Read, true}, "ListDatabases": {Read, true},
		"DescribeAlias": {Read, true}, "ListAliases": {Read, true}, "CheckHealth": {Read, true},
		"GetVersion": {Read, true}, "Connect": {Read, true},
		"Insert": {Write, false}, "Upsert": {Write, false}, "Delete": {Write, false},
		"Import": {Write, false}, "Flush": {Write, false},
		"CreateCollection": {DDL, false}, "DropCollection": {DDL, false}, "LoadCollection": {DDL, false},
		"ReleaseCollection": {DDL, false}, "RenameCollection": {DDL, false}, "AlterAlias": {DDL, false},
		"CreateIndex": {DDL, false}, "DropIndex": {DDL, false}, "CreateDatabase": {DDL, false},
		"TruncateCollection": {DDL, false},
		"CreateCredential":   {Admin, false}, "OperatePrivilege": {Admin, false}, "CreateResourceGroup": {Admin, false},
		"SelectUser": {Admin, true}, "ListResourceGroups": {Admin, true},
		"AllocTimestamp": {Admin, false}, "CreateReplicateStream": {Admin, false},
	} {
		m := Lookup(ServicePrefix + name)
		if m == nil {
			t.Errorf("%s: not a known method", name)
			continue
		}
		if m.Class != want.class || m.ReadOnly != want.readOnly {
			t.Errorf("%s: class %v read-only %v, want %v %v", name, m.Class, m.ReadOnly, want.class, want.readOnly)
		}
	}
}

// No method that changes data or schema may be taken for one that can be sent twice.
func TestOnlyReadOnlyMethodsAreRetryable(t *testing.T) {
	for _, m := range methods {
		if m.ReadOnly && (m.Class == Write || m.Class == DDL) {
			t.Errorf("%s is %v but read-only", m.Name, m.Class)
		}
		if m.Class == Read && !m.ReadOnly {
			t.Errorf("%s is a read but not read-only", m.Name)
		}
	}
	for _, s := range []string{"read", "write", "ddl", "admin"} {
		if c, ok := ParseClass(s); !ok || c.String() != s {
			t.Errorf("ParseClass(%q) = %v, %v", s, c, ok)
		}
	}
	if _, ok := ParseClass("reads"); ok {
		t.Errorf("ParseClass accepted a misspelled class")
	}
}
