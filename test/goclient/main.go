// Command milvus-goclient runs one Milvus session with the official Go client
// (github.com/milvus-io/milvus/client/v2) against an address, directly or through milvus-lb:
// health, create collection, insert, index, load, search, query, delete, drop. It prints one
// line per step and a final PASS or FAIL line, and exits non-zero on any failure.
//
// With -load it instead searches an existing collection from -workers goroutines until
// its standard input ends, with the SDK's own retry on Milvus's rate-limit reply installed
// (load.go), and passes when every call succeeded.
//
// It lives in its own module so that the client's ~100 dependencies stay out of milvus-lb's
// go.mod; the end-to-end tests build it with CGO_ENABLED=0 and run it as a subprocess.
//
//	milvus-goclient -addr 127.0.0.1:19530 -plain
//	milvus-goclient -addr 127.0.0.1:8443 -ca CertificateChain.pem -server-name milvus-demo.milvus.io
//
// With -routing it checks instead the routing of test/e2e's TestRoutingRealMilvus on the
// clusters test/clients/routing_check.py prepared (routing.go); -direct-a is cluster A.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/index"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	dim  = 8
	rows = 100
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19530", "host:port of Milvus or of milvus-lb")
	plain := flag.Bool("plain", false, "plaintext h2c (straight to milvus-lite); default TLS")
	caFile := flag.String("ca", "", "PEM file with the CA that signed the server's certificate")
	serverName := flag.String("server-name", "", "TLS server name (SNI and verification), as pymilvus' server_name")
	timeout := flag.Duration("timeout", 60*time.Second, "deadline for the whole session")
	routing := flag.Bool("routing", false, "check TestRoutingRealMilvus's routing instead of a session")
	directA := flag.String("direct-a", "", "with -routing: host:port of cluster A, plaintext")
	load := flag.String("load", "", "search this collection (vector field \"vector\", dim 8) until stdin ends")
	workers := flag.Int("workers", 4, "goroutines searching with -load")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	creds, err := transport(*plain, *caFile, *serverName)
	if err != nil {
		fmt.Printf("goclient: FAIL: tls config: %v\n", err)
		os.Exit(1)
	}
	switch {
	case *routing:
		if err = runRouting(ctx, *addr, creds, *directA); err == nil {
			fmt.Printf("goclient: PASS: routing by database, collection and consistency level via %s\n", *addr)
		}
	case *load != "":
		err = runLoad(ctx, *addr, creds, *load, *workers)
	default:
		err = run(ctx, *addr, creds)
	}
	if err != nil {
		fmt.Printf("goclient: FAIL: %v\n", err)
		os.Exit(1)
	}
}

func step(name string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Printf("goclient: %s ok\n", name)
	return nil
}

func transport(plain bool, caFile, serverName string) (grpc.DialOption, error) {
	if plain {
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", caFile)
		}
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg)), nil
}

func run(ctx context.Context, addr string, creds grpc.DialOption) error {
	// The client's EnableTLSAuth uses system roots with no way to set a CA or server name, so
	// TLS comes in as a dial option after the client's own (the last credentials option wins).
	opts := append([]grpc.DialOption{}, milvusclient.DefaultGrpcOpts...)
	opts = append(opts, creds)
	c, err := milvusclient.New(ctx, &milvusclient.ClientConfig{Address: addr, DialOptions: opts})
	if err := step("connect", err); err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	version, err := c.GetServerVersion(ctx, milvusclient.NewGetServerVersionOption())
	if err := step("version "+version, err); err != nil {
		return err
	}
	if err := step("check health", checkHealth(ctx, c)); err != nil {
		return err
	}

	s := newSession(c)
	if err := step("create collection "+s.name, s.create(ctx)); err != nil {
		return err
	}
	// Drop even when a later step fails, so that reruns against one server stay clean.
	defer s.dropIfLeft(context.WithoutCancel(ctx))
	for _, st := range []struct {
		name string
		do   func(context.Context) error
	}{
		{fmt.Sprintf("insert %d", rows), s.insert},
		{"create index", s.index},
		{"load", s.load},
		{"search", s.search},
		{"query", s.query},
		{"delete", s.delete},
		{"drop", s.drop},
	} {
		if err := step(st.name, st.do(ctx)); err != nil {
			return err
		}
	}
	fmt.Printf("goclient: PASS: %s, %d rows, search/query/delete verified via %s\n", version, rows, addr)
	return nil
}

func checkHealth(ctx context.Context, c *milvusclient.Client) error {
	health, err := c.GetService().CheckHealth(ctx, &milvuspb.CheckHealthRequest{})
	if err == nil && !health.GetIsHealthy() {
		err = fmt.Errorf("is_healthy=false, reasons %v", health.GetReasons())
	}
	return err
}

