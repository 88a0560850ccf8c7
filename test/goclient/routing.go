package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
	"github.com/milvus-io/milvus/pkg/v2/util/merr"
	"google.golang.org/grpc"
)

// runRouting checks, through milvus-lb, the routing that test/clients/routing_check.py
// checks with pymilvus, on the clusters that script prepared: A (the default route, and
// the primary) and B (tenant_b by milvus-lb's database condition, tenant_c by the ALB's
// http-header condition on the dbname metadata, logs_* collections, and A's standby for
// reads that accept stale data). directA is A itself, to see where a write landed.
func runRouting(ctx context.Context, addr string, creds grpc.DialOption, directA string) error {
	plainA, _ := transport(true, "", "")
	dial := func(db string, more ...grpc.DialOption) (*milvusclient.Client, error) {
		opts := append(append([]grpc.DialOption{}, milvusclient.DefaultGrpcOpts...), creds)
		return milvusclient.New(ctx, &milvusclient.ClientConfig{Address: addr, DBName: db, DialOptions: append(opts, more...)})
	}
	for _, db := range []string{"tenant_b", "tenant_c"} {
		c, err := dial(db)
		if err == nil {
			err = listIs(ctx, c, "only_"+db)
			c.Close(ctx)
		}
		if err := step(fmt.Sprintf("ClientConfig{DBName: %q} (the dbname metadata) reached B", db), err); err != nil {
			return err
		}
	}
	c, err := dial("")
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	if err := routingChecks(ctx, c, directA, plainA); err != nil {
		return err
	}
	return rateLimitChecks(ctx, c, dial)
}

// routingChecks are the checks made on one client of the default database.
func routingChecks(ctx context.Context, c *milvusclient.Client, directA string, plainA grpc.DialOption) error {
	err := listIs(ctx, c, "limited", "only_a", "shared")
	if err := step("the default database is A's", err); err != nil {
		return err
	}
	// The database in the request's db_name field, not in the metadata: the database
	// condition reads it from the message. Only B has tenant_b.
	db, err := c.DescribeDatabase(ctx, milvusclient.NewDescribeDatabaseOption("tenant_b"))
	if err == nil && db.Name != "tenant_b" {
		err = fmt.Errorf("described database %q", db.Name)
	}
	if err := step("DescribeDatabase(tenant_b) (the db_name field) reached B", err); err != nil {
		return err
	}
	for _, use := range []struct {
		db   string
		want []string
	}{{"tenant_c", []string{"only_tenant_c"}}, {"default", []string{"limited", "only_a", "shared"}}} {
		err := c.UseDatabase(ctx, milvusclient.NewUseDatabaseOption(use.db))
		if err == nil {
			err = listIs(ctx, c, use.want...)
		}
		if err := step(fmt.Sprintf("UseDatabase(%s) listed %v", use.db, use.want), err); err != nil {
			return err
		}
	}
	for name, want := range map[string]bool{"logs_2024": true, "logs_2025": false, "only_a": true} {
		has, err := c.HasCollection(ctx, milvusclient.NewHasCollectionOption(name))
		if err == nil && has != want {
			err = fmt.Errorf("HasCollection(%s) = %v, want %v", name, has, want)
		}
		if err := step(fmt.Sprintf("HasCollection(%s) = %v", name, want), err); err != nil {
			return err
		}
	}
	return standbyChecks(ctx, c, directA, plainA)
}

