package harness

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// Lite makes the backend a real milvus-lite server instead of the fake one
// (Config.Lite): every balancer then relays each Search to a real search of real data,
// and milvus-lb's reply cache answers the repeated ones (search-cached) itself. Only the
// Search workloads run against it (`bench -backend milvus-lite`).
type Lite struct {
	// Python is the interpreter of the venv with milvus-lite (scripts/setup.sh), Script
	// test/clients/milvus_lite_server.py.
	Python, Script string
	// Rows of Dim-dim vectors in the collection the Searches search, with milvus-lite's
	// AUTOINDEX (HNSW) and the COSINE metric SearchRequest asks for.
	Rows int
}

// liteSettle is how long milvus-lite may take to finish its index after a load, and
// then to settle on one answer.
const liteSettle = 10 * time.Minute

// liteBatch is the rows of one insert while the collection is filled (a 15 MB message).
const liteBatch = 5000

// liteStart is how long milvus-lite may take to listen: Python's imports (pymilvus,
// pandas, pyarrow, faiss) take seconds, tens of seconds on a busy machine.
const liteStart = 5 * time.Minute

// startLite starts milvus-lite as the one backend (Direct), fills its collection and
// keeps its reply to SearchRequest as what every Search must answer (Env.SearchReply).
func (e *Env) startLite(ctx context.Context) ([]string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(e.cfg.Lite.Python, e.cfg.Lite.Script, "--data-dir", filepath.Join(e.cfg.Dir, "milvus-lite"), "--host", host, "--port", port)
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	p, err := startProc("milvus-lite", filepath.Join(e.cfg.Dir, "milvus-lite.log"), cmd)
	if err != nil {
		return nil, err
	}
	e.backend = p
	t := &Target{Name: Direct, Addr: addr, proc: p, backend: p}
	for deadline := time.Now().Add(liteStart); ; {
		if err = e.waitReady(ctx, t); err == nil || p.exited() || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	e.Targets = append(e.Targets, t)
	start := time.Now()
	if e.SearchReply, err = fillLite(ctx, addr, e.cfg.Lite.Rows, p.pid()); err != nil {
		return nil, fmt.Errorf("milvus-lite: %w", err)
	}
	e.cfg.Logf("milvus-lite: collection %q of %d rows of %d dims, AUTOINDEX COSINE, loaded in %.1f s",
		SearchRequest().GetCollectionName(), e.cfg.Lite.Rows, Dim, time.Since(start).Seconds())
	return []string{addr}, nil
}

// fillLite creates SearchRequest's collection in the milvus-lite at addr with rows rows,
// indexes, flushes and loads it, and returns the reply to SearchRequest, checked, after
// making sure that the same reply comes back byte for byte, also to CachedSearchRequest
// (what the workloads compare every reply with).
func fillLite(ctx context.Context, addr string, rows, pid int) ([]byte, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(1<<30), grpc.MaxCallRecvMsgSize(1<<30)))
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	c := milvuspb.NewMilvusServiceClient(cc)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	name := SearchRequest().GetCollectionName()
	if err := createLiteCollection(ctx, c, name); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for first := 0; first < rows; first += liteBatch {
		req := insertRows(rng, first, min(liteBatch, rows-first))
		req.CollectionName = name
		r, err := c.Insert(ctx, req)
		if err = milvusErr(r.GetStatus(), err); err != nil {
			return nil, fmt.Errorf("insert: %w", err)
		}
	}
	if r, err := c.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{name}}); milvusErr(r.GetStatus(), err) != nil {
		return nil, fmt.Errorf("flush: %w", milvusErr(r.GetStatus(), err))
	}
	if r, err := c.LoadCollection(ctx, &milvuspb.LoadCollectionRequest{CollectionName: name}); milvusErr(r, err) != nil {
		return nil, fmt.Errorf("load: %w", milvusErr(r, err))
	}
	if err := waitIndexed(ctx, c, name, rows); err != nil {
		return nil, err
	}
	if err := waitIdle(ctx, pid); err != nil {
		return nil, err
	}
	return liteReply(ctx, cc)
}

