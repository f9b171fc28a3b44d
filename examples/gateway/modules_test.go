package main

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestModuleFlags: -compress gzips a text response for a client that accepts it (and
// leaves it plain for one that does not), and -rate-limit answers 429 with Retry-After
// past the rate of one client address; the flags' mistakes are refused at start.
func TestModuleFlags(t *testing.T) {
	text := strings.Repeat("Gotthard compresses text. ", 200)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, text)
	}))
	defer origin.Close()
	up := strings.TrimPrefix(origin.URL, "http://")
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(addr, acceptEncoding string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		if acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", acceptEncoding)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	p := startProxying(t, up, "-compress")
	resp := get(p.addr, "gzip")
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatalf("Content-Encoding %q: %v", resp.Header.Get("Content-Encoding"), err)
	}
	b, err := io.ReadAll(zr)
	resp.Body.Close()
	if err != nil || string(b) != text || resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("gzip: %v, %d bytes, Content-Encoding %q, Vary %q", err, len(b), resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
	}
	resp = get(p.addr, "identity")
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != text || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("identity: %d bytes, Content-Encoding %q", len(b), resp.Header.Get("Content-Encoding"))
	}

	p = startProxying(t, up, "-rate-limit", "3/s")
	var refused *http.Response
	for range 10 {
		resp := get(p.addr, "")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 429 {
			refused = resp
			break
		}
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if refused == nil {
		t.Fatal("10 requests at once under -rate-limit 3/s: none refused")
	}
	if s, err := strconv.Atoi(refused.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q", refused.Header.Get("Retry-After"))
	}

	for _, bad := range [][]string{
		{"-rate-limit", "3"}, {"-rate-limit", "0/s"}, {"-rate-limit", "x/s"},
		{"-rate-limit-redis", "127.0.0.1:6379"}, // without -rate-limit
		{"-rate-limit", "3/s", "-rate-limit-redis", "no-port"},
	} {
		g := startGateway(t, append([]string{"-listen", "127.0.0.1:0", "-upstream", up}, bad...)...)
		<-g.exited
		if g.err == nil || !strings.Contains(g.stderr.String(), "-rate-limit") {
			t.Errorf("%v: exit %v, stderr %q", bad, g.err, g.stderr.String())
		}
	}
}
