package proxy

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gotthard-proxy/gotthard/internal/h2"
)

// rfc8441 is an http.RoundTripper that lets a WebSocket library built for HTTP/1.1
// speak over HTTP/2: it turns the library's handshake (GET with Upgrade) into an
// extended CONNECT (RFC 8441) on an h2c connection of its own, and the stream's 200
// into the 101 the library expects, with the stream as the connection.
type rfc8441 struct{}

func newRFC8441Client() *http.Client { return &http.Client{Transport: rfc8441{}} }

func (rfc8441) RoundTrip(req *http.Request) (*http.Response, error) {
	var d net.Dialer
	nc, err := d.DialContext(req.Context(), "tcp", req.URL.Host)
	if err != nil {
		return nil, err
	}
	treq := h2.TunnelRequest{Protocol: "websocket", Scheme: "http", Authority: req.URL.Host, Path: req.URL.RequestURI()}
	for k, vs := range req.Header {
		switch k = strings.ToLower(k); k {
		case "connection", "upgrade", "sec-websocket-key", "host":
			continue
		}
		for _, v := range vs {
			treq.Fields = append(treq.Fields, h2.Field{Name: k, Value: v})
		}
	}
	tun, err := h2.OpenTunnel(req.Context(), nc, treq, nil)
	if err != nil {
		return nil, err
	}
	resp := &http.Response{StatusCode: tun.Status, Header: http.Header{}, Body: tun, Request: req, ProtoMajor: 2}
	for _, f := range tun.Fields {
		resp.Header.Add(f.Name, f.Value)
	}
	if tun.Status != 200 {
		return resp, nil
	}
	if resp.Header.Get("Sec-Websocket-Accept") != "" {
		tun.Close()
		return nil, errors.New("Sec-WebSocket-Accept in an RFC 8441 response")
	}
	sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp.StatusCode = 101
	resp.Header.Set("Connection", "Upgrade")
	resp.Header.Set("Upgrade", "websocket")
	resp.Header.Set("Sec-WebSocket-Accept", base64.StdEncoding.EncodeToString(sum[:]))
	return resp, nil
}

// openTunnel opens a CONNECT or extended CONNECT stream to the proxy at addr.
func openTunnel(t *testing.T, addr string, req h2.TunnelRequest) *h2.Tunnel {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tun, err := h2.OpenTunnel(ctx, nc, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tun.Close() })
	return tun
}

// WebSocket over HTTP/2 (RFC 8441) from a library client, to an HTTP/1.1 origin:
// 10,000 messages of 0 B to 1 MiB, closes from both sides.
func TestWebSocketOverHTTP2(t *testing.T) {
	origin := wsEchoOrigin(t)
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{HTTPClient: newRFC8441Client()}

	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", opts)
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, logs.String())
	}
	exchangeWSMessages(t, ctx, c, wsMessages())

	// Closing from the client side: the close handshake goes through, and the proxy
	// ends the stream once the origin has closed.
	closeFromClient(t, ctx, addr, opts, logs)
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("errors logged:\n%s", logs.String())
	}
}

// The phases see an HTTP/2 WebSocket as the GET it stands for, and may refuse it.
func TestWebSocketOverHTTP2Rejected(t *testing.T) {
	origin := wsEchoOrigin(t)
	svc, _ := newTestService[*testCtx](t, rejectWSProxy{fixedProxy{peer: testPeer(origin)}}, ServiceOptions{})
	addr := startProxy(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{HTTPClient: newRFC8441Client(), HTTPHeader: http.Header{"Origin": {"http://evil.example"}}}
	_, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws", opts)
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("got %v %v, want 403", resp, err)
	}
}

// CONNECT over HTTP/2 (RFC 9113 §8.5), when allowed: the stream carries the bytes of a
// TCP connection both ways, and the peer's end of data ends the stream.
func TestConnectOverHTTP2(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // upper-cases what it reads, until the client half-closes
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				b, _ := io.ReadAll(nc)
				nc.Write([]byte(strings.ToUpper(string(b))))
			}()
		}
	}()
	target := ln.Addr().String()
	for _, allow := range []bool{false, true} {
		svc, _ := newTestService[*testCtx](t, connectProxy{allowed: target}, ServiceOptions{AllowConnect: allow})
		addr := startProxy(t, svc)
		tun := openTunnel(t, addr, h2.TunnelRequest{Authority: target})
		if !allow {
			if tun.Status != 405 {
				t.Fatalf("CONNECT not allowed: status %d, want 405", tun.Status)
			}
			continue
		}
		if tun.Status != 200 {
			t.Fatalf("status %d", tun.Status)
		}
		tun.Write([]byte("hello through "))
		tun.Write([]byte("an HTTP/2 tunnel"))
		tun.CloseWrite() // END_STREAM: the proxy half-closes toward the peer
		got, err := io.ReadAll(tun)
		if err != nil || string(got) != "HELLO THROUGH AN HTTP/2 TUNNEL" {
			t.Fatalf("got %q %v", got, err)
		}
	}
}

// An extended CONNECT for a protocol the proxy does not carry is refused with 501.
func TestExtendedConnectUnknownProtocol(t *testing.T) {
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(deadAddr(t))}, ServiceOptions{})
	addr := startProxy(t, svc)
	tun := openTunnel(t, addr, h2.TunnelRequest{Protocol: "not-websocket", Scheme: "http", Authority: addr, Path: "/chat"})
	if tun.Status != 501 {
		t.Fatalf("status %d, want 501", tun.Status)
	}
}

// A quiet HTTP/2 tunnel ends after the tunnel idle timeout, as a normal end (no error
// logged); one with traffic stays open.
func TestConnectOverHTTP2Idle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // echoes
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer nc.Close(); io.Copy(nc, nc) }()
		}
	}()
	target := ln.Addr().String()
	const idle = 300 * time.Millisecond
	svc, logs := newTestService[*testCtx](t, connectProxy{allowed: target}, ServiceOptions{AllowConnect: true, TunnelIdleTimeout: idle})
	addr := startProxy(t, svc)
	tun := openTunnel(t, addr, h2.TunnelRequest{Authority: target})
	if tun.Status != 200 {
		t.Fatalf("status %d", tun.Status)
	}
	// Traffic for three idle timeouts keeps it open.
	buf := make([]byte, 1)
	for end := time.Now().Add(3 * idle); time.Now().Before(end); {
		tun.Write([]byte("x"))
		if _, err := io.ReadFull(tun, buf); err != nil {
			t.Fatalf("tunnel closed while in use: %v", err)
		}
		time.Sleep(idle / 4)
	}
	start := time.Now()
	io.ReadAll(tun) // ends when the proxy resets the quiet stream
	if waited := time.Since(start); waited > 30*idle {
		t.Fatalf("quiet tunnel open for %v", waited)
	}
	time.Sleep(50 * time.Millisecond)
	if strings.Contains(logs.String(), "request failed") {
		t.Fatalf("idle end logged as a failure:\n%s", logs.String())
	}
}
