package fakemilvus

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// restHandler is a sliver of Milvus's REST v2 API: POST /v2/vectordb/collections/list
// lists the collections, any other POST under /v2/vectordb/ answers {"code":0,"data":{}}.
// Like Milvus, it answers HTTP 200 with the outcome in "code".
func (s *Server) restHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method + " " + r.URL.Path
		s.rec.begin(method)
		c := s.httpCall(r, method)
		w.Header().Set(BackendHeader, s.opts.Name)
		switch {
		case !strings.HasPrefix(r.URL.Path, "/v2/vectordb/"):
			http.NotFound(w, r)
			c.Code = codes.NotFound
		case r.Method != http.MethodPost:
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			c.Code = codes.Unimplemented
		default:
			var data any = struct{}{}
			if r.URL.Path == "/v2/vectordb/collections/list" {
				data, _ = s.collectionList()
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"code": 0, "data": data})
		}
		s.rec.finish(c)
	})
}

// healthzHandler is Milvus's management port: GET /healthz, 200 "OK" or 500.
func (s *Server) healthzHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		method := "GET /healthz"
		s.rec.begin(method)
		c := s.httpCall(r, method)
		w.Header().Set(BackendHeader, s.opts.Name)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if s.healthy.Load() {
			_, _ = io.WriteString(w, "OK")
		} else {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "fakemilvus "+s.opts.Name+": set unhealthy")
			c.Code = codes.Unavailable
		}
		s.rec.finish(c)
	})
	return mux
}

// httpCall starts a Call record for an HTTP request, reading the body to size it.
func (s *Server) httpCall(r *http.Request, method string) Call {
	n, _ := io.Copy(io.Discard, r.Body)
	if !s.rec.wanted() {
		return Call{}
	}
	c := s.newCall(r.Context(), method)
	c.MD = make(metadata.MD, len(r.Header))
	for k, v := range r.Header {
		c.MD[strings.ToLower(k)] = append([]string(nil), v...)
	}
	c.RequestBytes = int(n)
	c.Peer = r.RemoteAddr
	return c
}
