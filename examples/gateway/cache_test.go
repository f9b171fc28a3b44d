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
)

// TestCacheFlag: with -cache, the gateway serves a cacheable response from memory
// (with Cache-Status under -cache-status), answers PURGE from loopback, lets POST
// through, and with -cache-dir keeps what it stored across a restart.
func TestCacheFlag(t *testing.T) {
	var hits atomic.Int32
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=300")
		fmt.Fprintf(w, "%s %s #%d", r.Method, r.URL.Path, n)
	}))
	defer origin.Close()
	up := strings.TrimPrefix(origin.URL, "http://")
	get := func(addr, method, path string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		req.Host = "site.test" // (the key has the Host: the same across the gateways)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Cache-Status")
	}

	p := startProxying(t, up, "-cache", "1MiB", "-cache-status")
	if _, body, cs := get(p.addr, "GET", "/a"); body != "GET /a #1" || !strings.Contains(cs, "fwd=uri-miss") || !strings.Contains(cs, "stored") {
		t.Errorf("miss: %q, Cache-Status %q", body, cs)
	}
	if _, body, cs := get(p.addr, "GET", "/a"); body != "GET /a #1" || !strings.HasPrefix(cs, "gotthard; hit") {
		t.Errorf("hit: %q, Cache-Status %q", body, cs)
	}
	if st, _, _ := get(p.addr, "PURGE", "/a"); st != 200 {
		t.Errorf("PURGE: %d", st)
	}
	if _, body, _ := get(p.addr, "GET", "/a"); body != "GET /a #2" {
		t.Errorf("after PURGE: %q", body)
	}
	if st, body, _ := get(p.addr, "POST", "/a"); st != 200 || body != "POST /a #3" {
		t.Errorf("POST: %d %q", st, body)
	}

	dir := t.TempDir()
	p1 := startProxying(t, up, "-cache", "1MiB", "-cache-dir", dir, "-cache-status")
	if _, body, _ := get(p1.addr, "GET", "/d"); body != "GET /d #4" {
		t.Errorf("disk miss: %q", body)
	}
	// The object is committed (files synced) after its response went out: wait for the
	// hit that shows it stored, then kill the process.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body, cs := get(p1.addr, "GET", "/d")
		if strings.Contains(cs, "; hit") && body == "GET /d #4" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no hit after the miss: %q, Cache-Status %q", body, cs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	p1.cmd.Process.Kill()
	<-p1.exited
	p2 := startProxying(t, up, "-cache", "1MiB", "-cache-dir", dir)
	if _, body, _ := get(p2.addr, "GET", "/d"); body != "GET /d #4" {
		t.Errorf("after a restart: %q, want the stored response", body)
	}
	if n := hits.Load(); n != 4 {
		t.Errorf("origin saw %d requests, want 4", n)
	}
}

// TestCacheFlagErrors: bad cache flags stop the gateway with a clear error.
func TestCacheFlagErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-cache", "lots"}, `-cache: "lots" is not a size`},
		{[]string{"-cache", "-1MiB"}, `is not a size`},
		{[]string{"-cache-dir", "/tmp"}, "-cache-dir and -cache-status need -cache SIZE"},
	} {
		p := startGateway(t, append([]string{"-listen", "127.0.0.1:0", "-upstream", "127.0.0.1:1"}, tt.args...)...)
		<-p.exited
		if !strings.Contains(p.stderr.String(), tt.want) {
			t.Errorf("%v: stderr %q, want %q", tt.args, p.stderr.String(), tt.want)
		}
	}
}
