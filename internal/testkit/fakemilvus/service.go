package fakemilvus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Request controls, read from Search's search_params and Query's query_params.
const (
	ParamResultBytes = "fake_result_bytes" // pad the response to about N bytes
	ParamSleep       = "fake_sleep"        // sleep this Go duration first, honouring cancellation
)

// implemented lists the unary methods the service type answers itself; every other unary
// MilvusService method gets genericHandler.
var implemented = map[string]bool{
	"Connect": true, "GetVersion": true, "CheckHealth": true,
	"Search": true, "Query": true, "Insert": true, "Delete": true,
	"HasCollection": true, "ShowCollections": true, "CreateCollection": true,
	"DescribeCollection": true, "DropCollection": true,
}

// serviceDesc is MilvusService_ServiceDesc with a generic OK handler for every unary
// method not in implemented, so that all 116 RPCs answer.
func (s *Server) serviceDesc() *grpc.ServiceDesc {
	desc := milvuspb.MilvusService_ServiceDesc
	sd := milvuspb.File_milvus_proto.Services().ByName("MilvusService")
	desc.Methods = slices.Clone(desc.Methods)
	for i, m := range desc.Methods {
		if !implemented[m.MethodName] {
			desc.Methods[i].Handler = s.genericHandler(sd.Methods().ByName(protoreflect.Name(m.MethodName)))
		}
	}
	return &desc
}

// genericHandler answers md with a zero response whose status field (or the response
// itself, when it is a Status) is the server's current body status.
func (s *Server) genericHandler(md protoreflect.MethodDescriptor) grpc.MethodHandler {
	inT, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		panic(fmt.Sprintf("fakemilvus: %s: %v", md.FullName(), err))
	}
	outT, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		panic(fmt.Sprintf("fakemilvus: %s: %v", md.FullName(), err))
	}
	isStatus := md.Output().FullName() == (&commonpb.Status{}).ProtoReflect().Descriptor().FullName()
	statusField := md.Output().Fields().ByName("status")
	if statusField != nil && statusField.Message() == nil {
		statusField = nil
	}
	full := milvusPrefix + string(md.Name())
	answer := func(context.Context, any) (any, error) {
		if isStatus {
			return s.status(), nil
		}
		out := outT.New()
		if statusField != nil {
			out.Set(statusField, protoreflect.ValueOfMessage(s.status().ProtoReflect()))
		}
		return out.Interface(), nil
	}
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := inT.New().Interface()
		if err := dec(in); err != nil {
			return nil, err
		}
		if interceptor == nil {
			return answer(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, answer)
	}
}

// service implements the MilvusService methods with behaviour of their own.
type service struct {
	milvuspb.UnimplementedMilvusServiceServer
	s *Server
}

func (v *service) Connect(ctx context.Context, req *milvuspb.ConnectRequest) (*milvuspb.ConnectResponse, error) {
	return &milvuspb.ConnectResponse{
		Status:     v.s.status(),
		ServerInfo: &commonpb.ServerInfo{BuildTags: v.s.opts.Name, DeployMode: "fakemilvus"},
		Identifier: v.s.identifiers.Add(1),
	}, nil
}

func (v *service) GetVersion(ctx context.Context, req *milvuspb.GetVersionRequest) (*milvuspb.GetVersionResponse, error) {
	return &milvuspb.GetVersionResponse{Status: v.s.status(), Version: v.s.opts.Name}, nil
}

func (v *service) CheckHealth(ctx context.Context, req *milvuspb.CheckHealthRequest) (*milvuspb.CheckHealthResponse, error) {
	resp := &milvuspb.CheckHealthResponse{Status: v.s.status(), IsHealthy: v.s.healthy.Load()}
	if !resp.IsHealthy {
		resp.Reasons = []string{"fakemilvus " + v.s.opts.Name + ": set unhealthy"}
	}
	return resp, nil
}

// controls are the fake_* request parameters.
type controls struct {
	resultBytes int
	sleep       time.Duration
	topk        int64
}

func parseControls(kvs []*commonpb.KeyValuePair) (controls, error) {
	c := controls{topk: 10}
	for _, kv := range kvs {
		var err error
		switch kv.GetKey() {
		case ParamResultBytes:
			c.resultBytes, err = strconv.Atoi(kv.GetValue())
			if err == nil && (c.resultBytes < 0 || c.resultBytes > maxMsgSize) {
				err = errors.New("out of range")
			}
		case ParamSleep:
			c.sleep, err = time.ParseDuration(kv.GetValue())
		case "topk":
			c.topk, err = strconv.ParseInt(kv.GetValue(), 10, 64)
			if err == nil && (c.topk < 1 || c.topk > 16384) {
				err = errors.New("out of range")
			}
		}
		if err != nil {
			return c, status.Errorf(codes.InvalidArgument, "fakemilvus: %s=%q: %v", kv.GetKey(), kv.GetValue(), err)
		}
	}
	return c, nil
}

// wait sleeps for c.sleep unless ctx ends first.
func (c controls) wait(ctx context.Context) error {
	if c.sleep <= 0 {
		return nil
	}
	t := time.NewTimer(c.sleep)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// padding is one shared zero buffer: responses slice it read-only, so a 200 MiB response
// does not cost a fresh 200 MiB per call.
var padding struct {
	sync.Mutex
	b []byte
}

func paddingBytes(n int) []byte {
	padding.Lock()
	defer padding.Unlock()
	if len(padding.b) < n {
		padding.b = make([]byte, n)
	}
	return padding.b[:n:n]
}

// pad appends to *fields a field that brings msg to about want bytes (never more, unless
// it is larger already).
func pad(msg proto.Message, fields *[]*schemapb.FieldData, want int) {
	cur := proto.Size(msg)
	if want <= cur {
		return
	}
	vec := &schemapb.VectorField{}
	*fields = append(*fields, &schemapb.FieldData{
		Type:      schemapb.DataType_BinaryVector,
		FieldName: "fake_padding",
		Field:     &schemapb.FieldData_Vectors{Vectors: vec},
	})
	// Tags and length prefixes depend on n; two corrections settle it.
	n := want - cur
	for range 3 {
		vec.Dim = int64(8 * n)
		vec.Data = &schemapb.VectorField_BinaryVector{BinaryVector: paddingBytes(n)}
		over := proto.Size(msg) - want
		if over <= 0 || n <= over {
			break
		}
		n -= over
	}
}

func (v *service) Search(ctx context.Context, req *milvuspb.SearchRequest) (*milvuspb.SearchResults, error) {
	c, err := parseControls(req.GetSearchParams())
	if err != nil {
		return nil, err
	}
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	nq := max(req.GetNq(), 1)
	if nq*c.topk > 1<<22 {
		return nil, status.Errorf(codes.InvalidArgument, "fakemilvus: nq*topk = %d is too large", nq*c.topk)
	}
	n := nq * c.topk
	ids := make([]int64, n)
	scores := make([]float32, n)
	topks := make([]int64, nq)
	for i := range ids {
		k := int64(i) % c.topk
		ids[i] = k
		scores[i] = 1 - float32(k)/float32(c.topk)
	}
	for i := range topks {
		topks[i] = c.topk
	}
	resp := &milvuspb.SearchResults{
		Status:         v.s.status(),
		CollectionName: req.GetCollectionName(),
		Results: &schemapb.SearchResultData{
			NumQueries: nq,
			TopK:       c.topk,
			Scores:     scores,
			Ids:        &schemapb.IDs{IdField: &schemapb.IDs_IntId{IntId: &schemapb.LongArray{Data: ids}}},
			Topks:      topks,
		},
	}
	if c.resultBytes > 0 {
		pad(resp, &resp.Results.FieldsData, c.resultBytes)
	}
	return resp, nil
}

func (v *service) Query(ctx context.Context, req *milvuspb.QueryRequest) (*milvuspb.QueryResults, error) {
	c, err := parseControls(req.GetQueryParams())
	if err != nil {
		return nil, err
	}
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	resp := &milvuspb.QueryResults{
		Status:           v.s.status(),
		CollectionName:   req.GetCollectionName(),
		OutputFields:     []string{"id"},
		PrimaryFieldName: "id",
		FieldsData: []*schemapb.FieldData{{
			Type:      schemapb.DataType_Int64,
			FieldName: "id",
			Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{
				Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: []int64{1}}},
			}},
		}},
	}
	if c.resultBytes > 0 {
		pad(resp, &resp.FieldsData, c.resultBytes)
	}
	return resp, nil
}

func (v *service) Insert(ctx context.Context, req *milvuspb.InsertRequest) (*milvuspb.MutationResult, error) {
	n := int64(req.GetNumRows())
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i)
	}
	return &milvuspb.MutationResult{
		Status:    v.s.status(),
		IDs:       &schemapb.IDs{IdField: &schemapb.IDs_IntId{IntId: &schemapb.LongArray{Data: ids}}},
		InsertCnt: n,
		Timestamp: uint64(time.Now().UnixMilli()) << 18, // a hybrid timestamp, as Milvus returns
	}, nil
}

func (v *service) Delete(ctx context.Context, req *milvuspb.DeleteRequest) (*milvuspb.MutationResult, error) {
	return &milvuspb.MutationResult{Status: v.s.status(), IDs: &schemapb.IDs{}}, nil
}

// The collection calls keep a set of names (by name only, whatever the database) so that
// create, has, show, describe and drop agree with one another. "c1" exists from the start.