// standbyChecks: "shared" holds row 1 on A and row 2 on B; a search by each level finds
// the row of the cluster it reached. An insert reaches A, the primary.
func standbyChecks(ctx context.Context, c *milvusclient.Client, directA string, plainA grpc.DialOption) error {
	vec := entity.FloatVector{0.1, 0.2, 0.3, 0.4}
	for _, lv := range []struct {
		name  string
		level entity.ConsistencyLevel
		want  int64
	}{{"Strong", entity.ClStrong, 1}, {"Eventually", entity.ClEventually, 2}, {"Bounded", entity.ClBounded, 2}, {"Session", entity.ClSession, 1}} {
		rs, err := c.Search(ctx, milvusclient.NewSearchOption("shared", 1, []entity.Vector{vec}).
			WithANNSField("vector").WithConsistencyLevel(lv.level))
		var got int64
		if err == nil {
			got, err = topID(rs)
		}
		if err == nil && got != lv.want {
			err = fmt.Errorf("found row %d, want %d", got, lv.want)
		}
		if err := step(fmt.Sprintf("Search WithConsistencyLevel(%s) reached %c", lv.name, 'A'+lv.want-1), err); err != nil {
			return err
		}
	}
	_, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption("shared").
		WithInt64Column("id", []int64{4}).WithFloatVectorColumn("vector", 4, [][]float32{{0.2, 0.2, 0.2, 0.2}}))
	if err != nil {
		return fmt.Errorf("insert into shared: %w", err)
	}
	a, err := milvusclient.New(ctx, &milvusclient.ClientConfig{Address: directA, DialOptions: append(append([]grpc.DialOption{}, milvusclient.DefaultGrpcOpts...), plainA)})
	if err != nil {
		return fmt.Errorf("connect to A directly: %w", err)
	}
	defer a.Close(context.WithoutCancel(ctx))
	rs, err := a.Query(ctx, milvusclient.NewQueryOption("shared").WithFilter("id == 4").
		WithOutputFields("id").WithConsistencyLevel(entity.ClStrong))
	if err == nil && rs.ResultCount != 1 {
		err = fmt.Errorf("A has %d rows with id 4, want 1", rs.ResultCount)
	}
	return step("an insert into shared reached A, the primary", err)
}

// rateLimitChecks: collection "limited" is limited to 0.2 calls/s. Over the limit the
// client gets Milvus's own rate-limit error; with the SDK's RetryOnRateLimitInterceptor
// (which milvusclient v2.6.2 leaves out of its default chain) it backs off and succeeds.
func rateLimitChecks(ctx context.Context, c *milvusclient.Client, dial func(string, ...grpc.DialOption) (*milvusclient.Client, error)) error {
	var err error
	for range 20 {
		if _, err = c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption("limited")); err != nil {
			break
		}
	}
	switch {
	case err == nil:
		err = errors.New("20 calls within the limit's period were all let through")
	case errors.Is(err, merr.ErrServiceRateLimit):
		fmt.Printf("goclient: over the limit: %v\n", err)
		err = nil
	}
	if err := step("over the limit, the Go client got Milvus's rate-limit error (code 8)", err); err != nil {
		return err
	}
	r, err := dial("", retryOnRateLimit())
	if err != nil {
		return fmt.Errorf("connect with the rate-limit interceptor: %w", err)
	}
	defer r.Close(context.WithoutCancel(ctx))
	// The interceptor reads the Status of the replies it knows (Status, MutationResult,
	// BoolResponse, SearchResults, QueryResults, FlushResponse), so not of a
	// DescribeCollection, and Query and Search describe the collection first: a Delete
	// (of nothing) is a call it retries, as it would against Milvus.
	start := time.Now()
	_, err = r.Delete(ctx, milvusclient.NewDeleteOption("limited").WithExpr("id < 0"))
	return step(fmt.Sprintf("with RetryOnRateLimitInterceptor a Delete rode through the limit in %.1f s", time.Since(start).Seconds()), err)
}

func listIs(ctx context.Context, c *milvusclient.Client, want ...string) error {
	got, err := c.ListCollections(ctx, milvusclient.NewListCollectionOption())
	if err != nil {
		return err
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return fmt.Errorf("listed %v, want %v", got, want)
	}
	return nil
}

func topID(rs []milvusclient.ResultSet) (int64, error) {
	if len(rs) != 1 || rs[0].Err != nil || rs[0].ResultCount < 1 {
		return 0, fmt.Errorf("result sets %+v", rs)
	}
	return rs[0].IDs.GetAsInt64(0)
}
