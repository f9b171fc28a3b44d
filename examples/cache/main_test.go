package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/examples/internal/exampletest"
)

var binary string

func TestMain(m *testing.M) { exampletest.Main(m, "cache", &binary) }

// TestCachePhases drives each phase of the example through the built binary.
func TestCachePhases(t *testing.T) {
	var hits atomic.Int32
	var failing atomic.Bool
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if failing.Load() {
			w.WriteHeader(503)
			return
		}
		switch r.URL.Path {
		case "/cookie":
			w.Header().Set("Set-Cookie", "a=1")
		case "/ua":
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Vary", "User-Agent")
		case "/short":
			w.Header().Set("Cache-Control", "max-age=0")
		}
		fmt.Fprintf(w, "%s #%d", r.URL.Path, n)
	}))
	defer origin.Close()
	addr := exampletest.Listen(t, binary, "-upstream", strings.TrimPrefix(origin.URL, "http://"))
	cl := &http.Client{Timeout: 10 * time.Second}
	get := func(method, path string, h ...string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Cache-Status")
	}
	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}

	// No freshness information: kept for -default-ttl.
	_, b, _ := get("GET", "/page")
	check("first /page", b, "/page #1")
	_, b, cs := get("GET", "/page")
	check("second /page", b, "/page #1")
	if !strings.Contains(cs, "hit") {
		t.Errorf("Cache-Status %q, want a hit", cs)
	}
	// Set-Cookie: never stored. A Cookie in the request: not cached.
	get("GET", "/cookie")
	_, b, _ = get("GET", "/cookie")
	check("/cookie again", b, "/cookie #3")
	_, b, _ = get("GET", "/page", "Cookie", "x=1")
	check("/page with a Cookie", b, "/page #4")
	// The device class is in the key, and Vary: User-Agent varies by class only.
	_, b, _ = get("GET", "/ua", "User-Agent", "Phone Mobile 1")
	check("/ua mobile", b, "/ua #5")
	_, b, _ = get("GET", "/ua", "User-Agent", "Phone Mobile 2")
	check("/ua another mobile", b, "/ua #5")
	_, b, _ = get("GET", "/ua", "User-Agent", "Desktop")
	check("/ua desktop", b, "/ua #6")
	// A bypass from loopback forces a miss.
	_, b, _ = get("GET", "/page", "X-Cache-Bypass", "1")
	check("/page bypassed", b, "/page #7")
	// PURGE answers in JSON.
	st, b, _ := get("PURGE", "/page")
	if st != 200 || b != "{\"purged\":true}\n" {
		t.Errorf("PURGE: %d %q", st, b)
	}
	_, b, _ = get("PURGE", "/page")
	check("PURGE again", b, "{\"purged\":false}\n")
	// A stale copy answers while the origin fails.
	get("GET", "/short")
	failing.Store(true)
	st, b, _ = get("GET", "/short")
	if st != 200 || b != "/short #8" {
		t.Errorf("stale on error: %d %q", st, b)
	}
}
