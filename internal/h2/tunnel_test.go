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
	return OpenTunnel(ctx, nc, req)
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
