package proxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gotthard-proxy/gotthard/internal/h2"
)

// wsH2Origin is an HTTP/2 (h2c) origin that takes WebSockets by extended CONNECT only
// (RFC 8441) and echoes their frames, as wsEchoOrigin does, with a WebSocket framing
// of its own. It counts the WebSockets it accepted.
func wsH2Origin(t *testing.T) (string, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			hc := h2.NewConn(nc, nil, h2.Options{EnableConnectProtocol: true}, func(st *h2.Stream) {
				if r := st.Request(); r.Method != "CONNECT" || r.Protocol != "websocket" {
					st.WriteHeaders(400, nil, true)
					return
				}
				accepted.Add(1)
				st.WriteHeaders(200, nil, false)
				wsEchoFrames(bufio.NewReader(&h2Stream{st: st}), &h2Stream{st: st})
			})
			go hc.Serve()
		}
	}()
	return ln.Addr().String(), &accepted
}

// wsEchoFrames echoes the client's WebSocket frames (RFC 6455 §5.2) unmasked, closes
// with 4000 on the text "close-from-server", and answers a close with a close.
func wsEchoFrames(r *bufio.Reader, w *h2Stream) {
	defer w.CloseWrite()
	var hdr [14]byte
	for {
		if _, err := io.ReadFull(r, hdr[:2]); err != nil {
			return
		}
		b0, n := hdr[0], uint64(hdr[1]&0x7f)
		switch n {
		case 126:
			io.ReadFull(r, hdr[2:4])
			n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			io.ReadFull(r, hdr[2:10])
			n = binary.BigEndian.Uint64(hdr[2:10])
		}
		var mask [4]byte
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			return
		}
		for i := range p {
			p[i] ^= mask[i%4]
		}
		if b0&0x0f == 1 && string(p) == "close-from-server" {
			b0, p = 0x88, append([]byte{0x0f, 0xa0}, "bye"...) // close, 4000
		}
		out := []byte{b0}
		switch {
		case len(p) < 126:
			out = append(out, byte(len(p)))
		case len(p) < 1<<16:
			out = append(out, 126)
			out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		default:
			out = append(out, 127)
			out = binary.BigEndian.AppendUint64(out, uint64(len(p)))
		}
		if _, err := w.Write(append(out, p...)); err != nil {
			return
		}
		if b0&0x0f == 8 && string(p[2:]) != "bye" {
			return // the client's close, answered
		}
	}
}

// A WebSocket to an HTTP/2 peer that offers extended CONNECT goes as one, from an
// HTTP/1.1 client (its 101 and Sec-WebSocket-Accept made by the proxy) and from an
// HTTP/2 client.
func TestWebSocketToHTTP2Peer(t *testing.T) {
	origin, accepted := wsH2Origin(t)
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: &Peer{Address: origin, Protocol: ProtoHTTP2}}, ServiceOptions{})
	addr := startProxy(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, opts := range []*websocket.DialOptions{nil, {HTTPClient: newRFC8441Client()}} {
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", opts)
		if err != nil {
			t.Fatalf("client %d: dial: %v\n%s", i, err, logs.String())
		}
		exchangeWSMessages(t, ctx, c, 1000)
		if got := accepted.Load(); got != int64(i+1) {
			t.Fatalf("origin accepted %d WebSockets by extended CONNECT, want %d", got, i+1)
		}
		// Closing from the client's side.
		closeFromClient(t, ctx, addr, opts, logs)
		accepted.Add(-1)
	}
}

// An HTTP/2 peer that does not offer extended CONNECT gets the WebSocket as an
// HTTP/1.1 Upgrade.
func TestWebSocketToHTTP2PeerFallback(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		typ, msg, err := c.Read(r.Context())
		if err == nil {
			c.Write(r.Context(), typ, append([]byte(r.Proto+" "), msg...))
		}
		c.Close(websocket.StatusNormalClosure, "")
	}))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	defer srv.Close()
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: &Peer{Address: srv.Listener.Addr().String(), Protocol: ProtoHTTP2}}, ServiceOptions{})
	addr := startProxy(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, opts := range []*websocket.DialOptions{nil, {HTTPClient: newRFC8441Client()}} {
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", opts)
		if err != nil {
			t.Fatalf("client %d: dial: %v\n%s", i, err, logs.String())
		}
		if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if _, m, err := c.Read(ctx); err != nil || string(m) != "HTTP/1.1 hello" {
			t.Fatalf("client %d: got %q %v", i, m, err)
		}
		c.CloseNow()
	}
}
