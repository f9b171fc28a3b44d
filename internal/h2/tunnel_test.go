package h2

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// echoTunnels answers extended CONNECT and CONNECT with 200 and echoes the stream's
// bytes; a request with the field "refuse" gets 403 and a body.
func echoTunnels(st *Stream) {
	for _, f := range st.Request().Fields {
		if f.Name == "refuse" {
			st.WriteHeaders(403, []Field{{Name: "x-why", Value: "refused"}}, false)
			st.WriteData([]byte("no"), true)
			return
		}
	}
	st.WriteHeaders(200, []Field{{Name: "x-protocol", Value: st.Request().Protocol}}, false)
	for {
		b, err := st.ReadBody()
		if len(b) > 0 {
			if werr := st.WriteData(b, false); werr != nil {
				return
			}
		}
		if err != nil {
			st.WriteData(nil, true)
			return
		}
	}
}

func dialTunnel(t *testing.T, addr string, req TunnelRequest) (*Tunnel, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return OpenTunnel(ctx, nc, req, nil)
}

// A tunnel carries 8 MiB both ways (well beyond every flow-control window), then
// half-closes from the client, whose END_STREAM comes back.
func TestTunnelEcho(t *testing.T) {
	srv := startServer(t, Options{EnableConnectProtocol: true}, echoTunnels, nil)
	for _, req := range []TunnelRequest{
		{Protocol: "websocket", Scheme: "http", Authority: "example.com", Path: "/chat", Fields: []Field{{Name: "sec-websocket-version", Value: "13"}}},
		{Authority: "example.com:443"},
	} {
		tun, err := dialTunnel(t, srv.ln.Addr().String(), req)
		if err != nil {
			t.Fatal(err)
		}
		if tun.Status != 200 || len(tun.Fields) != 1 || tun.Fields[0].Value != req.Protocol {
			t.Fatalf("head %d %v", tun.Status, tun.Fields)
		}
		want := bytes.Repeat([]byte("0123456789abcdef"), 512<<10)
		go func() {
			tun.Write(want)
			tun.CloseWrite()
		}()
		got, err := io.ReadAll(tun)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("echo: %d bytes of %d, %v", len(got), len(want), err)
		}
		tun.Close()
	}
}

func TestTunnelRefused(t *testing.T) {
	srv := startServer(t, Options{EnableConnectProtocol: true}, echoTunnels, nil)
	tun, err := dialTunnel(t, srv.ln.Addr().String(), TunnelRequest{Protocol: "websocket", Scheme: "http", Authority: "x", Path: "/", Fields: []Field{{Name: "refuse", Value: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	body, err := io.ReadAll(tun)
	if tun.Status != 403 || string(body) != "no" || err != nil {
		t.Fatalf("got %d %q %v", tun.Status, body, err)
	}
}

// A server without SETTINGS_ENABLE_CONNECT_PROTOCOL gets no extended CONNECT.
func TestTunnelNotOffered(t *testing.T) {
	srv := startServer(t, Options{}, echoTunnels, nil)
	_, err := dialTunnel(t, srv.ln.Addr().String(), TunnelRequest{Protocol: "websocket", Scheme: "http", Authority: "x", Path: "/"})
	if !errors.Is(err, ErrNoExtendedConnect) {
		t.Fatalf("got %v, want ErrNoExtendedConnect", err)
	}
}

// A server that resets the stream makes reads fail with the reset; Close on either
// side ends everything.
func TestTunnelReset(t *testing.T) {
	srv := startServer(t, Options{EnableConnectProtocol: true}, func(st *Stream) {
		st.WriteHeaders(200, nil, false)
		st.ReadBody()
		st.Reset(0x8) // CANCEL
	}, nil)
	tun, err := dialTunnel(t, srv.ln.Addr().String(), TunnelRequest{Authority: "x:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	tun.Write([]byte("x"))
	var re *ResetError
	if _, err := io.ReadAll(tun); !errors.As(err, &re) {
		t.Fatalf("got %v, want a reset", err)
	}
}

// A tunnel writes through its pool's buffers and holds none while idle, nor after it
// is closed; what it echoes through them arrives whole.
func TestTunnelPoolBuffers(t *testing.T) {
	srv := startServer(t, Options{EnableConnectProtocol: true}, echoTunnels, nil)
	pool := NewBufPool(4 << 10)
	nc, err := net.Dial("tcp", srv.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tun, err := OpenTunnel(ctx, nc, TunnelRequest{Protocol: "websocket", Scheme: "http", Authority: "x", Path: "/"}, pool)
	if err != nil {
		t.Fatal(err)
	}
	if n := pool.InUse(); n != 0 {
		t.Fatalf("%d buffers held after the opening", n)
	}
	// Small writes, then one larger than a buffer.
	for _, size := range []int{1, 100, 4<<10 - 9, 4 << 10, 20 << 10} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		if _, err := tun.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, size)
		if _, err := io.ReadFull(tun, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes: %v", size, err)
		}
		if n := pool.InUse(); n != 0 {
			t.Fatalf("%d buffers held by an idle tunnel after %d bytes", n, size)
		}
	}
	tun.Close()
	if n := pool.InUse(); n != 0 {
		t.Fatalf("%d buffers held after Close", n)
	}
}

// The pool writer buffers small writes, writes a large one as it is, gives its buffer
// back on Flush, and keeps the first error.
func TestPoolWriter(t *testing.T) {
	pool := NewBufPool(16)
	var out bytes.Buffer
	pw := &poolWriter{w: &out, pool: pool}
	pw.Write([]byte("abc"))
	pw.WriteString("defghijklmnopq") // 17 bytes: one buffer's worth goes out
	if out.String() != "abcdefghijklmnop" || pool.InUse() != 1 {
		t.Fatalf("out %q, %d buffers held", out.String(), pool.InUse())
	}
	if err := pw.Flush(); err != nil || out.String() != "abcdefghijklmnopq" || pool.InUse() != 0 {
		t.Fatalf("after Flush: out %q, err %v, %d buffers held", out.String(), err, pool.InUse())
	}
	big := bytes.Repeat([]byte("x"), 40)
	if n, err := pw.Write(big); n != 40 || err != nil || pool.InUse() != 0 || out.Len() != 57 {
		t.Fatalf("large write: %d, %v, %d buffers held, %d out", n, err, pool.InUse(), out.Len())
	}
	boom := errors.New("boom")
	fw := &poolWriter{w: failWriter{boom}, pool: pool}
	fw.Write([]byte("abc"))
	if err := fw.Flush(); err != boom || pool.InUse() != 0 {
		t.Fatalf("Flush: %v, %d buffers held", err, pool.InUse())
	}
	if _, err := fw.Write([]byte("d")); err != boom || pool.InUse() != 0 {
		t.Fatalf("Write after a failure: %v, %d buffers held", err, pool.InUse())
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }
