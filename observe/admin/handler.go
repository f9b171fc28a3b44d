package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// page holds the status page: its HTML, script and style, served as they are.
//
//go:embed page/index.html page/status.js page/status.css
var page embed.FS

// contentSecurityPolicy lets the page load only its own script, style and data, from
// the admin service itself: no inline script, nothing external.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

func hashToken(t string) [32]byte { return sha256.Sum256([]byte(t)) }

// routes returns the service's handler.
func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /{$}", s.static("page/index.html", "text/html; charset=utf-8"))
	mux.Handle("GET /status.js", s.static("page/status.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET /status.css", s.static("page/status.css", "text/css; charset=utf-8"))
	// No icon: a 204 keeps browsers from logging a failed load (or a 401).
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("GET /status.json", s.auth(http.HandlerFunc(s.serveStatus)))
	if s.opts.Metrics != nil {
		mux.Handle("/metrics", s.auth(s.opts.Metrics))
	} else {
		mux.Handle("/metrics", s.auth(http.NotFoundHandler()))
	}
	// Everything else is 404, after the token check so that it tells nothing.
	mux.Handle("/", s.auth(http.NotFoundHandler()))
	return mux
}

// auth wraps h with the bearer token check, when Options.Token is set.
func (s *Service) auth(h http.Handler) http.Handler {
	if s.opts.Token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gotthard admin"`)
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "401 unauthorized: send Authorization: Bearer TOKEN", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// authorized compares the request's bearer token with the service's in constant time
// (over their hashes, so the time tells nothing of the length either).
func (s *Service) authorized(r *http.Request) bool {
	v := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return false
	}
	got := hashToken(strings.TrimSpace(v[len(prefix):]))
	return subtle.ConstantTimeCompare(got[:], s.token[:]) == 1
}

// static serves one file of the page. The page's files hold no data (the script reads
// it from /status.json), so they need no token: a browser cannot send one when it
// opens the page, and the script sends the one it was given in the URL fragment.
func (s *Service) static(name, contentType string) http.Handler {
	body, err := page.ReadFile(name)
	if err != nil {
		panic("admin: embedded page file missing: " + name) // a build error
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		w.Write(body)
	})
}

// serveStatus serves /status.json.
func (s *Service) serveStatus(w http.ResponseWriter, _ *http.Request) {
	st := s.status(time.Now())
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	enc.Encode(st)
}

// Status returns the document /status.json would serve now.
func (s *Service) Status() *Status { return s.status(time.Now()) }