// session is one collection's life: its rows (id, a tag of four, a vector) and the steps
// that create, fill, search, query, trim and drop it.
type session struct {
	c       *milvusclient.Client
	name    string
	ids     []int64
	tags    []string
	vectors [][]float32
	dropped bool
}

func newSession(c *milvusclient.Client) *session {
	s := &session{c: c, name: fmt.Sprintf("goclient_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rows {
		s.ids = append(s.ids, int64(i))
		s.tags = append(s.tags, fmt.Sprintf("tag%d", i%4))
		v := make([]float32, dim)
		for j := range dim {
			v[j] = r.Float32()
		}
		s.vectors = append(s.vectors, v)
	}
	return s
}

func (s *session) create(ctx context.Context) error {
	schema := entity.NewSchema().WithName(s.name).
		WithField(entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true)).
		WithField(entity.NewField().WithName("tag").WithDataType(entity.FieldTypeVarChar).WithMaxLength(32)).
		WithField(entity.NewField().WithName("vector").WithDataType(entity.FieldTypeFloatVector).WithDim(dim))
	return s.c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(s.name, schema))
}

func (s *session) insert(ctx context.Context) error {
	inserted, err := s.c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(s.name).
		WithInt64Column("id", s.ids).WithVarcharColumn("tag", s.tags).WithFloatVectorColumn("vector", dim, s.vectors))
	if err == nil && inserted.InsertCount != rows {
		err = fmt.Errorf("inserted %d rows, want %d", inserted.InsertCount, rows)
	}
	return err
}

func (s *session) index(ctx context.Context) error {
	task, err := s.c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(s.name, "vector", index.NewAutoIndex(entity.L2)))
	if err != nil {
		return err
	}
	return task.Await(ctx)
}

func (s *session) load(ctx context.Context) error {
	task, err := s.c.LoadCollection(ctx, milvusclient.NewLoadCollectionOption(s.name))
	if err != nil {
		return err
	}
	return task.Await(ctx)
}

// search looks for row 7's own vector, which must come back first, at distance ~0.
func (s *session) search(ctx context.Context) error {
	results, err := s.c.Search(ctx, milvusclient.NewSearchOption(s.name, 3, []entity.Vector{entity.FloatVector(s.vectors[7])}).
		WithANNSField("vector").WithOutputFields("tag").WithConsistencyLevel(entity.ClStrong))
	if err != nil {
		return err
	}
	return checkSearch(results)
}

func (s *session) query(ctx context.Context) error {
	rs, err := s.c.Query(ctx, milvusclient.NewQueryOption(s.name).WithFilter(`tag == "tag1"`).
		WithOutputFields("id", "tag").WithConsistencyLevel(entity.ClStrong))
	if err == nil && rs.ResultCount != rows/4 {
		err = fmt.Errorf("query tag1 returned %d rows, want %d", rs.ResultCount, rows/4)
	}
	return err
}

// delete removes ids 0-4 and checks that 5 of the first 10 are left.
func (s *session) delete(ctx context.Context) error {
	if _, err := s.c.Delete(ctx, milvusclient.NewDeleteOption(s.name).WithInt64IDs("id", []int64{0, 1, 2, 3, 4})); err != nil {
		return err
	}
	rs, err := s.c.Query(ctx, milvusclient.NewQueryOption(s.name).WithFilter("id < 10").
		WithOutputFields("id").WithConsistencyLevel(entity.ClStrong))
	if err == nil && rs.ResultCount != 5 {
		err = fmt.Errorf("after deleting ids 0-4, id < 10 matches %d rows, want 5", rs.ResultCount)
	}
	return err
}

func (s *session) drop(ctx context.Context) error {
	if err := s.c.DropCollection(ctx, milvusclient.NewDropCollectionOption(s.name)); err != nil {
		return err
	}
	s.dropped = true
	has, err := s.c.HasCollection(ctx, milvusclient.NewHasCollectionOption(s.name))
	if err == nil && has {
		err = errors.New("collection still exists after drop")
	}
	return err
}

// dropIfLeft drops the collection if the session ended before its drop step.
func (s *session) dropIfLeft(ctx context.Context) {
	if !s.dropped {
		_ = s.c.DropCollection(ctx, milvusclient.NewDropCollectionOption(s.name))
	}
}

func checkSearch(results []milvusclient.ResultSet) error {
	if len(results) != 1 {
		return fmt.Errorf("%d result sets for 1 query vector", len(results))
	}
	rs := results[0]
	if rs.Err != nil {
		return rs.Err
	}
	if rs.ResultCount != 3 {
		return fmt.Errorf("%d hits, want 3", rs.ResultCount)
	}
	top, err := rs.IDs.GetAsInt64(0)
	if err != nil {
		return err
	}
	if top != 7 {
		return fmt.Errorf("top hit id %d (score %v), want 7", top, rs.Scores[0])
	}
	return nil
}
