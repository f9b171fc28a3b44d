package main

import (
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

func TestMain(m *testing.M) { exampletest.Main(m, "modify-response", &binary) }

// startBinary runs the command in front of upstream and waits until it accepts; it is
// killed when the test ends.
func startBinary(t *testing.T, upstream string, args ...string) string {
	t.Helper()
	return exampletest.Listen(t, binary, append([]string{"-upstream", upstream}, args...)...)
}

func TestModifyResponse(t *testing.T) {
	var gotAE atomic.Value
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAE.Store(r.Header.Get("Accept-Encoding"))
		w.Header().Set("Server", "origin/1.0")
		switch r.URL.Path {
		case "/text":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "Hello world. ")
			w.(http.Flusher).Flush() // the body arrives in pieces
			io.WriteString(w, "Hel")
			w.(http.Flusher).Flush() // a word split between pieces
			io.WriteString(w, "lo again.")
		case "/binary":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "Hello")
		case "/big":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, strings.Repeat("Hello ", (2<<20)/6))
		}
	}))
	defer origin.Close()
	addr := startBinary(t, strings.TrimPrefix(origin.URL, "http://"))
	tr := &http.Transport{DisableCompression: false}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	tests := []struct {
		name, path, body string
		length           int64 // -1: chunked
	}{
		{"text rewritten", "/text", "Grüezi world. Grüezi again.", -1},
		{"binary unchanged", "/binary", "Hello", 5},
		{"too long to rewrite", "/big", strings.Repeat("Hello ", (2<<20)/6), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := cl.Get("http://" + addr + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != tt.body {
				t.Fatalf("got %d, %d bytes: %.80q", resp.StatusCode, len(b), b)
			}
			if resp.ContentLength != tt.length {
				t.Fatalf("Content-Length %d, want %d", resp.ContentLength, tt.length)
			}
			if resp.Header.Get("X-Rewritten-By") != "gotthard" || resp.Header.Get("Server") != "" {
				t.Fatalf("head not rewritten: %v", resp.Header)
			}
			if ae := gotAE.Load(); ae != "" {
				t.Fatalf("origin got Accept-Encoding %q", ae)
			}
		})
	}
}