func (v *service) CreateCollection(ctx context.Context, req *milvuspb.CreateCollectionRequest) (*commonpb.Status, error) {
	v.s.createCollection(req.GetCollectionName())
	return v.s.status(), nil
}

func (v *service) DropCollection(ctx context.Context, req *milvuspb.DropCollectionRequest) (*commonpb.Status, error) {
	v.s.collMu.Lock()
	delete(v.s.collections, req.GetCollectionName())
	v.s.collMu.Unlock()
	return v.s.status(), nil
}

func (v *service) HasCollection(ctx context.Context, req *milvuspb.HasCollectionRequest) (*milvuspb.BoolResponse, error) {
	_, ok := v.s.collection(req.GetCollectionName())
	return &milvuspb.BoolResponse{Status: v.s.status(), Value: ok}, nil
}

func (v *service) ShowCollections(ctx context.Context, req *milvuspb.ShowCollectionsRequest) (*milvuspb.ShowCollectionsResponse, error) {
	names, ids := v.s.collectionList()
	return &milvuspb.ShowCollectionsResponse{Status: v.s.status(), CollectionNames: names, CollectionIds: ids}, nil
}

func (v *service) DescribeCollection(ctx context.Context, req *milvuspb.DescribeCollectionRequest) (*milvuspb.DescribeCollectionResponse, error) {
	name := req.GetCollectionName()
	id, ok := v.s.collection(name)
	st := v.s.status()
	if !ok && st == v.s.okStatus {
		db := req.GetDbName()
		if db == "" {
			db = "default"
		}
		// What Milvus 2.4+ answers, inside gRPC OK.
		st = &commonpb.Status{
			ErrorCode: commonpb.ErrorCode_CollectionNotExists,
			Code:      100,
			Reason:    fmt.Sprintf("can't find collection[database=%s][collection=%s]", db, name),
		}
	}
	resp := &milvuspb.DescribeCollectionResponse{Status: st}
	if ok {
		resp.CollectionName = name
		resp.CollectionID = id
		resp.DbName = req.GetDbName()
		resp.ShardsNum = 1
		resp.Schema = &schemapb.CollectionSchema{Name: name}
	}
	return resp, nil
}

func (s *Server) createCollection(name string) {
	s.collMu.Lock()
	defer s.collMu.Unlock()
	if _, ok := s.collections[name]; !ok {
		s.nextID++
		s.collections[name] = s.nextID
	}
}

func (s *Server) collection(name string) (int64, bool) {
	s.collMu.Lock()
	defer s.collMu.Unlock()
	id, ok := s.collections[name]
	return id, ok
}

func (s *Server) collectionList() ([]string, []int64) {
	s.collMu.Lock()
	defer s.collMu.Unlock()
	names := make([]string, 0, len(s.collections))
	for n := range s.collections {
		names = append(names, n)
	}
	slices.Sort(names)
	ids := make([]int64, len(names))
	for i, n := range names {
		ids[i] = s.collections[n]
	}
	return names, ids
}

// DumpMessages sends one message per time tick from start_timetick to end_timetick
// (inclusive); with end_timetick 0 it streams until the client goes away.
func (v *service) DumpMessages(req *milvuspb.DumpMessagesRequest, stream milvuspb.MilvusService_DumpMessagesServer) error {
	ctx := stream.Context()
	end := req.GetEndTimetick()
	for tt := req.GetStartTimetick(); end == 0 || tt <= end; tt++ {
		if err := ctx.Err(); err != nil {
			return status.FromContextError(err).Err()
		}
		msg := &milvuspb.DumpMessagesResponse{Response: &milvuspb.DumpMessagesResponse_Message{
			Message: &commonpb.ImmutableMessage{
				Id: &commonpb.MessageID{Id: strconv.FormatUint(tt, 10)},
				Properties: map[string]string{
					"backend":  v.s.opts.Name,
					"pchannel": req.GetPchannel(),
				},
			},
		}}
		if err := stream.Send(msg); err != nil {
			return err
		}
		if tt == ^uint64(0) {
			break
		}
	}
	return nil
}

// CreateReplicateStream answers each request with a confirmation whose time tick is the
// request message's id when that is a number, else the request's sequence number.
func (v *service) CreateReplicateStream(stream milvuspb.MilvusService_CreateReplicateStreamServer) error {
	for seq := uint64(1); ; seq++ {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		tt := seq
		if id, err := strconv.ParseUint(req.GetReplicateMessage().GetMessage().GetId().GetId(), 10, 64); err == nil {
			tt = id
		}
		resp := &milvuspb.ReplicateResponse{Response: &milvuspb.ReplicateResponse_ReplicateConfirmedMessageInfo{
			ReplicateConfirmedMessageInfo: &milvuspb.ReplicateConfirmedMessageInfo{ConfirmedTimeTick: tt},
		}}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}
