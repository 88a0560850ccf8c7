// Package mirror sends copies of calls to a mirror backend (milvus-lb.io/mirror) and
// drops what it answers, so that an operator can try a new Milvus on real traffic: the
// client gets its primary's reply only, and a slow or failing mirror never slows or fails
// a client's call. A copy is queued without waiting (a full queue drops it, counted) and
// sent by a few workers of its own, on connections of its own.
package mirror

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/gateway"
)

// Copy is one call to send to a mirror: its path, its request's header fields (regular
// fields; the copy's :authority is the original's), the whole request stream (gRPC
// framing included), and how long the original may take.
type Copy struct {
	Backend   *gateway.Backend
	Method    string // for metrics: the MilvusService method name
	Authority string
	Path      string
	Header    []hpack.HeaderField
	Body      []byte
	Timeout   time.Duration
}

// Limits of the sender: what it may hold, how many copies go at once, how long one may
// take when the call says nothing.
const (
	queueLen       = 256
	workers        = 4
	defaultTimeout = 10 * time.Second
)

// Sender sends copies. Safe for concurrent use; Submit never blocks.
type Sender struct {
	queue  chan *Copy
	client *http.Client
	tlsc   *http.Client
	m      metrics
	ctx    context.Context // ends with Close: copies in flight are abandoned
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New starts a sender with its workers; Close stops them.
func New() *Sender {
	s := &Sender{queue: make(chan *Copy, queueLen), m: newMetrics()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.client = &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}}
	// As the relay does (and the ALB), backend certificates are not verified.
	s.tlsc = &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // see above
	for range workers {
		s.wg.Go(s.work)
	}
	return s
}

// Submit queues c to be sent, or drops it (counted) when the queue is full.
func (s *Sender) Submit(c *Copy) {
	select {
	case s.queue <- c:
	default:
		s.m.dropped.WithLabelValues(c.Backend.Key, "queue_full").Inc()
	}
}

// Dropped counts a copy that could not be made: the request was not kept whole.
func (s *Sender) Dropped(backend, reason string) { s.m.dropped.WithLabelValues(backend, reason).Inc() }

// Close stops the workers; copies queued or in flight are dropped.
func (s *Sender) Close() {
	s.cancel()
	s.wg.Wait()
}

func (s *Sender) work() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case c := <-s.queue:
			s.send(c)
		}
	}
}

// send makes one copy's call and reads its reply to the end, for its status and time.
func (s *Sender) send(c *Copy) {
	ep := c.Backend.Picker.Pick(time.Now().UnixNano())
	if ep == nil {
		s.m.dropped.WithLabelValues(c.Backend.Key, "no_endpoint").Inc()
		return
	}
	ep.Start()
	defer ep.Done()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	scheme, cl := "http", s.client
	if c.Backend.TLS {
		scheme, cl = "https", s.tlsc
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, scheme+"://"+ep.Addr+c.Path, bytes.NewReader(c.Body))
	req.Host = c.Authority
	req.ContentLength = int64(len(c.Body))
	for _, f := range c.Header {
		if !strings.HasPrefix(f.Name, ":") {
			req.Header.Add(f.Name, f.Value)
		}
	}
	start := time.Now()
	code := "transport_error"
	if resp, err := cl.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		code = grpcCode(resp)
	} else if ctx.Err() != nil {
		code = "DeadlineExceeded"
	}
	s.m.calls.WithLabelValues(c.Backend.Key, c.Method, code).Inc()
	s.m.duration.WithLabelValues(c.Backend.Key, c.Method).Observe(time.Since(start).Seconds())
}

// grpcCode is the gRPC status of a reply, by name: from its trailers, or its headers
// (Trailers-Only).
func grpcCode(resp *http.Response) string {
	v := resp.Trailer.Get("grpc-status")
	if v == "" {
		v = resp.Header.Get("grpc-status")
	}
	if v == "" {
		return "http_" + http.StatusText(resp.StatusCode)
	}
	return codeName(v)
}

// Describe and Collect make the sender a prometheus.Collector of its metrics.
func (s *Sender) Describe(ch chan<- *prometheus.Desc) { s.m.describe(ch) }
func (s *Sender) Collect(ch chan<- prometheus.Metric) { s.m.collect(ch) }
