package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// TestReloadMovesTraffic is the standalone mode's promise that an edited file takes effect
// without a restart: milvus.yaml first lists one Milvus, then is rewritten to list another,
// and calls through the same client connection reach the new one. The two milvus-lite
// servers have separate data, so a collection that exists on only one of them tells which
// one answered.
func TestReloadMovesTraffic(t *testing.T) {
	g := runGuide(t, testenv.FreePort(t))
	other := testenv.StartMilvusLite(t)

	// A collection only the first Milvus has, created behind the balancer's back.
	const marker = "only_on_first"
	direct := dial(t, g.lite.Addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := createCollection(ctx, direct, marker); err != nil {
		t.Fatalf("create %s directly on the first Milvus: %v", marker, err)
	}

	client := dial(t, fmt.Sprintf("%s:%d", g.address, g.port), g.tlsConfig(t))
	if !hasCollection(ctx, t, client, marker) {
		t.Fatalf("through milvus-lb, HasCollection(%s) = false before the edit: not reaching the first Milvus", marker)
	}

	// The edit: the EndpointSlice now lists the other Milvus. Written to a temporary file
	// and renamed, as editors and kubectl-style tools do, so no half file is ever read.
	milvusFile := filepath.Join(g.dir, "milvus.yaml")
	tmp := milvusFile + ".tmp"
	writeFile(t, tmp, fmt.Sprintf(milvusYAML, other.Port))
	if err := os.Rename(tmp, milvusFile); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for hasCollection(ctx, t, client, marker) {
		if time.Now().After(deadline) {
			t.Fatalf("30 s after milvus.yaml was edited, calls still reach the first Milvus")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// And the new one really serves: a call that only succeeds against a working Milvus.
	if err := createCollection(ctx, client, "after_reload"); err != nil {
		t.Fatalf("CreateCollection through milvus-lb after the edit: %v", err)
	}
	if !hasCollection(ctx, t, dial(t, other.Addr, nil), "after_reload") {
		t.Fatalf("the collection created after the edit is not on the second Milvus")
	}
}

func (g *guide) tlsConfig(t *testing.T) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(g.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", g.ca)
	}
	return &tls.Config{RootCAs: pool, ServerName: host}
}

// dial opens a gRPC client to addr, with TLS when cfg is set; closed when the test ends.
func dial(t *testing.T, addr string, cfg *tls.Config) milvuspb.MilvusServiceClient {
	t.Helper()
	creds := insecure.NewCredentials()
	if cfg != nil {
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return milvuspb.NewMilvusServiceClient(conn)
}

func hasCollection(ctx context.Context, t *testing.T, c milvuspb.MilvusServiceClient, name string) bool {
	t.Helper()
	resp, err := c.HasCollection(ctx, &milvuspb.HasCollectionRequest{CollectionName: name})
	if err != nil {
		t.Fatalf("HasCollection(%s): %v", name, err)
	}
	if s := resp.GetStatus(); s.GetCode() != 0 {
		t.Fatalf("HasCollection(%s): Milvus error %d: %s", name, s.GetCode(), s.GetReason())
	}
	return resp.GetValue()
}

// createCollection creates a collection through the raw API, with the schema the Milvus
// clients send for "id INT64 primary key, vector FLOAT_VECTOR(8)".
func createCollection(ctx context.Context, c milvuspb.MilvusServiceClient, name string) error {
	schema, err := collectionSchema(name)
	if err != nil {
		return err
	}
	st, err := c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: name, Schema: schema, ShardsNum: 1})
	if err != nil {
		return err
	}
	if st.GetCode() != 0 {
		return fmt.Errorf("Milvus error %d: %s", st.GetCode(), st.GetReason())
	}
	return nil
}

func collectionSchema(name string) ([]byte, error) {
	return proto.Marshal(&schemapb.CollectionSchema{
		Name: name,
		Fields: []*schemapb.FieldSchema{
			{FieldID: 100, Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
			{FieldID: 101, Name: "vector", DataType: schemapb.DataType_FloatVector,
				TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "8"}}},
		},
	})
}
