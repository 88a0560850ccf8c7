package milvus

import (
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Class is what a MilvusService method does, for routing, retries, limits and the cache.
type Class uint8

const (
	// Admin: users, roles, privileges, resource groups, replication, anything unknown.
	Admin Class = iota
	// Read: searches, queries and every other method that changes nothing.
	Read
	// Write: inserts, upserts, deletes, imports, flushes: data changes.
	Write
	// DDL: schema and state changes of databases, collections, partitions, indexes and
	// aliases, load and release included.
	DDL
)

var classNames = [...]string{Admin: "admin", Read: "read", Write: "write", DDL: "ddl"}

func (c Class) String() string { return classNames[c] }

// ParseClass reads a class name ("read", "write", "ddl", "admin").
func ParseClass(s string) (Class, bool) {
	for c, n := range classNames {
		if n == s {
			return Class(c), true
		}
	}
	return Admin, false
}

// byPrivilege classifies the privileges Milvus checks for a method (the
// common.privilege_ext_obj option of each request message in milvus.proto): the method is classified
// by what it needs the right to do, so a method added to milvus-proto with an existing
// privilege is classified without a change here. Privileges not listed are Admin.
var byPrivilege = map[commonpb.ObjectPrivilege]Class{
	commonpb.ObjectPrivilege_PrivilegeSearch:                Read,
	commonpb.ObjectPrivilege_PrivilegeQuery:                 Read,
	commonpb.ObjectPrivilege_PrivilegeDescribeCollection:    Read,
	commonpb.ObjectPrivilege_PrivilegeShowCollections:       Read,
	commonpb.ObjectPrivilege_PrivilegeGetStatistics:         Read,
	commonpb.ObjectPrivilege_PrivilegeIndexDetail:           Read,
	commonpb.ObjectPrivilege_PrivilegeGetLoadingProgress:    Read,
	commonpb.ObjectPrivilege_PrivilegeGetLoadState:          Read,
	commonpb.ObjectPrivilege_PrivilegeListDatabases:         Read,
	commonpb.ObjectPrivilege_PrivilegeDescribeDatabase:      Read,
	commonpb.ObjectPrivilege_PrivilegeShowPartitions:        Read,
	commonpb.ObjectPrivilege_PrivilegeHasPartition:          Read,
	commonpb.ObjectPrivilege_PrivilegeGetFlushState:         Read,
	commonpb.ObjectPrivilege_PrivilegeDescribeAlias:         Read,
	commonpb.ObjectPrivilege_PrivilegeListAliases:           Read,
	commonpb.ObjectPrivilege_PrivilegeGetImportProgress:     Read,
	commonpb.ObjectPrivilege_PrivilegeListImport:            Read,
	commonpb.ObjectPrivilege_PrivilegeInsert:                Write,
	commonpb.ObjectPrivilege_PrivilegeDelete:                Write,
	commonpb.ObjectPrivilege_PrivilegeUpsert:                Write,
	commonpb.ObjectPrivilege_PrivilegeImport:                Write,
	commonpb.ObjectPrivilege_PrivilegeFlush:                 Write,
	commonpb.ObjectPrivilege_PrivilegeFlushAll:              Write,
	commonpb.ObjectPrivilege_PrivilegeCreateCollection:      DDL,
	commonpb.ObjectPrivilege_PrivilegeDropCollection:        DDL,
	commonpb.ObjectPrivilege_PrivilegeRenameCollection:      DDL,
	commonpb.ObjectPrivilege_PrivilegeAddCollectionField:    DDL,
	commonpb.ObjectPrivilege_PrivilegeLoad:                  DDL,
	commonpb.ObjectPrivilege_PrivilegeRelease:               DDL,
	commonpb.ObjectPrivilege_PrivilegeCompaction:            DDL,
	commonpb.ObjectPrivilege_PrivilegeCreateIndex:           DDL,
	commonpb.ObjectPrivilege_PrivilegeDropIndex:             DDL,
	commonpb.ObjectPrivilege_PrivilegeCreatePartition:       DDL,
	commonpb.ObjectPrivilege_PrivilegeDropPartition:         DDL,
	commonpb.ObjectPrivilege_PrivilegeCreateAlias:           DDL,
	commonpb.ObjectPrivilege_PrivilegeDropAlias:             DDL,
	commonpb.ObjectPrivilege_PrivilegeCreateDatabase:        DDL,
	commonpb.ObjectPrivilege_PrivilegeDropDatabase:          DDL,
	commonpb.ObjectPrivilege_PrivilegeAlterDatabase:         DDL,
	commonpb.ObjectPrivilege_PrivilegeListResourceGroups:    Admin,
	commonpb.ObjectPrivilege_PrivilegeDescribeResourceGroup: Admin,
}

// readOnlyPrivileges are the Admin privileges that only look: their methods change
// nothing, and may be retried like reads.
var readOnlyPrivileges = map[commonpb.ObjectPrivilege]bool{
	commonpb.ObjectPrivilege_PrivilegeSelectOwnership:           true,
	commonpb.ObjectPrivilege_PrivilegeSelectUser:                true,
	commonpb.ObjectPrivilege_PrivilegeListResourceGroups:        true,
	commonpb.ObjectPrivilege_PrivilegeDescribeResourceGroup:     true,
	commonpb.ObjectPrivilege_PrivilegeListPrivilegeGroups:       true,
	commonpb.ObjectPrivilege_PrivilegeListFileResources:         true,
	commonpb.ObjectPrivilege_PrivilegeGetReplicateConfiguration: true,
}

// readPrefixes classify the methods that need no privilege of their own (HasCollection,
// ShowCollections, GetVersion, CheckHealth, ...): by the verb milvus.proto names them
// with, which for these methods is what they do. Connect registers the client's
// identity again each time; it changes nothing a second call would not.
var readPrefixes = []string{"Get", "Describe", "Has", "List", "Show", "Check", "Select", "Connect"}

// classify finds a method's class and whether it changes nothing (read-only: safe to
// send again), from its descriptor.
func classify(md protoreflect.MethodDescriptor) (Class, bool) {
	name := string(md.Name())
	if ext, ok := proto.GetExtension(md.Input().Options(), commonpb.E_PrivilegeExtObj).(*commonpb.PrivilegeExt); ok && ext != nil &&
		ext.ObjectPrivilege != commonpb.ObjectPrivilege_PrivilegeAll {
		c, known := byPrivilege[ext.ObjectPrivilege]
		if !known {
			c = Admin
		}
		return c, c == Read || readOnlyPrivileges[ext.ObjectPrivilege]
	}
	for _, p := range readPrefixes {
		if strings.HasPrefix(name, p) {
			return Read, true
		}
	}
	return Admin, false
}

// serviceDescriptor is MilvusService's descriptor, for the method options.
func serviceDescriptor() protoreflect.ServiceDescriptor {
	return milvuspb.File_milvus_proto.Services().ByName("MilvusService")
}
