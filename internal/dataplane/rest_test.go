package dataplane_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

// REST over HTTP/2: curl and other HTTP clients negotiate h2 by ALPN (or speak h2c with
// prior knowledge) whatever they send, and the relay must serve them as net/http would:
// request bodies larger than a stream window, response bodies, statuses, HEAD.
func TestRESTOverHTTP2(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{REST: true})
	l := newLB(t, bs, nil)
	var h2c, h2 http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	h2.SetHTTP2(true)
	for _, tc := range []struct {
		name   string
		base   string
		client *http.Client
	}{
		{"h2c", "http://127.0.0.1:" + strconv.Itoa(l.plain), &http.Client{Transport: &http.Transport{Protocols: &h2c}}},
		{"tls", "https://127.0.0.1:" + strconv.Itoa(l.tlsPort), &http.Client{Transport: &http.Transport{Protocols: &h2,
			TLSClientConfig: &tls.Config{RootCAs: l.ca.Pool(), ServerName: host}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.client.CloseIdleConnections()
			do := func(method, path string, body []byte) (*http.Response, []byte) {
				t.Helper()
				req, _ := http.NewRequest(method, tc.base+path, bytes.NewReader(body))
				req.Host = host
				req.Header.Set("Content-Type", "application/json")
				resp, err := tc.client.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				defer resp.Body.Close()
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("%s %s: reading the body: %v", method, path, err)
				}
				if resp.ProtoMajor != 2 {
					t.Fatalf("%s %s answered over %s, want HTTP/2", method, path, resp.Proto)
				}
				return resp, got
			}

			resp, body := do(http.MethodPost, "/v2/vectordb/collections/list", []byte(`{"dbName":"_default"}`))
			if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"code":0`)) || resp.Header.Get(fakemilvus.BackendHeader) != "b0" {
				t.Fatalf("REST answer %d %v %s", resp.StatusCode, resp.Header, body)
			}

			// 3 MiB is three stream windows: the body only arrives whole if the relay
			// gives the window back as the backend reads.
			big := []byte(`{"dbName":"` + strings.Repeat("x", 3<<20) + `"}`)
			before := len(bs[0].Calls())
			if resp, body = do(http.MethodPost, "/v2/vectordb/entities/insert", big); resp.StatusCode != 200 {
				t.Fatalf("3 MiB insert: %d %s", resp.StatusCode, body)
			}
			calls := bs[0].Calls()
			if len(calls) != before+1 || calls[len(calls)-1].RequestBytes != len(big) {
				t.Errorf("the backend did not get the 3 MiB body whole: %+v", calls[before:])
			}

			// The backend's own statuses pass through; HEAD has no body.
			if resp, _ = do(http.MethodGet, "/v2/vectordb/collections/list", nil); resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("GET: status %d, want 405 from the backend", resp.StatusCode)
			}
			if resp, body = do(http.MethodHead, "/v2/vectordb/collections/list", nil); resp.StatusCode != http.StatusMethodNotAllowed || len(body) != 0 {
				t.Errorf("HEAD: status %d with %d body bytes, want 405 and none", resp.StatusCode, len(body))
			}
			// milvus-lb's own errors are HTTP statuses too. (Over h2c only: on TLS an
			// unknown :authority is routed by the server name.)
			// Each request carries a 512 KiB body that nothing reads (no rule matches):
			// twelve of them are 6 MiB, more than the connection's window (1 MiB), so
			// they are only all answered if the window of unread bodies is given back,
			// whether the bytes arrive before the answer or after it.
			if tc.name == "h2c" {
				unread := bytes.Repeat([]byte("x"), 512<<10)
				for i := range 12 {
					req, _ := http.NewRequest(http.MethodPost, tc.base+"/v2/vectordb/collections/list", bytes.NewReader(unread))
					req.Host = "no-such-host.example"
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					r, err := tc.client.Do(req.WithContext(ctx))
					if err != nil {
						cancel()
						t.Fatalf("no rule, request %d: %v", i, err)
					}
					r.Body.Close()
					cancel()
					if r.StatusCode != http.StatusNotFound {
						t.Errorf("no rule: status %d, want 404", r.StatusCode)
					}
				}
			}
		})
	}
}

// A REST call's record (its access log line) counts the bodies each way and names the
// database and collection the body names.
func TestRESTRecordBytes(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{REST: true})
	recs := &records{}
	l := lbtest.Start(t, lbtest.Options{Observer: recs}, lbtest.Addrs(bs)...)
	sent := []byte(`{"dbName":"analytics","collectionName":"books"}`)
	req, _ := http.NewRequest(http.MethodPost, "http://"+l.PlainAddr()+"/v2/vectordb/collections/list", bytes.NewReader(sent))
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := recs.wait(t, 1)[0]
	if r.Status != 200 || r.RequestBytes != int64(len(sent)) || r.ResponseBytes != int64(len(got)) || len(got) == 0 {
		t.Errorf("record: status %d, %d bytes in, %d out; want 200, %d in, %d out", r.Status, r.RequestBytes, r.ResponseBytes, len(sent), len(got))
	}
	if r.DB != "analytics" || r.Collection != "books" || r.Method != "/v2/vectordb/collections/list" {
		t.Errorf("record: method %s db %q collection %q; want the path, analytics, books (from the body)", r.Method, r.DB, r.Collection)
	}
}
