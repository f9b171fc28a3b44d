package proxy

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSlowRequestBodyCut checks a client that trickles its body, each byte well within
// ClientBodyTimeout but far below MinRequestBodyRate: it gets 408 within a bound, and
// the peer's connection is closed.
func TestSlowRequestBodyCut(t *testing.T) {
	cut := make(chan struct{}, 1)
	origin := scriptedOrigin(t, func(c net.Conn) {
		io.Copy(io.Discard, c) // returns when the proxy closes the connection
		cut <- struct{}{}
	})
	checkSlowBodyCut(t, testPeer(origin), cut)
}

// TestSlowRequestBodyCutH2Peer is TestSlowRequestBodyCut with an HTTP/2 peer, whose
// request body is fed from the client by another path (the HTTP/2 body pump).
func TestSlowRequestBodyCutH2Peer(t *testing.T) {
	cut := make(chan struct{}, 1)
	origin, _ := startH2OriginWith(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // returns when the proxy resets the stream
		cut <- struct{}{}
	}))
	checkSlowBodyCut(t, &Peer{Address: origin, Protocol: ProtoHTTP2}, cut)
}

// checkSlowBodyCut trickles a request body at 50 bytes a second to a service with a
// minimum rate of 1000 after 300ms that proxies to peer, and checks that the client gets
// 408 in time, the log says why, and cut is signalled (the peer saw its side end).
func checkSlowBodyCut(t *testing.T, peer *Peer, cut <-chan struct{}) {
	t.Helper()
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: peer}, ServiceOptions{
		MinRequestBodyRate:      1000,
		MinRequestBodyRateGrace: 300 * time.Millisecond,
	})
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(20 * time.Millisecond) // 50 bytes a second
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-trickled }()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, _ := readResponse(t, br, "POST")
	if resp.StatusCode != 408 {
		t.Fatalf("got %d; want 408", resp.StatusCode)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("cut after %v", took)
	}
	select {
	case <-cut:
	case <-time.After(5 * time.Second):
		t.Fatalf("the peer's side was not ended; log:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "slower than the minimum rate") {
		t.Errorf("the log does not say why:\n%s", logs)
	}
}

// TestBufferRequestBody checks BufferRequestBody: the origin sees no connection until
// the whole body arrived, then the request with its Content-Length; a body over the
// limit gets 413 and the origin sees nothing.
func TestBufferRequestBody(t *testing.T) {
	var accepted, asked atomic.Int64
	bodies := make(chan string, 2)
	origin := scriptedOrigin(t, func(c net.Conn) {
		accepted.Add(1)
		answerRequests(c, func(req *http.Request) error {
			asked.Add(1)
			bodies <- req.Header.Get("Content-Length") + " " + req.Header.Get("Transfer-Encoding")
			_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return err
		})
	})
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{
		BufferRequestBody:      true,
		RequestBodyBufferLimit: 1000,
	})
	addr := startProxy(t, svc)

	c, br := dialRaw(t, addr)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	// Streaming would have asked the origin by now; buffering waits for the rest.
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if accepted.Load() != 0 {
			t.Fatal("the origin was asked before the body was complete")
		}
	}
	io.WriteString(c, "6\r\n world\r\n0\r\n\r\n")
	if resp, body := readResponse(t, br, "POST"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got := <-bodies; got != "11 " {
		t.Errorf("origin got Content-Length, Transfer-Encoding %q; want the buffered length", got)
	}

	got := rawExchange(t, addr, "POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n"+strings.Repeat("x", 1001))
	if statusOf(got) != 413 {
		t.Fatalf("over the limit: got %q; want 413", got)
	}
	if asked.Load() != 1 {
		t.Errorf("the origin was asked %d times; want once", asked.Load())
	}
}

func TestBodyRateWait(t *testing.T) {
	const timeout = time.Minute
	tests := []struct {
		name     string
		r        bodyRate
		received int64
		want     time.Duration
	}{
		{"off", bodyRate{}, 0, timeout},
		{"grace only", bodyRate{min: 1000, grace: time.Second}, 0, time.Second},
		{"credit", bodyRate{min: 1000, grace: time.Second, waited: time.Second}, 500, 500 * time.Millisecond},
		{"behind", bodyRate{min: 1000, grace: time.Second, waited: 3 * time.Second}, 500, 0},
		{"ahead", bodyRate{min: 1000, grace: time.Second}, 1 << 20, timeout},
		{"huge body", bodyRate{min: 1, grace: time.Second}, 1 << 62, timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.wait(time.Now(), timeout, tt.received); got != tt.want {
				t.Errorf("wait = %v; want %v", got, tt.want)
			}
		})
	}
}

// TestBufferRequestBodyRetried checks that a body BufferRequestBody read makes an
// idempotent request retryable on another peer once a peer failed after taking it.
func TestBufferRequestBodyRetried(t *testing.T) {
	var deadN, liveN atomic.Int64
	dying := countingOrigin(t, &deadN, func(c net.Conn, _ string) { c.Close() })
	live := countingOrigin(t, &liveN, func(c net.Conn, body string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	})
	app := retryOnErrorProxy{peers: []*Peer{testPeer(dying), testPeer(live)}}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{BufferRequestBody: true})
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	io.WriteString(c, "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\npayload")
	resp, body := readResponse(t, br, "PUT")
	if resp.StatusCode != 200 || body != "payload" || deadN.Load() != 1 || liveN.Load() != 1 {
		t.Fatalf("got %d %q; origins saw %d and %d requests; want the PUT retried on the second",
			resp.StatusCode, body, deadN.Load(), liveN.Load())
	}
}
