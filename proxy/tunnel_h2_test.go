package proxy

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

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

// A CONNECT tunnel over HTTP/2 whose two sides both end cleanly (the client's
// END_STREAM, the peer's FIN) ends with the proxy's END_STREAM alone: no RST_STREAM
// follows for a stream both sides closed. Read frame by frame, up to a PING's answer
// sent after the client's END_STREAM.
func TestConnectOverHTTP2CleanEnd(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // answers "bye" and closes, once the client half-closed
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		io.ReadAll(nc)
		nc.Write([]byte("bye"))
	}()
	target := ln.Addr().String()
	svc, logs := newTestService[*testCtx](t, connectProxy{allowed: target}, ServiceOptions{AllowConnect: true})
	addr := startProxy(t, svc)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(nc, http2.ClientPreface)
	fr := http2.NewFramer(nc, nc)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	enc.WriteField(hpack.HeaderField{Name: ":method", Value: "CONNECT"})
	enc.WriteField(hpack.HeaderField{Name: ":authority", Value: target})
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	var got []string
	sentEnd, pinged := false, false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %v: %v\n%s", got, err, logs.String())
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
			continue
		case *http2.WindowUpdateFrame:
			continue
		case *http2.MetaHeadersFrame:
			got = append(got, "headers "+f.PseudoValue("status"))
			if !sentEnd {
				// The tunnel is up: end the client's side; the peer answers and closes.
				sentEnd = true
				if err := fr.WriteData(1, true, nil); err != nil {
					t.Fatal(err)
				}
			}
		case *http2.DataFrame:
			got = append(got, fmt.Sprintf("data %q end=%v", f.Data(), f.StreamEnded()))
			if f.StreamEnded() && !pinged {
				pinged = true
				fr.WritePing(false, [8]byte{1})
			}
		case *http2.RSTStreamFrame:
			got = append(got, "rst "+f.ErrCode.String())
		case *http2.PingFrame:
			if f.IsAck() {
				want := []string{"headers 200", `data "bye" end=false`, `data "" end=true`}
				if strings.Join(got, "; ") != strings.Join(want, "; ") && strings.Join(got, "; ") != `headers 200; data "bye" end=true` {
					t.Fatalf("frames of the tunnel: %s\nwant the peer's bytes and END_STREAM, no RST_STREAM\n%s", strings.Join(got, "; "), logs.String())
				}
				return
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v after %v", f.ErrCode, got)
		}
	}
}
