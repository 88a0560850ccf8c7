package admin

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"time"
)

// The live page is static HTML, CSS and JavaScript embedded in the binary; the script
// fills it from /api/v1/live.
//
//go:embed live
var liveFiles embed.FS

// contentSecurityPolicy lets the page load only its own script, style sheet and icon and
// fetch only from this server: no inline script or style, no frame, no form, no plugin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// liveRoutes adds the live page: / (the page), /live/* (its files) and /api/v1/live (its
// data).
func (s *Server) liveRoutes(mux *http.ServeMux) {
	sub, err := fs.Sub(liveFiles, "live")
	if err != nil {
		panic(err) // the embedded directory is there: a build without it does not compile
	}
	files := http.StripPrefix("/live/", http.FileServerFS(sub))
	mux.Handle("GET /live/", pageHeaders(files))
	mux.Handle("GET /{$}", pageHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "index.html")
	})))
	mux.Handle("GET /api/v1/live", pageHeaders(http.HandlerFunc(s.live)))
}

// pageHeaders sets the headers every response of the live page carries.
func pageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

func (s *Server) live(w http.ResponseWriter, _ *http.Request) {
	v := liveView(s.Gateway.Current(), s.Registry, s.Live, s.Ports(), s.Address, time.Now())
	if s.Rejected != nil {
		v.Rejected = rejectedView(s.Rejected())
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