// waitIndexed waits until milvus-lite says every row of name is in its index: until
// then it searches the rest exactly, and the answer to the same Search changes when the
// index takes them over (HNSW is approximate).
func waitIndexed(ctx context.Context, c milvuspb.MilvusServiceClient, name string, rows int) error {
	for {
		r, err := c.DescribeIndex(ctx, &milvuspb.DescribeIndexRequest{CollectionName: name, FieldName: "vector"})
		if err = milvusErr(r.GetStatus(), err); err != nil {
			return fmt.Errorf("describe index: %w", err)
		}
		if d := r.GetIndexDescriptions(); len(d) == 1 && d[0].GetIndexedRows() == int64(rows) &&
			d[0].GetPendingIndexRows() == 0 && d[0].GetState() == commonpb.IndexState_Finished {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the index of %d rows was not finished: %w", rows, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// createLiteCollection creates name with InsertRequest's fields and an AUTOINDEX on the
// vector, as MilvusClient.create_collection(name, dimension=Dim, metric_type="COSINE")
// does.
func createLiteCollection(ctx context.Context, c milvuspb.MilvusServiceClient, name string) error {
	schema, err := proto.Marshal(&schemapb.CollectionSchema{Name: name, Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{FieldID: 101, Name: "vector", DataType: schemapb.DataType_FloatVector,
			TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: itoa(Dim)}}},
	}})
	if err != nil {
		return err
	}
	r, err := c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: name, Schema: schema, ShardsNum: 1})
	if err = milvusErr(r, err); err != nil {
		return fmt.Errorf("create collection: %w", err)
	}
	r, err = c.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: name, FieldName: "vector", IndexName: "vector",
		ExtraParams: []*commonpb.KeyValuePair{{Key: "index_type", Value: "AUTOINDEX"}, {Key: "metric_type", Value: "COSINE"}}})
	if err = milvusErr(r, err); err != nil {
		return fmt.Errorf("create index: %w", err)
	}
	return nil
}

// waitIdle waits until the process pid has used under 5 % of a CPU for 2 s: after a
// load milvus-lite goes on building its index in the background for minutes (on a busy
// machine), searching the rows not yet in it exactly and slowly (400 ms of CPU per
// Search at 20,000 rows, against 30 ms once it is done), and DescribeIndex already says
// every row is indexed.
func waitIdle(ctx context.Context, pid int) error {
	const window = 2 * time.Second
	ctx, cancel := context.WithTimeout(ctx, liteSettle)
	defer cancel()
	for {
		before := cpuTicks([]int{pid})
		select {
		case <-ctx.Done():
			return fmt.Errorf("milvus-lite was still busy after %v: %w", liteSettle, ctx.Err())
		case <-time.After(window):
		}
		if ticks := cpuTicks([]int{pid}) - before; ticks*100 < 5*int64(window/(10*time.Millisecond)) {
			return nil
		}
	}
}

// liteReply is milvus-lite's reply to SearchRequest, checked, once it has been the
// same, byte for byte, for four calls a second apart (the last to CachedSearchRequest):
// after a load milvus-lite goes on indexing and compacting for a while, and the answer
// of an approximate index changes when it does.
func liteReply(ctx context.Context, cc *grpc.ClientConn) ([]byte, error) {
	reqs := []*encoded{encode(SearchRequest()), encode(CachedSearchRequest())}
	var want []byte
	deadline := time.Now().Add(liteSettle)
	for same := 0; same < 4; {
		var resp response
		if err := cc.Invoke(ctx, searchMethod, reqs[same/3], &resp, grpc.ForceCodecV2(rawCodec{})); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		if bytes.Equal(resp.b, want) {
			same++
		} else {
			want, same = bytes.Clone(resp.b), 1
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("milvus-lite's answer to the same search still changed after %v: replies cannot be compared", liteSettle)
		}
		time.Sleep(time.Second)
	}
	return want, checkSearchShape(want)
}

// milvusErr is err, else a Status that is not Success as an error.
func milvusErr(st *commonpb.Status, err error) error {
	if err != nil {
		return err
	}
	if st.GetCode() != 0 || st.GetErrorCode() != commonpb.ErrorCode_Success {
		return fmt.Errorf("status %d %q", st.GetCode(), st.GetReason())
	}
	return nil
}
