package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
	"google.golang.org/grpc"
)

// loadDim is the dimension of the -load collection's "vector" field.
const loadDim = 8

// retryOnRateLimit is the SDK's own retry of Milvus's rate-limit reply (an OK reply whose
// Status has the legacy error_code RateLimit), with the SDK's own defaults
// (ClientConfig.getRetryOnRateLimitInterceptor: 75 tries, 10 ms × 3^attempt, at most 3 s
// apart). client/v2 v2.6.2 defines it but leaves it out of the dial options it installs
// (milvusclient/client.go, "// c.getRetryOnRateLimitInterceptor(),"), so against Milvus
// as against milvus-lb an application that is to ride through rate limits adds it.
func retryOnRateLimit() grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(milvusclient.RetryOnRateLimitInterceptor(75, 3*time.Second,
		func(_ context.Context, attempt uint) time.Duration {
			return 10 * time.Millisecond * time.Duration(math.Pow(3, float64(attempt)))
		}))
}

// runLoad searches collection from workers goroutines until standard input ends, then
// reports the calls made; it fails if any call failed. Before it prints "load started" it
// searches once, which fills the client's cache of the collection's schema (a
// DescribeCollection, whose reply the retry interceptor does not read).
func runLoad(ctx context.Context, addr string, creds grpc.DialOption, collection string, workers int) error {
	opts := append([]grpc.DialOption{}, milvusclient.DefaultGrpcOpts...)
	opts = append(opts, creds, retryOnRateLimit())
	c, err := milvusclient.New(ctx, &milvusclient.ClientConfig{Address: addr, DialOptions: opts})
	if err := step("connect", err); err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	vec := make([]float32, loadDim)
	for i := range vec {
		vec[i] = float32(i) / loadDim
	}
	search := func() error {
		rs, err := c.Search(ctx, milvusclient.NewSearchOption(collection, 3, []entity.Vector{entity.FloatVector(vec)}).
			WithANNSField("vector").WithConsistencyLevel(entity.ClStrong))
		if err == nil && (len(rs) != 1 || rs[0].Err != nil || rs[0].ResultCount == 0) {
			err = fmt.Errorf("search returned %d result sets: %+v", len(rs), rs)
		}
		return err
	}
	if err := step("first search", search()); err != nil {
		return err
	}

	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	fmt.Println("goclient: load started")
	var ok, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := search(); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	fmt.Printf("goclient: load: %d searches succeeded, %d failed in %.1f s\n", ok.Load(), failed.Load(), time.Since(start).Seconds())
	if e := firstErr.Load(); e != nil {
		return fmt.Errorf("%d of %d searches failed, the first: %w", failed.Load(), ok.Load()+failed.Load(), *e)
	}
	fmt.Printf("goclient: PASS: load of %d searches through %s, every one succeeded\n", ok.Load(), addr)
	return nil
}
