package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRequestLineStrictness sends malformed or refused request lines on a real
// connection through a service to a real origin: each gets its status (not a silent
// close, not a forward) and the origin sees nothing.
func TestRequestLineStrictness(t *testing.T) {
	tests := []struct {
		name   string
		opts   ServiceOptions
		req    string
		status int
		asked  int64 // requests the origin should see
	}{
		{"authority form on GET", ServiceOptions{}, "GET host:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400, 0},
		{"other scheme", ServiceOptions{}, "GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n", 400, 0},
		{"mistyped version", ServiceOptions{}, "GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400, 0},
		{"space in target", ServiceOptions{}, "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, 0},
		{"lower-case version", ServiceOptions{}, "GET / http/1.1\r\nHost: a\r\n\r\n", 400, 0},
		{"long method", ServiceOptions{}, strings.Repeat("M", 9000) + " / HTTP/1.1\r\nHost: a\r\n\r\n", 501, 0},
		{"TRACE", ServiceOptions{}, "TRACE / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 405, 0},
		{"TRACE allowed", ServiceOptions{AllowTrace: true}, "TRACE / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 200, 1},
		{"absolute form", ServiceOptions{}, "GET http://a/x HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n", 200, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			origin := countingOrigin(t, &n, func(c net.Conn, _ string) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			})
			svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, tt.opts)
			addr := startProxy(t, svc)
			got := rawExchange(t, addr, tt.req)
			if statusOf(got) != tt.status {
				t.Fatalf("got %q; want status %d", got, tt.status)
			}
			if n.Load() != tt.asked {
				t.Fatalf("origin saw %d requests; want %d", n.Load(), tt.asked)
			}
		})
	}
}

// TestEarlyResponseRelayed checks an origin that answers (413, 401) before reading the
// body the client is still uploading, and closes: the client gets that answer, not a
// 502, and then its connection is closed (the rest of its body was not read); the
// origin's connection is not pooled.
func TestEarlyResponseRelayed(t *testing.T) {
	for _, status := range []int{413, 401} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			origin := scriptedOrigin(t, func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 "+strconv.Itoa(status)+" No\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope")
				// Close without reading the body: the proxy's writes then fail.
			})
			svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
			addr := startProxy(t, svc)

			c, br := dialRaw(t, addr)
			const size = 64 << 20
			io.WriteString(c, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n")
			// The client keeps uploading while it waits for the answer.
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				chunk := bytes.Repeat([]byte("x"), 64<<10)
				for i := 0; i < size/len(chunk); i++ {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}()
			resp, body := readResponse(t, br, "POST")
			if resp.StatusCode != status || body != "nope" {
				t.Fatalf("got %d %q; want %d from the origin", resp.StatusCode, body, status)
			}
			if !resp.Close {
				t.Errorf("the response does not say Connection: close")
			}
			waitClosed(t, c, br, 5*time.Second)
			<-sent
			if st := svc.PoolStats(); st.Idle != 0 {
				t.Errorf("pool %+v: the origin's connection was kept", st)
			}
		})
	}
}
