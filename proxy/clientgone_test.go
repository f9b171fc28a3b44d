package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// TestClientGoneHTTP1 checks an HTTP/1.x client that closes its connection, or only
// its sending half, while the peer holds its answer: the peer's connection is closed
// within a bound, the request is not retried, and Logging sees 499 for a downstream
// ConnectionClosed, logged at debug level. The request is the connection's first or
// its second (after the connection idled between them).
func TestClientGoneHTTP1(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("a closed client is told without a read on Linux only")
	}
	for _, how := range []string{"close", "half-close", "close second request"} {
		t.Run(how, func(t *testing.T) {
			asked := make(chan struct{}, 4)
			cut := make(chan struct{}, 4)
			origin := scriptedOrigin(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.URL.Path != "/wait" {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
						continue
					}
					asked <- struct{}{}
					io.Copy(io.Discard, br) // no answer; returns when the proxy closes
					cut <- struct{}{}
					return
				}
			})
			peer := testPeer(origin)
			peer.Options.ReadTimeout = time.Minute
			app := loggingProxy{peer: peer, logged: make(chan loggedRequest, 4)}
			svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
			addr := startProxy(t, svc)

			c, br := dialRaw(t, addr)
			if how == "close second request" {
				io.WriteString(c, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
				if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 200 {
					t.Fatalf("first request: %d", resp.StatusCode)
				}
				<-app.logged
			}
			io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
			select {
			case <-asked:
			case <-time.After(10 * time.Second):
				t.Fatal("the origin got no request")
			}
			if how == "half-close" {
				c.(*net.TCPConn).CloseWrite()
			} else {
				c.Close()
			}
			select {
			case <-cut:
			case <-time.After(5 * time.Second):
				t.Fatal("the peer's connection was not closed")
			}
			var got loggedRequest
			select {
			case got = <-app.logged:
			case <-time.After(10 * time.Second):
				t.Fatal("Logging did not run")
			}
			wantClientGone(t, got, logs)
			if how == "half-close" {
				if rest := waitClosed(t, c, br, 5*time.Second); rest != "" {
					t.Errorf("the client got %q; want no answer", rest)
				}
			}
			select {
			case <-asked:
				t.Fatal("the request was retried")
			default:
			}
		})
	}
}

// TestClientHalfCloseIgnoreAbort checks that with IgnoreClientAbort a client may send
// its request, shut down its sending half and still get the answer, however long the
// peer takes (here, several rounds of the client watch).
func TestClientHalfCloseIgnoreAbort(t *testing.T) {
	asked := make(chan struct{}, 1)
	origin := scriptedOrigin(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		asked <- struct{}{}
		// Answer once the client watch has had several rounds to look at the client.
		time.Sleep(4 * clientWatchInterval)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{IgnoreClientAbort: true})
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
	<-asked
	c.(*net.TCPConn).CloseWrite()
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q; want the origin's answer", resp.StatusCode, body)
	}
}

// TestClientWatchEndsWithWait checks that a request whose wait for the peer ended in
// an error (here a 101 the request did not ask for) leaves no exchange marked as
// waiting on its connection: the client watch would otherwise cut whatever request
// that exchange serves next.
func TestClientWatchEndsWithWait(t *testing.T) {
	origin := scriptedOrigin(t, rawResponder("HTTP/1.1 101 Switching Protocols\r\n\r\n"))
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 502 {
		t.Fatalf("got %d; want 502", resp.StatusCode)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	for cn := range svc.conns {
		if cn.waitEx.Load() != nil {
			t.Fatal("a connection still has an exchange marked as waiting for its peer")
		}
	}
}
