package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "modify-response-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "modify-response")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// startBinary runs the command in front of upstream and waits until it accepts; it is
// killed when the test ends.
func startBinary(t *testing.T, upstream string, args ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var stderr strings.Builder
	cmd := exec.Command(binary, append([]string{"-listen", addr, "-upstream", upstream}, args...)...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		select {
		case <-exited:
			t.Fatalf("exited early")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not accepting")
		}
		time.Sleep(10 * time.Millisecond)
	}
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
