package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestProxyProtocolFlags: -proxy-protocol-from takes the client from a load balancer's
// PROXY header, -upstream-proxy-protocol sends one to the upstream, and a bad value
// stops the gateway with a clear error.
func TestProxyProtocolFlags(t *testing.T) {
	xff := make(chan string, 1)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		xff <- r.Header.Get("X-Forwarded-For")
		io.WriteString(w, "ok")
	}))
	defer origin.Close()
	p := startProxying(t, strings.TrimPrefix(origin.URL, "http://"), "-proxy-protocol-from", "127.0.0.0/8")
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("response %v, %v", resp, err)
	}
	if got := <-xff; got != "198.51.100.7" {
		t.Errorf("X-Forwarded-For %q, want the client the header named", got)
	}

	// An upstream that reads the PROXY header the gateway sends.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	line := make(chan string, 1)
	go func() {
		uc, err := ln.Accept()
		if err != nil {
			return
		}
		defer uc.Close()
		br := bufio.NewReader(uc)
		l, _ := br.ReadString('\n')
		line <- l
		if _, err := http.ReadRequest(br); err == nil {
			io.WriteString(uc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	}()
	p2 := startProxying(t, ln.Addr().String(), "-upstream-proxy-protocol", "1")
	resp2, err := http.Get("http://" + p2.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if l := <-line; !strings.HasPrefix(l, "PROXY TCP4 127.0.0.1 127.0.0.1 ") {
		t.Errorf("the upstream read %q first, want a PROXY v1 header", l)
	}

	for _, tt := range []struct{ args, want string }{
		{"-proxy-protocol-from nowhere", `-proxy-protocol-from: "nowhere" is not an address or a prefix`},
		{"-proxy-protocol-required", "-proxy-protocol-required needs -proxy-protocol-from"},
		{"-upstream-proxy-protocol 3", "-upstream-proxy-protocol 3: want 0, 1 or 2"},
	} {
		g := startGateway(t, append([]string{"-listen", "127.0.0.1:0", "-upstream", "127.0.0.1:1"}, strings.Fields(tt.args)...)...)
		<-g.exited
		if !strings.Contains(g.stderr.String(), tt.want) {
			t.Errorf("%s: stderr %q, want %q", tt.args, g.stderr.String(), tt.want)
		}
	}
}
